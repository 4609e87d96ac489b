/// @file
/// Decoupled knowledge distillation (DKD; Zhao, Cui, Song, Qiu, Liang, "Decoupled Knowledge
/// Distillation", CVPR 2022): the KD loss split into a target-class part (TCKD) and a
/// non-target part (NCKD), weighted independently.
///
/// Per sample with target class t, p = softmax(z/T), q = softmax(v/T), p̂ and q̂ the softmax
/// over the non-target classes (p̂_i = p_i/(1 − p_t)):
///
///   TCKD = q_t log(q_t/p_t) + (1 − q_t) log((1 − q_t)/(1 − p_t))
///   NCKD = Σ_{i≠t} q̂_i log(q̂_i/p̂_i)
///   ℓ    = F·(α·TCKD + β·NCKD),   F = T² (default) or 1
///
/// Gradient: ∂ℓ/∂z_t = (F/T)·α·(p_t − q_t); ∂ℓ/∂z_j = (F/T)·(−α·(p_t − q_t)·p̂_j + β·(p̂_j − q̂_j))
/// for j ≠ t. Identity: KD = TCKD + (1 − q_t)·NCKD. The default reduction, batchmean, is
/// mdistiller's (sum, then /B).
///
/// Defaults (mdistiller cfg.py, CIFAR-100): α = 1, β = 8, T = 4; per-pair β = 2 (ResNet56→20,
/// ResNet110→32) or 6 (VGG13→VGG8, WRN-40-2→WRN-16-2, …); ImageNet T = 1, β = 0.5. The total
/// loss CE_weight·CE + min(epoch/warmup, 1)·DKD (warm-up 20 epochs) is assembled by the caller:
/// the warm-up factor is not part of this function.
///
/// Differences from mdistiller's DKD.py, both numerical bugs there:
/// - mdistiller takes log of gathered probabilities, log(p_t) and log(Σ_{i≠t} p_i); in float32
///   1 − p_t rounds to 0 for a confident student and TCKD becomes inf/NaN. Here
///   log p_t = z_t/T − LSE(z/T) and log(1 − p_t) = LSE_{i≠t}(z/T) − LSE(z/T), with the
///   non-target log-sum-exp taken around the non-target maximum, so neither underflows.
/// - mdistiller masks the target out of NCKD by subtracting 1000 from its logit, which fails for
///   |logits| ≳ 1000·T (and in two-class problems); here the target index is left out of the
///   non-target log-sum-exp. Two classes give NCKD = 0 and a finite loss.
///
/// No call allocates; columns run in parallel in fixed chunks (thread-count independent).
#ifndef REGULA_LOSSES_DKD_HPP
#define REGULA_LOSSES_DKD_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "regula/core/checks.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/kernels/reduce.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {

/// Options of dkd: the distillation options (detail::DistillationOptions) with mdistiller's
/// T = 4 (T² factor on, reduction batchmean), and the weights α = 1 (TCKD) and β = 8 (NCKD).
/// A plain struct with chainable `with_*` setters:
///
/// ```cpp
/// const auto opt = regula::DKDOptions{}.with_beta(2.0).with_temperature(1.0);
/// ```
struct DKDOptions : detail::DistillationOptions<DKDOptions> {
  DKDOptions() noexcept { temperature = 4.0; }
  /// α, the weight of TCKD; finite in the loss's scalar type.
  double alpha = 1.0;
  /// β, the weight of NCKD; finite in the loss's scalar type.
  double beta = 8.0;

  /// Sets `alpha` (chainable).
  DKDOptions& with_alpha(double a) noexcept { return detail::set(*this, alpha, a); }
  /// Sets `beta` (chainable).
  DKDOptions& with_beta(double b) noexcept { return detail::set(*this, beta, b); }
};

namespace detail {

/// scale·Σ_j F·(α·TCKD_j + β·NCKD_j) with every column's terms from kernels::detail::dkd_wide,
/// summed in long double and rounded once: run_dkd's fallback where the sum in double is not
/// finite. With weights of opposite signs a column's loss can be −inf and another's +inf (each
/// past the largest double) although every logit is finite, or +inf beside a finite loss of the
/// other sign; their sum in long double is the number. (The same rule as the reduced
/// cross-entropy's, whose columns stay within double and are re-added as they are.) A
/// column with a logit that is not finite keeps `total` (NaN in gives NaN out). Serial and in
/// column order: deterministic, and cold (it runs only where the double sum failed).
template <class T>
double dkd_wide_total(const MatrixCRef<T>& z, const MatrixCRef<T>& v, const LabelsCRef& y,
                      const DKDOptions& opt, double scale, double total) noexcept {
  using W = kernels::detail::wide;
  const auto n = static_cast<std::size_t>(z.rows());
  const W k = static_cast<W>(static_cast<T>(1.0 / opt.temperature));
  W sum = 0.0L;
  for (Index j = 0; j < z.cols(); ++j) {
    if (!kernels::all_finite(z.col(j).data(), v.col(j).data(), n)) return total;
    const kernels::detail::WideDkdTerms r =
        kernels::detail::dkd_wide<T>(z.col(j).data(), v.col(j).data(), n,
                                     static_cast<std::size_t>(y[j]), k, 0.0L, 0.0L, 0.0L, nullptr);
    sum += static_cast<W>(opt.alpha) * r.tckd + static_cast<W>(opt.beta) * r.nckd;
  }
  return static_cast<double>(sum * static_cast<W>(opt.factor()) * static_cast<W>(scale));
}

template <class T>
T run_dkd(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v, const LabelsCRef& y,
          const DKDOptions& opt, VectorRef<T>* losses, MatrixRef<T>* dz, bool per_sample) {
  check_temperature<T>(who, opt.temperature);
  check_finite_in<T>(who, "alpha", opt.alpha);
  check_finite_in<T>(who, "beta", opt.beta);
  check_kd_shapes(who, z, v, losses, dz);
  const Index C = z.rows();
  REGULA_EXPECTS(C >= 2, who, "student logits must have at least two classes (rows), got ", C);
  REGULA_EXPECTS(y.size() == z.cols(), who, "labels must have one value per sample (", z.cols(),
                 "), got ", y.size());
  check_no_overlap(who, {region("labels", y)}, {region("losses", losses), region("dstudent", dz)});
  for (Index i = 0; i < y.size(); ++i) {
    REGULA_EXPECTS(y[i] >= 0 && y[i] < static_cast<std::int64_t>(C), who, "labels[", i,
                   "] must be in [0, ", C, "), got ", y[i]);
  }
  const double scale = per_sample ? 1.0 : reduction_scale(who, opt.reduction, C, z.cols());
  const T k = static_cast<T>(1.0 / opt.temperature);
  const T a = static_cast<T>(opt.alpha);
  const T b = static_cast<T>(opt.beta);
  const auto n = static_cast<std::size_t>(C);
  // α·TCKD + β·NCKD of column j from its terms.
  auto weigh = [&](Index j, const kernels::DkdTerms& r) noexcept {
    const double l = opt.alpha * r.tckd + opt.beta * r.nckd;
    if (REGULA_LIKELY(!std::isnan(l)) || std::isnan(r.tckd) || std::isnan(r.nckd)) return l;
    // A term past the largest double with a weight of 0 (0·inf) or two of opposite weights
    // (inf − inf): the weighted sum in long double (NaN stays for non-finite logits).
    using W = kernels::detail::wide;
    return kernels::detail::recompute_wide(z.col(j).data(), v.col(j).data(), n, l,
                                           &kernels::detail::dkd_weighted_wide<T>,
                                           static_cast<std::size_t>(y[j]), static_cast<W>(k),
                                           static_cast<W>(opt.alpha), static_cast<W>(opt.beta));
  };
  double total;
  if (n <= kernels::tile_rows) {
    // Narrow heads: the cross-column kernel, one column per SIMD lane.
    const auto zs = static_cast<std::size_t>(z.outerStride());
    const auto vs = static_cast<std::size_t>(v.outerStride());
    const auto dzs = dz != nullptr ? static_cast<std::size_t>(dz->outerStride()) : n;
    total = run_kd_tiles<T>(C, z.cols(), scale, opt.factor(), losses,
                            [&](std::size_t c, std::size_t count, T gs, double* d) noexcept {
                              const auto j = static_cast<Index>(c);
                              kernels::DkdTerms r[simd::width<T>];
                              std::int64_t t[simd::width<T>];
                              for (std::size_t q = 0; q < count; ++q)
                                t[q] = y[j + static_cast<Index>(q)];
                              kernels::dkd_tile<T>(
                                  z.col(j).data(), zs, v.col(j).data(), vs, n, count, t, k, a, b,
                                  gs, dz != nullptr ? dz->col(j).data() : nullptr, dzs, r);
                              for (std::size_t q = 0; q < count; ++q)
                                d[q] = weigh(j + static_cast<Index>(q), r[q]);
                            });
  } else {
    total = run_kd_columns<T>(
        C, z.cols(), scale, opt.factor(), losses, dz, [&](Index j, T gs, T* dcol) noexcept {
          alignas(64) T buf[kd_stack_classes];
          const auto t = static_cast<std::size_t>(y[j]);
          return weigh(j, kernels::dkd_column<T>(z.col(j).data(), v.col(j).data(), n, t, k, a, b,
                                                 gs, dcol, n <= kd_stack_classes ? buf : nullptr));
        });
  }
  if (per_sample || REGULA_LIKELY(std::isfinite(total))) {
    return static_cast<T>(per_sample ? total : total * scale);
  }
  return static_cast<T>(dkd_wide_total<T>(z, v, y, opt, scale, total));
}

}  // namespace detail

/// The reduced DKD loss of `student` against `teacher` (`classes × batch`, C ≥ 2) with target
/// `labels` (one per sample, in [0, C)); see the file comment.
/// @throws regula::invalid_argument on an empty batch, shapes that differ, C < 2, a label out of
///         range, T ≤ 0, non-finite α or β, or reduction none.
template <class DZ, class DV>
[[nodiscard]] typename DZ::Scalar dkd(const Eigen::MatrixBase<DZ>& student,
                                      const Eigen::MatrixBase<DV>& teacher,
                                      const LabelsCRef& labels, const DKDOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::dkd: scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  return detail::run_dkd<T>("regula::dkd", z, v, labels, options, nullptr, nullptr, false);
}

/// The reduced DKD loss and, fused, its gradient with respect to the student's logits.
template <class DZ, class DV>
typename DZ::Scalar dkd(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                        const LabelsCRef& labels, MatrixRef<typename DZ::Scalar> dstudent,
                        const DKDOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::dkd: scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  return detail::run_dkd<T>("regula::dkd", z, v, labels, options, nullptr, &dstudent, false);
}

/// Per-sample DKD: losses[i] = ℓ_i (no reduction; `options.reduction` is not used).
template <class DZ, class DV>
void dkd_per_sample(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                    const LabelsCRef& labels, VectorRef<typename DZ::Scalar> losses,
                    const DKDOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::dkd: scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  (void)detail::run_dkd<T>("regula::dkd_per_sample", z, v, labels, options, &losses, nullptr, true);
}

/// Per-sample DKD with each sample's own gradient: dstudent.col(i) = ∂ℓ_i/∂z_i.
template <class DZ, class DV>
void dkd_per_sample(const Eigen::MatrixBase<DZ>& student, const Eigen::MatrixBase<DV>& teacher,
                    const LabelsCRef& labels, VectorRef<typename DZ::Scalar> losses,
                    MatrixRef<typename DZ::Scalar> dstudent, const DKDOptions& options = {}) {
  using T = typename DZ::Scalar;
  static_assert(std::is_same_v<T, typename DV::Scalar>, "regula::dkd: scalar types differ");
  const MatrixCRef<T> z(student.derived());
  const MatrixCRef<T> v(teacher.derived());
  (void)detail::run_dkd<T>("regula::dkd_per_sample", z, v, labels, options, &losses, &dstudent,
                           true);
}

}  // namespace regula

#endif  // REGULA_LOSSES_DKD_HPP
