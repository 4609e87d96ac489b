/// @file
/// Jensen–Shannon distillation: the symmetric, bounded divergence between the softened student
/// and teacher distributions.
///
/// Per sample, p = softmax(z/T), q = softmax(v/T), m = (p + q)/2:
///
///   ℓ = F·(½ KL(p ‖ m) + ½ KL(q ‖ m)) ≤ F·ln 2,
///   ∂ℓ/∂z_c = (F/T)·p_c·(g_c − ⟨p, g⟩),   g_c = ½ log(p_c / m_c)
///
/// (the other terms of ∂JS/∂p cancel). There is no standard T² convention for JS: set
/// `scale_by_t_squared(false)` for the plain divergence. Reductions as KDLossOptions.
///
/// Numerics: SIMD in T. Per class, with r = (p − q)/(p + q) and d = log p − log q taken from the
/// logits, the term is ¼(p + q)·((1+r)log(1+r) + (1−r)log(1−r)), evaluated by its series in r²
/// when |r| is small (no cancellation when p ≈ q) and as 2·log1p(|r|) − (1 − |r|)|d| otherwise;
/// g_c = ½(log1p(|r|) − max(−d, 0)), so the gradient stays finite when p_c or q_c underflows.
/// Sums in SIMD lanes of T, the loss assembled in double. Differs from SinKD's `DistillJS` class, which is broken (a wrong
/// `super()` call, and `F.kl_div` fed probabilities where it expects log-probabilities).
#ifndef REGULA_LOSSES_JS_HPP
#define REGULA_LOSSES_JS_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {
namespace detail {

template <class T>
T run_js(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
         const KDLossOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
  check_temperature<T>(who, opt.temperature());
  check_kd_shapes(who, z, v, losses, dz);
  const double scale =
      per_sample ? 1.0 : reduction_scale(who, opt.reduction(), z.rows(), z.cols());
  const T k = static_cast<T>(1.0 / opt.temperature());
  const auto n = static_cast<std::size_t>(z.rows());
  const double total = run_kd_columns<T>(
      z.rows(), z.cols(), scale, opt.factor(), losses, dz, [&](Index j, T gs, T* dcol) noexcept {
        alignas(64) T buf[kd_stack_classes];
        return kernels::js_column<T>(z.col(j).data(), v.col(j).data(), n, k, gs, dcol,
                                     n <= kd_stack_classes ? buf : nullptr);
      });
  return static_cast<T>(per_sample ? total : total * scale);
}

}  // namespace detail

/// js and js_per_sample: the four calls of REGULA_DETAIL_TEACHER_LOSS_API (kd_common.hpp).
REGULA_DETAIL_TEACHER_LOSS_API(js, KDLossOptions)

}  // namespace regula

#endif  // REGULA_LOSSES_JS_HPP
