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

template <class T>
T run_total_variation(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                      const KDLossOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz,
                      bool per_sample) {
  check_temperature<T>(who, opt.temperature());
  check_kd_shapes(who, z, v, losses, dz);
  const double scale =
      per_sample ? 1.0 : reduction_scale(who, opt.reduction(), z.rows(), z.cols());
  const T k = static_cast<T>(1.0 / opt.temperature());
  const auto n = static_cast<std::size_t>(z.rows());
  const double total = run_kd_columns<T>(
      z.rows(), z.cols(), scale, opt.factor(), losses, dz, [&](Index j, T gs, T* dcol) noexcept {
        alignas(64) T buf[kd_stack_classes];
        return kernels::tv_column<T>(z.col(j).data(), v.col(j).data(), n, k, gs, dcol,
                                     n <= kd_stack_classes ? buf : nullptr);
      });
  return static_cast<T>(per_sample ? total : total * scale);
}

}  // namespace detail

/// total_variation and total_variation_per_sample: the four calls of REGULA_DETAIL_TEACHER_LOSS_API (kd_common.hpp).
REGULA_DETAIL_TEACHER_LOSS_API(total_variation, KDLossOptions)

}  // namespace regula

#endif  // REGULA_LOSSES_TOTAL_VARIATION_HPP
