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
  check_positive(who, "temperature", opt.temperature());
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

/// The reduced total-variation distillation loss of `student` against `teacher` (`classes × batch`); see the file comment.
/// @throws regula::invalid_argument on an empty batch, shapes that differ, a bad option or
///         reduction none.
template <class DZ, class DV>
[[nodiscard]] typename DZ::Scalar total_variation(const Eigen::MatrixBase<DZ>& student,
                                        const Eigen::MatrixBase<DV>& teacher,
                                        const KDLossOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::total_variation: student and teacher scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  return detail::run_total_variation<T>("regula::total_variation", z, v, options, nullptr, nullptr, false);
}

/// The reduced total-variation distillation loss and, fused, its gradient with respect to the student's logits in
/// `dstudent` (same shape, must not overlap either input).
template <class DZ, class DV>
typename DZ::Scalar total_variation(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                          MatrixRef<typename DZ::Scalar> dstudent, const KDLossOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::total_variation: student and teacher scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  return detail::run_total_variation<T>("regula::total_variation", z, v, options, nullptr, &dstudent, false);
}

/// Per-sample total-variation distillation loss: losses[i] = ℓ_i (T² factor included, no reduction; `options.reduction()`
/// is not used).
template <class DZ, class DV>
void total_variation_per_sample(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                       VectorRef<typename DZ::Scalar> losses, const KDLossOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::total_variation_per_sample: student and teacher scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  (void)detail::run_total_variation<T>("regula::total_variation_per_sample", z, v, options, &losses, nullptr, true);
}

/// Per-sample total-variation distillation loss with each sample's own gradient: dstudent.col(i) = ∂ℓ_i/∂z_i.
template <class DZ, class DV>
void total_variation_per_sample(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                       VectorRef<typename DZ::Scalar> losses, MatrixRef<typename DZ::Scalar> dstudent,
                       const KDLossOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::total_variation_per_sample: student and teacher scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  (void)detail::run_total_variation<T>("regula::total_variation_per_sample", z, v, options, &losses, &dstudent, true);
}

}  // namespace regula

#endif  // REGULA_LOSSES_TOTAL_VARIATION_HPP
