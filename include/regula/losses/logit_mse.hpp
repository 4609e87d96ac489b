/// @file
/// Logit-matching distillation: squared distance between student and teacher logits (Ba &
/// Caruana 2014), and KD on standardized logits (Sun et al., "Logit Standardization in
/// Knowledge Distillation", CVPR 2024).
///
/// logit_mse, per sample: ℓ = Σ_c (z_c − v_c)², ∂ℓ/∂z = 2(z − v). With LogitMSEOptions'
/// default `Reduction::mean` the reduced loss is (1/(B·C))·Σ (z − v)², PyTorch's
/// `F.mse_loss(z, v)`; `batchmean` divides by B, `sum` by 1. No temperature.
///
/// logit_std_kd, per sample: every column is standardized, z' = (z − mean z)/(std z + 1e-7)
/// with the unbiased std (as the authors' code and torchdistill's LogitStdKDLoss), the teacher
/// likewise, then ℓ = kd_kl(z', v') with the options' temperature and T² factor. Gradient, with
/// d = z − mean z, s = std z + 1e-7, g' = ∂ℓ/∂z' = (F/T)(p − q):
///
///   ∂ℓ/∂z = (g' − mean g')/s − ⟨g', d⟩ / (s²·(C − 1)·std z) · d
///
/// (the second term is dropped for a constant column, where std z = 0). Computed without a
/// copy: softmax(z'/T) = softmax(z/(T·s)), so the kd_kl kernel runs at a per-column
/// temperature T·s. The paper's default base temperature is 2 (with T² scaling); needs C ≥ 2.
#ifndef REGULA_LOSSES_LOGIT_MSE_HPP
#define REGULA_LOSSES_LOGIT_MSE_HPP

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {

/// Options of logit_mse: only the reduction (default `mean`, as `F.mse_loss`), a plain struct
/// with a chainable setter like every options struct.
struct LogitMSEOptions {
  Reduction reduction = Reduction::mean;

  LogitMSEOptions& with_reduction(Reduction r) noexcept { return detail::set(*this, reduction, r); }
};

namespace detail {

template <class T>
T run_logit_mse(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                const LogitMSEOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz,
                bool per_sample) {
  check_kd_shapes(who, z, v, losses, dz);
  const double scale = per_sample ? 1.0 : reduction_scale(who, opt.reduction, z.rows(), z.cols());
  const auto n = static_cast<std::size_t>(z.rows());
  const double total = run_kd_columns<T>(
      z.rows(), z.cols(), scale, 1.0, losses, dz, [&](Index j, T gs, T* dcol) noexcept {
        return kernels::logit_mse_column<T>(z.col(j).data(), v.col(j).data(), n, gs, dcol);
      });
  return static_cast<T>(per_sample ? total : total * scale);
}

/// Mean and unbiased standard deviation of a column, in F (double; long double in the wide
/// path).
template <class F, class T>
void mean_std(const T* x, std::size_t n, F& mean, F& sd) noexcept {
  F s = F(0);
  for (std::size_t i = 0; i < n; ++i) s += static_cast<F>(x[i]);
  mean = s / static_cast<F>(n);
  F ss = F(0);
  for (std::size_t i = 0; i < n; ++i) {
    const F d = static_cast<F>(x[i]) - mean;
    ss += d * d;
  }
  sd = std::sqrt(ss / static_cast<F>(n - 1));
}

/// The eps of the standardization (the authors' code and torchdistill).
inline constexpr double logit_std_eps = 1e-7;

/// logit_std_kd on a column whose logits may differ by more than the largest T (see
/// run_logit_std_kd): the standardization, the KL (kernels::detail::kd_kl_wide) and the
/// gradient's correction in long double, the gradient rounded to T before the correction as on
/// the normal path.
template <class T>
REGULA_KD_COLD double logit_std_kd_wide(const T* zc, const T* vc, std::size_t n, double kinv, T gs,
                                        T* dcol) noexcept {
  using W = kernels::detail::wide;
  W mz = 0, sdz = 0, mv = 0, sdv = 0;
  mean_std(zc, n, mz, sdz);
  mean_std(vc, n, mv, sdv);
  const W sz = sdz + static_cast<W>(logit_std_eps), sv = sdv + static_cast<W>(logit_std_eps);
  const W k = static_cast<W>(kinv);
  const double d =
      kernels::detail::kd_kl_wide<T>(zc, vc, n, k / sz, k / sv, static_cast<W>(gs), dcol);
  if (dcol != nullptr) {
    W sum = 0, dot = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sum += static_cast<W>(dcol[i]);
      dot += static_cast<W>(dcol[i]) * (static_cast<W>(zc[i]) - mz);
    }
    const W mean_g = sum / static_cast<W>(n);
    const W coef = sdz > 0 ? dot / (sz * static_cast<W>(n - 1) * sdz) : W(0);
    for (std::size_t i = 0; i < n; ++i) {
      dcol[i] =
          static_cast<T>(static_cast<W>(dcol[i]) - mean_g - coef * (static_cast<W>(zc[i]) - mz));
    }
  }
  return d;
}

template <class T>
T run_logit_std_kd(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                   const KDLossOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz,
                   bool per_sample) {
  check_temperature<T>(who, opt.temperature);
  check_kd_shapes(who, z, v, losses, dz);
  REGULA_EXPECTS(z.rows() >= 2, who,
                 "student logits must have at least two classes (rows) to standardize, got ",
                 z.rows());
  const double scale = per_sample ? 1.0 : reduction_scale(who, opt.reduction, z.rows(), z.cols());
  const double kinv = 1.0 / opt.temperature;
  const auto n = static_cast<std::size_t>(z.rows());
  // |x_i − mean| ≤ std·√(n − 1): below this bound on |x_i| no difference of two logits of the
  // column or of the pair reaches the largest T.
  const double root = std::sqrt(static_cast<double>(n - 1));
  const double safe = static_cast<double>(std::numeric_limits<T>::max()) / 4.0;
  const double total = run_kd_columns<T>(
      z.rows(), z.cols(), scale, opt.factor(), losses, dz, [&](Index j, T gs, T* dcol) noexcept {
        alignas(64) T buf[kd_stack_classes];
        const T* zc = z.col(j).data();
        const T* vc = v.col(j).data();
        double mz = 0, sdz = 0, mv = 0, sdv = 0;
        mean_std(zc, n, mz, sdz);
        mean_std(vc, n, mv, sdv);
        // Logits that may differ by more than the largest T (or whose sums pass the largest
        // double): z − max z would overflow in T before the per-column k ≈ 1/(T·std) brings it
        // back to a moderate value, and give a finite but wrong loss. False for NaN.
        if (REGULA_UNLIKELY(
                !(std::abs(mz) + sdz * root <= safe && std::abs(mv) + sdv * root <= safe)) &&
            kernels::all_finite(zc, vc, n)) {
          return logit_std_kd_wide(zc, vc, n, kinv, gs, dcol);
        }
        const double sz = sdz + logit_std_eps, sv = sdv + logit_std_eps;
        const double d = kernels::kd_kl_column<T>(zc, vc, n, static_cast<T>(kinv / sz),
                                                  static_cast<T>(kinv / sv), gs, dcol,
                                                  n <= kd_stack_classes ? buf : nullptr);
        if (dcol != nullptr) {
          // dcol = g'/s; subtract its mean and the part through the std.
          double sum = 0.0, dot = 0.0;
          for (std::size_t i = 0; i < n; ++i) {
            sum += static_cast<double>(dcol[i]);
            dot += static_cast<double>(dcol[i]) * (static_cast<double>(zc[i]) - mz);
          }
          const double mean_g = sum / static_cast<double>(n);
          const double coef = sdz > 0.0 ? dot / (sz * static_cast<double>(n - 1) * sdz) : 0.0;
          for (std::size_t i = 0; i < n; ++i) {
            dcol[i] = static_cast<T>(static_cast<double>(dcol[i]) - mean_g -
                                     coef * (static_cast<double>(zc[i]) - mz));
          }
        }
        return d;
      });
  return static_cast<T>(per_sample ? total : total * scale);
}

/// logit_mse's and logit_std_kd's drivers, bound to the public calls (TeacherLoss).
struct LogitMse {
  using Options = LogitMSEOptions;
  static constexpr const char* name = "regula::logit_mse";
  static constexpr const char* per_sample_name = "regula::logit_mse_per_sample";
  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v, const Options& opt,
               VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
    return run_logit_mse<T>(who, z, v, opt, losses, dz, per_sample);
  }
};
struct LogitStdKd {
  using Options = KDLossOptions;
  static constexpr const char* name = "regula::logit_std_kd";
  static constexpr const char* per_sample_name = "regula::logit_std_kd_per_sample";
  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v, const Options& opt,
               VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
    return run_logit_std_kd<T>(who, z, v, opt, losses, dz, per_sample);
  }
};

}  // namespace detail

/// logit_mse: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::LogitMse> logit_mse{};
/// logit_mse_per_sample: one loss per sample, and with `dstudent` each sample's own gradient.
inline constexpr detail::TeacherLossPerSample<detail::LogitMse> logit_mse_per_sample{};

/// logit_std_kd: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::LogitStdKd> logit_std_kd{};
/// logit_std_kd_per_sample: one loss per sample, and with `dstudent` each sample's own gradient.
inline constexpr detail::TeacherLossPerSample<detail::LogitStdKd> logit_std_kd_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_LOGIT_MSE_HPP
