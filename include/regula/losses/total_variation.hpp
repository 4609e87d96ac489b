/// @file
/// Total-variation distillation: half the L1 distance between the softened student and teacher
/// distributions.
///
/// Per sample, p = softmax(z/T), q = softmax(v/T), s_c = ½·sign(p_c − q_c) (sign(0) = 0):
///
///   ℓ = F·½ Σ_c |p_c − q_c| ≤ F,   ∂ℓ/∂z_c = (F/T)·p_c·(s_c − ⟨p, s⟩)  (a subgradient),
///
/// F = T² or 1 (set `scale_by_t_squared(false)` for the plain distance). SinKD's code uses
/// 0.1·0.5·mean|p − q| over B·C elements, i.e. this loss with `Reduction::mean`, times 0.1;
/// its `DistillTVD` class itself is broken (wrong `super()` call) and was not used as a
/// reference. Probabilities from one fused exponential pass; SIMD in T.
#ifndef REGULA_LOSSES_TOTAL_VARIATION_HPP
#define REGULA_LOSSES_TOTAL_VARIATION_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {
namespace detail {

/// total_variation's column kernel, bound to the distillation driver (run_temperature_loss).
struct TotalVariation : TemperatureLoss<TotalVariation> {
  static constexpr const char* name = "regula::total_variation";
  static constexpr const char* per_sample_name = "regula::total_variation_per_sample";
  template <class T>
  static double column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* buf) noexcept {
    return kernels::tv_column<T>(z, v, n, k, gs, dz, buf);
  }
  static constexpr bool has_tile = true;
  template <class T>
  static void tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                   std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
    kernels::tv_tile<T>(z, zs, v, vs, n, count, k, gs, dz, dzs, d);
  }
};

}  // namespace detail

/// total_variation: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::TotalVariation> total_variation{};
/// total_variation_per_sample: one loss per sample, and with `dstudent` each sample's own gradient
/// (detail::TeacherLossPerSample).
inline constexpr detail::TeacherLossPerSample<detail::TotalVariation> total_variation_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_TOTAL_VARIATION_HPP
