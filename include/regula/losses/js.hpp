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
/// Sums in SIMD lanes of T, the loss assembled in double. Differs from SinKD's `DistillJS` class,
/// which is broken (a wrong `super()` call, and `F.kl_div` fed probabilities where it expects
/// log-probabilities).
#ifndef REGULA_LOSSES_JS_HPP
#define REGULA_LOSSES_JS_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {
namespace detail {

/// js's column kernel, bound to the distillation driver (run_temperature_loss).
struct Js : TemperatureLoss<Js> {
  static constexpr const char* name = "regula::js";
  static constexpr const char* per_sample_name = "regula::js_per_sample";
  template <class T>
  static double column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* buf) noexcept {
    return kernels::js_column<T>(z, v, n, k, gs, dz, buf);
  }
  static constexpr bool has_tile = true;
  template <class T>
  static void tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                   std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
    kernels::js_tile<T>(z, zs, v, vs, n, count, k, gs, dz, dzs, d);
  }
};

}  // namespace detail

/// js: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::Js> js{};
/// js_per_sample: one loss per sample, and with `dstudent` each sample's own gradient
/// (detail::TeacherLossPerSample).
inline constexpr detail::TeacherLossPerSample<detail::Js> js_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_JS_HPP
