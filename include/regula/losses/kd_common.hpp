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
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/reduction.hpp"
#include "regula/core/simd.hpp"
#include "regula/kernels/tile.hpp"

namespace regula {

namespace detail {

/// The options every logit-level distillation loss has — temperature, T² factor, reduction —
/// with chainable setters that return the options type `Self` that derives from it
/// (KDLossOptions, DKDOptions), so that one chain sets both these and Self's own fields.
template <class Self>
struct DistillationOptions {
  /// T > 0: logits are divided by T before the normalizer; a call in T refuses T outside
  /// [√min, √max] of T (about [1.1e-19, 1.8e19] in float), where T² or 1/T² would over- or
  /// underflow (detail::check_temperature). Papers: Hinton KD T = 4 (mdistiller, CIFAR-100) up
  /// to 20 (MNIST); DHKD's BinaryKL-Norm T = 2.
  double temperature = 1.0;
  /// Multiply the loss by T² so that the gradient's magnitude does not shrink as 1/T² (Hinton
  /// et al.). torchdistill's KDLoss drops the factor when it is called without a cross-entropy
  /// weight; here it is always explicit.
  bool scale_by_t_squared = true;
  /// `batchmean` = Σ_i ℓ_i / B (each ℓ_i summed over classes), `sum` = Σ_i ℓ_i, `mean` =
  /// Σ_i ℓ_i / (B·C) — PyTorch's `KLDivLoss(reduction='mean')` and `mse_loss` meaning, averaged
  /// over every element, which for a KL divergence is C times too small. `none` is for the
  /// per-sample calls; reduced calls reject it.
  Reduction reduction = Reduction::batchmean;

  Self& with_temperature(double t) noexcept {
    return detail::set(static_cast<Self&>(*this), temperature, t);
  }
  Self& with_scale_by_t_squared(bool on) noexcept {
    return detail::set(static_cast<Self&>(*this), scale_by_t_squared, on);
  }
  Self& with_reduction(Reduction r) noexcept {
    return detail::set(static_cast<Self&>(*this), reduction, r);
  }
  /// The factor the divergence is multiplied by: T² or 1.
  [[nodiscard]] double factor() const noexcept {
    return scale_by_t_squared ? temperature * temperature : 1.0;
  }
};

}  // namespace detail

/// Options of the logit-level distillation losses (kd_kl, reverse_kl, js, total_variation,
/// logit_std_kd, binary_kl, binary_kl_norm): `temperature` (default 1), `scale_by_t_squared`
/// (default true) and `reduction` (default batchmean), documented in detail::DistillationOptions.
/// A plain struct with chainable `with_*` setters, as every options type (docs/concepts.md):
///
/// ```cpp
/// const auto opt = regula::KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(true);
/// ```
struct KDLossOptions : detail::DistillationOptions<KDLossOptions> {};

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
                 "] so that T^2 and 1/T stay finite and normal in ", scalar_name<T>(), ", got ", t);
}

/// The factor 1/B, 1/(B·C) or 1 of a reduced loss; throws on `none`.
inline double reduction_scale(const char* who, Reduction r, Index classes, Index batch) {
  REGULA_EXPECTS(r != Reduction::none, who,
                 "reduction must be mean, sum or batchmean for a reduced loss (use the "
                 "per-sample call for none), got ",
                 r);
  switch (r) {
    case Reduction::mean:
      return 1.0 / (static_cast<double>(batch) * static_cast<double>(classes));
    case Reduction::batchmean:
      return 1.0 / static_cast<double>(batch);
    default:
      return 1.0;
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
  }
  if (dz != nullptr) check_same_shape(who, "dstudent", *dz, "student logits", z);
  // The outputs are written while later columns of the inputs are still read.
  check_no_overlap(who, {region("student logits", z), region("teacher logits", v)},
                   {region("losses", losses), region("dstudent", dz)});
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

/// run_kd_columns for a cross-column kernel `tile(c, count, gs, d)` that writes the divergences
/// of the `count` columns from c to d[0..count) (kernels/tile.hpp): the same chunks, the same
/// order of the sums, so the reduction is bitwise as independent of the thread count.
template <class T, class Tile>
double run_kd_tiles(Index classes, Index batch, double scale, double factor, VectorRef<T>* losses,
                    Tile&& tile) {
  const T gs = static_cast<T>(scale * factor);
  constexpr std::size_t W = simd::width<T>;
  return parallel_sum_chunks(static_cast<std::size_t>(batch), column_chunk(classes),
                             [&](std::size_t begin, std::size_t end) noexcept {
                               double acc = 0.0;
                               double d[W];
                               for (std::size_t c = begin; c < end;) {
                                 const std::size_t count = end - c < W ? end - c : W;
                                 tile(c, count, gs, d);
                                 for (std::size_t k = 0; k < count; ++k) {
                                   const double l = factor * d[k];
                                   const auto j = static_cast<Index>(c + k);
                                   if (losses != nullptr) (*losses)[j] = static_cast<T>(l);
                                   acc += l;
                                 }
                                 c += count;
                               }
                               return acc;
                             });
}

/// Columns at most this long keep the teacher's exponentials in a stack buffer between passes
/// (longer columns recompute them).
inline constexpr std::size_t kd_stack_classes = 2048;

/// The driver of the distillation losses whose column kernel is
/// `double Loss::column(z, v, n, 1/T, gs, dz, buf)` (kd_kl, reverse_kl, js, total_variation,
/// binary_kl, binary_kl_norm): the temperature, shapes and reduction checked, the columns run
/// in fixed parallel chunks (run_kd_columns), the reduction applied. `buf` is a stack buffer of
/// kd_stack_classes values for the kernels that keep the teacher's exponentials, or null for
/// longer columns.
template <class Loss, class T>
T run_temperature_loss(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                       const KDLossOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz,
                       bool per_sample) {
  check_temperature<T>(who, opt.temperature);
  check_kd_shapes(who, z, v, losses, dz);
  const double scale = per_sample ? 1.0 : reduction_scale(who, opt.reduction, z.rows(), z.cols());
  const T k = static_cast<T>(1.0 / opt.temperature);
  const auto n = static_cast<std::size_t>(z.rows());
  double total;
  if (Loss::has_tile && n <= kernels::tile_rows) {
    // Narrow heads: the cross-column kernel, one column per SIMD lane.
    const auto zs = static_cast<std::size_t>(z.outerStride());
    const auto vs = static_cast<std::size_t>(v.outerStride());
    const auto dzs = dz != nullptr ? static_cast<std::size_t>(dz->outerStride()) : n;
    total = run_kd_tiles<T>(z.rows(), z.cols(), scale, opt.factor(), losses,
                            [&](std::size_t c, std::size_t count, T gs, double* d) noexcept {
                              const auto j = static_cast<Index>(c);
                              Loss::tile(z.col(j).data(), zs, v.col(j).data(), vs, n, count, k, gs,
                                         dz != nullptr ? dz->col(j).data() : nullptr, dzs, d);
                            });
  } else {
    total = run_kd_columns<T>(z.rows(), z.cols(), scale, opt.factor(), losses, dz,
                              [&](Index j, T gs, T* dcol) noexcept {
                                alignas(64) T buf[kd_stack_classes];
                                return Loss::column(z.col(j).data(), v.col(j).data(), n, k, gs,
                                                    dcol, n <= kd_stack_classes ? buf : nullptr);
                              });
  }
  return static_cast<T>(per_sample ? total : total * scale);
}

/// The base of a temperature loss's binding (see run_temperature_loss): its options and run.
template <class Loss>
struct TemperatureLoss {
  using Options = KDLossOptions;
  /// Whether Loss has a cross-column kernel `tile` for narrow heads (see run_temperature_loss);
  /// a binding that has one hides this with true.
  static constexpr bool has_tile = false;
  template <class T>
  static void tile(const T*, std::size_t, const T*, std::size_t, std::size_t, std::size_t, T, T, T*,
                   std::size_t, double*) noexcept {}
  template <class T>
  static T run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v, const Options& opt,
               VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
    return run_temperature_loss<Loss, T>(who, z, v, opt, losses, dz, per_sample);
  }
};

/// The reduced calls of a logit-level distillation loss, as a function object (`regula::kd_kl`
/// and the others are objects of this type): `Loss` is the loss's binding, with its `Options`,
/// `name` and `template <class T> static T run(who, z, v, options, losses, dz, per_sample)`.
/// - `loss(student, teacher, options = {})`: the reduced loss;
/// - `loss(student, teacher, dstudent, options = {})`: the reduced loss and, fused, its gradient
///   with respect to the student's logits (same shape, overlapping neither input).
/// Student and teacher logits are classes × batch matrices of one scalar type (float or
/// double). Throws regula::invalid_argument on an empty batch, shapes that differ, overlapping
/// outputs or a bad option.
template <class Loss>
struct TeacherLoss {
  using Options = typename Loss::Options;

  template <class DZ, class DV>
  [[nodiscard]] typename DZ::Scalar operator()(const Eigen::MatrixBase<DZ>& student,
                                               const Eigen::MatrixBase<DV>& teacher,
                                               const Options& options = {}) const {
    using T = typename DZ::Scalar;
    static_assert(std::is_same_v<T, typename DV::Scalar>,
                  "student and teacher scalar types differ");
    return Loss::template run<T>(Loss::name, MatrixCRef<T>(student.derived()),
                                 MatrixCRef<T>(teacher.derived()), options, nullptr, nullptr,
                                 false);
  }
  template <class DZ, class DV>
  typename DZ::Scalar operator()(const Eigen::MatrixBase<DZ>& student,
                                 const Eigen::MatrixBase<DV>& teacher,
                                 MatrixRef<typename DZ::Scalar> dstudent,
                                 const Options& options = {}) const {
    using T = typename DZ::Scalar;
    static_assert(std::is_same_v<T, typename DV::Scalar>,
                  "student and teacher scalar types differ");
    return Loss::template run<T>(Loss::name, MatrixCRef<T>(student.derived()),
                                 MatrixCRef<T>(teacher.derived()), options, nullptr, &dstudent,
                                 false);
  }
};

/// The per-sample calls of a logit-level distillation loss (`regula::kd_kl_per_sample` and the
/// others), no reduction:
/// - `loss(student, teacher, losses, options = {})`: losses[i] = ℓ_i;
/// - `loss(student, teacher, losses, dstudent, options = {})`: with each sample's own gradient,
///   dstudent.col(i) = ∂ℓ_i/∂z_i.
template <class Loss>
struct TeacherLossPerSample {
  using Options = typename Loss::Options;

  template <class DZ, class DV>
  void operator()(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                  VectorRef<typename DZ::Scalar> losses, const Options& options = {}) const {
    using T = typename DZ::Scalar;
    static_assert(std::is_same_v<T, typename DV::Scalar>,
                  "student and teacher scalar types differ");
    (void)Loss::template run<T>(Loss::per_sample_name, MatrixCRef<T>(student.derived()),
                                MatrixCRef<T>(teacher.derived()), options, &losses, nullptr, true);
  }
  template <class DZ, class DV>
  void operator()(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                  VectorRef<typename DZ::Scalar> losses, MatrixRef<typename DZ::Scalar> dstudent,
                  const Options& options = {}) const {
    using T = typename DZ::Scalar;
    static_assert(std::is_same_v<T, typename DV::Scalar>,
                  "student and teacher scalar types differ");
    (void)Loss::template run<T>(Loss::per_sample_name, MatrixCRef<T>(student.derived()),
                                MatrixCRef<T>(teacher.derived()), options, &losses, &dstudent,
                                true);
  }
};

}  // namespace detail
}  // namespace regula

#endif  // REGULA_LOSSES_KD_COMMON_HPP
