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

template <class T>
T run_reverse_kl(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
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
        return kernels::reverse_kl_column<T>(z.col(j).data(), v.col(j).data(), n, k, gs, dcol);
      });
  return static_cast<T>(per_sample ? total : total * scale);
}

}  // namespace detail

/// reverse_kl and reverse_kl_per_sample: the four calls of REGULA_DETAIL_TEACHER_LOSS_API (kd_common.hpp).
REGULA_DETAIL_TEACHER_LOSS_API(reverse_kl, KDLossOptions)

}  // namespace regula

#endif  // REGULA_LOSSES_REVERSE_KL_HPP
