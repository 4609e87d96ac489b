/// @file
/// What the logit-level distillation losses share: their options (temperature, the T² factor,
/// the reduction) and the column driver that checks a call and runs a per-column kernel.
///
/// Conventions of every distillation loss in regula: student logits z and teacher logits v are
/// `classes × batch` (one column per sample); the teacher is a constant (no gradient is
/// produced for it); the gradient written is the one of the returned (reduced) loss with
/// respect to the student's logits.
#ifndef REGULA_LOSSES_KD_COMMON_HPP
#define REGULA_LOSSES_KD_COMMON_HPP

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#include "regula/core/checks.hpp"
#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/reduction.hpp"

namespace regula {

/// Options of the logit-level distillation losses (kd_kl, reverse_kl, js, total_variation,
/// logit_std_kd, binary_kl, binary_kl_norm, logit_mse), set fluently in the style of the
/// PyTorch C++ frontend: the setter takes a value and returns the options, the getter takes
/// none.
///
/// ```cpp
/// const auto opt = regula::KDLossOptions{}.temperature(4.0).scale_by_t_squared(true);
/// ```
///
/// - `temperature` T > 0 (default 1): logits are divided by T before the normalizer; a call in
///   T refuses T outside [√min, √max] of T (about [1.1e-19, 1.8e19] in float), where T² or
///   1/T² would over- or underflow (detail::check_temperature). Papers:
///   Hinton KD T = 4 (mdistiller, CIFAR-100) up to 20 (MNIST); DHKD's BinaryKL-Norm T = 2.
/// - `scale_by_t_squared` (default true): multiply the loss by T² so that the gradient's
///   magnitude does not shrink as 1/T² (Hinton et al.). torchdistill's KDLoss drops the factor
///   when it is called without a cross-entropy weight; here it is always explicit.
/// - `reduction` (default batchmean): `batchmean` = Σ_i ℓ_i / B (each ℓ_i summed over classes),
///   `sum` = Σ_i ℓ_i, `mean` = Σ_i ℓ_i / (B·C) — PyTorch's `KLDivLoss(reduction='mean')` and
///   `mse_loss` meaning, averaged over every element, which for a KL divergence is C times too
///   small. `none` is for the per-sample calls; reduced calls reject it.
class KDLossOptions {
 public:
  KDLossOptions& temperature(double t) noexcept {
    temperature_ = t;
    return *this;
  }
  [[nodiscard]] double temperature() const noexcept { return temperature_; }

  KDLossOptions& scale_by_t_squared(bool on) noexcept {
    t_squared_ = on;
    return *this;
  }
  [[nodiscard]] bool scale_by_t_squared() const noexcept { return t_squared_; }

  KDLossOptions& reduction(Reduction r) noexcept {
    reduction_ = r;
    return *this;
  }
  [[nodiscard]] Reduction reduction() const noexcept { return reduction_; }

  /// The factor the divergence is multiplied by: T² or 1.
  [[nodiscard]] double factor() const noexcept {
    return t_squared_ ? temperature_ * temperature_ : 1.0;
  }

 private:
  double temperature_ = 1.0;
  bool t_squared_ = true;
  Reduction reduction_ = Reduction::batchmean;
};

namespace detail {

/// Throws unless T is finite and > 0; the message names `param`.
inline void check_positive(const char* who, const char* param, double t) {
  REGULA_EXPECTS(std::isfinite(t) && t > 0.0, who, param, " must be finite and > 0, got ", t);
}

/// The temperatures a loss in T accepts: [√min, √max] of T's normal range, about
/// [1.1e-19, 1.8e19] in float and [1.5e-154, 1.3e154] in double. Outside it T² (the loss
/// factor) or 1/T² over- or underflows in T, and a finite T would give a loss of 0 or inf with
/// a zero gradient; inside it 1/T and T² are normal numbers, and 1/T times a logit difference
/// stays finite for differences up to √max.
template <class T>
inline double temperature_min() noexcept {
  return std::sqrt(static_cast<double>(std::numeric_limits<T>::min()));
}
template <class T>
inline double temperature_max() noexcept {
  return std::sqrt(static_cast<double>(std::numeric_limits<T>::max()));
}

/// Throws unless the temperature t is finite, > 0 and in [temperature_min<T>(),
/// temperature_max<T>()]; the message names `param` and the range.
template <class T>
void check_temperature(const char* who, double t, const char* param = "temperature") {
  check_positive(who, param, t);
  REGULA_EXPECTS(t >= temperature_min<T>() && t <= temperature_max<T>(), who, param,
                 " must be in [", temperature_min<T>(), ", ", temperature_max<T>(),
                 "] so that T^2 and 1/T stay finite and normal in ",
                 scalar_name<T>(), ", got ", t);
}

/// The factor 1/B, 1/(B·C) or 1 of a reduced loss; throws on `none`.
inline double reduction_scale(const char* who, Reduction r, Index classes, Index batch) {
  REGULA_EXPECTS(r != Reduction::none, who,
                 "reduction must be mean, sum or batchmean for a reduced loss (use the "
                 "per-sample call for none), got ",
                 r);
  switch (r) {
    case Reduction::mean: return 1.0 / (static_cast<double>(batch) * static_cast<double>(classes));
    case Reduction::batchmean: return 1.0 / static_cast<double>(batch);
    default: return 1.0;
  }
}

/// Checks student/teacher logits and the optional outputs of a distillation call.
template <class T>
void check_kd_shapes(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                     const VectorRef<T>* losses, const MatrixRef<T>* dz) {
  REGULA_EXPECTS(z.cols() > 0, who, "student logits must hold at least one sample (column), got ",
                 z.rows(), " x ", z.cols());
  REGULA_EXPECTS(z.rows() > 0, who, "student logits must have at least one class (row), got ",
                 z.rows(), " x ", z.cols());
  check_same_shape(who, "teacher logits", v, "student logits", z);
  if (losses != nullptr) {
    REGULA_EXPECTS(losses->size() == z.cols(), who, "losses must have one value per sample (",
                   z.cols(), "), got ", losses->size());
    // Losses are written while later columns of the inputs are still read.
    check_disjoint(who, "student logits", z, "losses", *losses);
    check_disjoint(who, "teacher logits", v, "losses", *losses);
  }
  if (dz != nullptr) {
    check_same_shape(who, "dstudent", *dz, "student logits", z);
    check_disjoint(who, "student logits", z, "dstudent", *dz);
    check_disjoint(who, "teacher logits", v, "dstudent", *dz);
    if (losses != nullptr) check_disjoint(who, "losses", *losses, "dstudent", *dz);
  }
}

/// Runs `kernel(j, gs, dz_col) → D_j` on every column j in fixed parallel chunks, writes
/// losses[j] = factor·D_j when asked, and returns Σ_j factor·D_j, the partial sums added in chunk
/// order (independent of the thread count). gs = scale·factor is the gradient scale handed to
/// the kernel; dz_col is null when no gradient is wanted.
template <class T, class Kernel>
double run_kd_columns(Index classes, Index batch, double scale, double factor, VectorRef<T>* losses,
                      MatrixRef<T>* dz, Kernel&& kernel) {
  const T gs = static_cast<T>(scale * factor);
  return parallel_sum_chunks(static_cast<std::size_t>(batch), column_chunk(classes),
                             [&](std::size_t begin, std::size_t end) noexcept {
                               double acc = 0.0;
                               for (std::size_t c = begin; c < end; ++c) {
                                 const auto j = static_cast<Index>(c);
                                 T* dcol = dz != nullptr ? dz->col(j).data() : nullptr;
                                 const double l = factor * kernel(j, gs, dcol);
                                 if (losses != nullptr) (*losses)[j] = static_cast<T>(l);
                                 acc += l;
                               }
                               return acc;
                             });
}

/// Columns at most this long keep the teacher's exponentials in a stack buffer between passes
/// (longer columns recompute them).
inline constexpr std::size_t kd_stack_classes = 2048;

}  // namespace detail
}  // namespace regula


/// Declares the four public calls of a logit-level distillation loss NAME whose detail::run_NAME
/// does the work (see kd_kl.hpp for the contract):
/// - `T NAME(student, teacher, options)`: the reduced loss;
/// - `T NAME(student, teacher, dstudent, options)`: the reduced loss and, fused, its gradient with
///   respect to the student's logits (same shape, must not overlap either input);
/// - `void NAME_per_sample(student, teacher, losses, options)`: losses[i] = ℓ_i, no reduction;
/// - `void NAME_per_sample(student, teacher, losses, dstudent, options)`: with each sample's own
///   gradient dstudent.col(i) = ∂ℓ_i/∂z_i.
/// All throw regula::invalid_argument on an empty batch, shapes that differ or a bad option.
#define REGULA_DETAIL_TEACHER_LOSS_API(NAME, OPTIONS)                                                    \
  template <class DZ, class DV>                                                                          \
  [[nodiscard]] typename DZ::Scalar NAME(const Eigen::MatrixBase<DZ>& student,                          \
                                         const Eigen::MatrixBase<DV>& teacher, const OPTIONS& options = {}) { \
    using T = typename DZ::Scalar;                                                                       \
    static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::" #NAME ": scalar types differ");     \
    return detail::run_##NAME<T>("regula::" #NAME, MatrixCRef<T>(student.derived()),                     \
                                 MatrixCRef<T>(teacher.derived()), options, nullptr, nullptr, false);    \
  }                                                                                                      \
  template <class DZ, class DV>                                                                          \
  typename DZ::Scalar NAME(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,   \
                           MatrixRef<typename DZ::Scalar> dstudent, const OPTIONS& options = {}) {       \
    using T = typename DZ::Scalar;                                                                       \
    static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::" #NAME ": scalar types differ");     \
    return detail::run_##NAME<T>("regula::" #NAME, MatrixCRef<T>(student.derived()),                     \
                                 MatrixCRef<T>(teacher.derived()), options, nullptr, &dstudent, false);  \
  }                                                                                                      \
  template <class DZ, class DV>                                                                          \
  void NAME##_per_sample(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,     \
                         VectorRef<typename DZ::Scalar> losses, const OPTIONS& options = {}) {           \
    using T = typename DZ::Scalar;                                                                       \
    static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::" #NAME ": scalar types differ");     \
    (void)detail::run_##NAME<T>("regula::" #NAME "_per_sample", MatrixCRef<T>(student.derived()),        \
                                MatrixCRef<T>(teacher.derived()), options, &losses, nullptr, true);      \
  }                                                                                                      \
  template <class DZ, class DV>                                                                          \
  void NAME##_per_sample(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,     \
                         VectorRef<typename DZ::Scalar> losses, MatrixRef<typename DZ::Scalar> dstudent, \
                         const OPTIONS& options = {}) {                                                  \
    using T = typename DZ::Scalar;                                                                       \
    static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::" #NAME ": scalar types differ");     \
    (void)detail::run_##NAME<T>("regula::" #NAME "_per_sample", MatrixCRef<T>(student.derived()),        \
                                MatrixCRef<T>(teacher.derived()), options, &losses, &dstudent, true);    \
  }

#endif  // REGULA_LOSSES_KD_COMMON_HPP
