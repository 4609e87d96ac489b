/// @file
/// Reverse KL distillation: KL from the student's softened distribution to the teacher's
/// (mode-seeking: the student is pushed onto the teacher's modes rather than to cover them).
///
/// Per sample, p = softmax(z/T), q = softmax(v/T), r_c = log p_c − log q_c:
///
///   ℓ = F·KL(p ‖ q) = F·Σ_c p_c r_c,   ∂ℓ/∂z_c = (F/T)·p_c·(r_c − Σ_j p_j r_j),
///
/// F = T² (default) or 1; reductions as KDLossOptions. SinKD's GPT-Neo code uses it with T = 2.
/// Numerics as kd_kl (log-sum-exp, one fused pass, two exponentials per element); the gradient
/// uses r_c − ⟨p, r⟩ = (z_c − v_c)/T − ⟨p, (z − v)/T⟩ up to the shifts, so the log-sum-exp
/// offsets cancel exactly, and around the student's top class where it holds most of the mass.
/// Where the direct loss would cancel (teacher ≈ student) it is recomputed without
/// cancellation and is never negative (docs/reverse_kl.md). No call allocates.
#ifndef REGULA_LOSSES_REVERSE_KL_HPP
#define REGULA_LOSSES_REVERSE_KL_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/matrix.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {
namespace detail {

/// reverse_kl's column kernel, bound to the distillation driver (run_temperature_loss).
struct ReverseKl : TemperatureLoss<ReverseKl> {
  static constexpr const char* name = "regula::reverse_kl";
  static constexpr const char* per_sample_name = "regula::reverse_kl_per_sample";
  template <class T>
  static double column(const T* z, const T* v, std::size_t n, T k, T gs, T* dz, T* buf) noexcept {
    (void)buf;
    return kernels::reverse_kl_column<T>(z, v, n, k, gs, dz);
  }
  static constexpr bool has_tile = true;
  template <class T>
  static void tile(const T* z, std::size_t zs, const T* v, std::size_t vs, std::size_t n,
                   std::size_t count, T k, T gs, T* dz, std::size_t dzs, double* d) noexcept {
    kernels::reverse_kl_tile<T>(z, zs, v, vs, n, count, k, gs, dz, dzs, d);
  }
};

}  // namespace detail

/// reverse_kl: the reduced loss, and with `dstudent` its fused gradient (detail::TeacherLoss).
inline constexpr detail::TeacherLoss<detail::ReverseKl> reverse_kl{};
/// reverse_kl_per_sample: one loss per sample, and with `dstudent` each sample's own gradient
/// (detail::TeacherLossPerSample).
inline constexpr detail::TeacherLossPerSample<detail::ReverseKl> reverse_kl_per_sample{};

}  // namespace regula

#endif  // REGULA_LOSSES_REVERSE_KL_HPP
