/// @file
/// The forget-rate schedule of Co-teaching (Han et al., NeurIPS 2018): how large a fraction of
/// each mini-batch is treated as noisy, as a function of the epoch.
#ifndef REGULA_SELECTION_FORGET_RATE_HPP
#define REGULA_SELECTION_FORGET_RATE_HPP

#include <cmath>

#include "regula/core/error.hpp"
#include "regula/core/options.hpp"

namespace regula {

/// Parameters of the forget-rate schedule.
struct ForgetRateOptions {
  /// τ, the final forget rate (usually the assumed noise rate), in [0, 1).
  double tau = 0.5;
  /// T_k, the number of epochs over which the rate ramps up, ≥ 1 (the papers use 10).
  double ramp_epochs = 10;
  /// c, the exponent of the ramp, > 0 (1 is linear; the paper's ablation uses 0.5, 1, 2).
  double exponent = 1;
  /// Sets `tau` (chainable).
  ForgetRateOptions& with_tau(double v) noexcept { return detail::set(*this, tau, v); }
  /// Sets `ramp_epochs` (chainable).
  ForgetRateOptions& with_ramp_epochs(double v) noexcept {
    return detail::set(*this, ramp_epochs, v);
  }
  /// Sets `exponent` (chainable).
  ForgetRateOptions& with_exponent(double v) noexcept { return detail::set(*this, exponent, v); }
};

namespace detail {
inline void check_forget_rate(const char* who, const ForgetRateOptions& o, double epoch) {
  REGULA_EXPECTS(o.tau >= 0.0 && o.tau < 1.0, who, "tau must be in [0, 1), got ", o.tau);
  REGULA_EXPECTS(o.ramp_epochs >= 1.0, who, "ramp_epochs must be >= 1, got ", o.ramp_epochs);
  REGULA_EXPECTS(o.exponent > 0.0, who, "exponent must be > 0, got ", o.exponent);
  REGULA_EXPECTS(epoch >= 0.0, who, "epoch must be >= 0, got ", epoch);
}
}  // namespace detail

/// The paper's schedule: R(T) = τ·min((T/T_k)^c, 1) at epoch T (counted from 0; fractional epochs
/// are allowed for per-step schedules). The keep fraction is 1 − R(T).
/// @throws regula::invalid_argument if τ ∉ [0, 1), T_k < 1, c ≤ 0 or T < 0.
[[nodiscard]] inline double forget_rate(const ForgetRateOptions& o, double epoch) {
  detail::check_forget_rate("regula::forget_rate", o, epoch);
  const double ramp = epoch >= o.ramp_epochs ? 1.0 : std::pow(epoch / o.ramp_epochs, o.exponent);
  return o.tau * ramp;
}

/// The official Co-teaching code's schedule: rate[0..T_k) = linspace(0, τ^c, T_k) and τ from
/// epoch T_k on. It raises τ, not the epoch ratio, to the power c, so it agrees with
/// forget_rate only for c = 1 and integer epochs ≥ 1 up to a factor T_k/(T_k − 1) on the ramp
/// (the code's training loop starts at epoch 1, so its first epoch forgets τ/(T_k − 1)).
/// @throws regula::invalid_argument as forget_rate, and if the epoch or T_k is not an integer.
[[nodiscard]] inline double legacy_coteaching_forget_rate(const ForgetRateOptions& o,
                                                          double epoch) {
  constexpr const char* who = "regula::legacy_coteaching_forget_rate";
  detail::check_forget_rate(who, o, epoch);
  REGULA_EXPECTS(std::floor(epoch) == epoch, who, "epoch must be an integer, got ", epoch);
  REGULA_EXPECTS(std::floor(o.ramp_epochs) == o.ramp_epochs, who,
                 "ramp_epochs must be an integer, got ", o.ramp_epochs);
  if (epoch >= o.ramp_epochs) return o.tau;
  if (o.ramp_epochs == 1.0) return 0.0;  // linspace(0, x, 1) = [0]
  return std::pow(o.tau, o.exponent) * epoch / (o.ramp_epochs - 1.0);
}

}  // namespace regula

#endif  // REGULA_SELECTION_FORGET_RATE_HPP
