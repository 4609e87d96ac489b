/// @file
/// Elementwise Bernoulli distillation losses of Dual-Head KD (Yang et al., arXiv 2411.08937):
/// BinaryKL and BinaryKL-Norm, which treat every logit as an independent binary classifier.
///
/// binary_kl, per sample: ℓ = F·Σ_c KL(Bern(σ(v_c/T)) ‖ Bern(σ(z_c/T))),
/// ∂ℓ/∂z = (F/T)·(σ(z/T) − σ(v/T)) (a = z/T, b = v/T). Computed in SIMD lanes of T as
/// log1p(σ(b)·expm1(a − b)) − σ(b)(a − b), accurate when a ≈ b, and as σ(b)·(softplus(−a) −
/// softplus(−b)) + σ(−b)·(softplus(a) − softplus(b)) where |a − b| > 16 (the two terms of the
/// definition, which do not cancel there); never negative, and for finite logits finite or +inf
/// where the divergence passes the largest double (a column whose sum is not finite is
/// recomputed in long double), never NaN.
///
/// binary_kl_norm (DHKD's loss for the auxiliary head), per sample:
///
///   ℓ = F·Σ_c log cosh((z_c − v_c)/(2T)),   ∂ℓ/∂z = (F/(2T))·tanh((z − v)/(2T)),
///
/// which is DHKD's KL of Bern(σ((z − v)/T)) from Bern(½) in closed form: a smooth L1 on logit
/// differences. Computed from t = expm1(|u|), u = (z − v)/(2T), as log1p(t²/(2(1 + t))) (accurate
/// for small u) and |u| − ln 2 for large |u|; tanh|u| = t(t + 2)/(t(t + 2) + 2). Difference from
/// the official code: DHKD clamps σ to [1e-8, 1 − 1e-8], which flattens the loss and zeroes the
/// gradient for |z − v| ≳ 18.4·T; regula keeps the exact closed form, whose gradient saturates at
/// ±F/(2T) instead of vanishing. DHKD's defaults: T = 2, T² factor, batchmean, weight α = 1.
/// Reductions as KDLossOptions (`mean` divides by B·C). SIMD in T.
#ifndef REGULA_LOSSES_BINARY_KL_HPP
#define REGULA_LOSSES_BINARY_KL_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {
namespace detail {

/// binary_kl's column kernel, bound to the distillation driver (run_temperature_loss).
struct BinaryKl : TemperatureLoss<BinaryKl> {
  static constexpr const char* name = "regula::binary_kl";
  static constexpr const char* per_sample_name = "regula::binary_kl_per_sample";
  template <class T>
  static double column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* buf) noexcept {
    (void)buf;
    return kernels::binary_kl_column<T>(z, v, n, k, gs, dz);
  }
  static constexpr bool has_tile = true;
  template <class T>
  static void tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                   std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
    kernels::binary_kl_tile<T>(z, zs, v, vs, n, count, k, gs, dz, dzs, d);
  }
};

/// binary_kl_norm's column kernel, bound to the distillation driver (run_temperature_loss).
struct BinaryKlNorm : TemperatureLoss<BinaryKlNorm> {
  static constexpr const char* name = "regula::binary_kl_norm";
  static constexpr const char* per_sample_name = "regula::binary_kl_norm_per_sample";
  template <class T>
  static double column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* buf) noexcept {
    (void)buf;
    return kernels::binary_kl_norm_column<T>(z, v, n, k, gs, dz);
  }
  static constexpr bool has_tile = true;
  template <class T>
  static void tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                   std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
    kernels::binary_kl_norm_tile<T>(z, zs, v, vs, n, count, k, gs, dz, dzs, d);
  }
};

}  // namespace detail

/// binary_kl: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::BinaryKl> binary_kl{};
/// binary_kl_per_sample: one loss per sample, and with `dstudent` each sample's own gradient
/// (detail::TeacherLossPerSample).
inline constexpr detail::TeacherLossPerSample<detail::BinaryKl> binary_kl_per_sample{};

/// binary_kl_norm: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::BinaryKlNorm> binary_kl_norm{};
/// binary_kl_norm_per_sample: one loss per sample, and with `dstudent` each sample's own gradient
/// (detail::TeacherLossPerSample).
inline constexpr detail::TeacherLossPerSample<detail::BinaryKlNorm> binary_kl_norm_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_BINARY_KL_HPP
