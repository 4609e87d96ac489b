/// @file
/// The pass\@N coverage loss (Direct Coverage Optimisation; Chen, Raventós, Cheng, Ganguli,
/// Druckmann, NeurIPS 2025, https://arxiv.org/abs/2502.07154): a cross-entropy variant that
/// stops pushing samples the model already gets right with high probability.
#ifndef REGULA_LOSSES_COVERAGE_HPP
#define REGULA_LOSSES_COVERAGE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/reduction.hpp"
#include "regula/kernels/coverage.hpp"

namespace regula {

/// Options of the coverage loss: N, and the reduction and ignore_index of every loss over
/// labels (detail::LabelLossOptions; `mean` over the samples that are not ignored).
struct CoverageLossOptions : detail::LabelLossOptions<CoverageLossOptions> {
  /// N ≥ 1: the number of attempts of pass\@N. N = 1 is cross-entropy.
  double N = 1.0;
  /// Sets `N` (chainable).
  CoverageLossOptions& with_N(double v) noexcept { return detail::set(*this, N, v); }
};

namespace detail {

template <class T>
T run_coverage(const char* who, const CoverageLossOptions& opt, const MatrixCRef<T>& z,
               const LabelsCRef& labels, VectorRef<T>* losses, MatrixRef<T>* dlogits,
               bool per_sample) {
  const Index C = z.rows();
  const Index B = z.cols();
  REGULA_EXPECTS(B > 0, who, "logits must hold at least one sample (column), got ", C, " x ", B);
  REGULA_EXPECTS(C > 0, who, "logits must have at least one class (row), got ", C, " x ", B);
  REGULA_EXPECTS(opt.N >= 1.0 && std::isfinite(opt.N), who, "N must be finite and >= 1, got ",
                 opt.N);
  if (!per_sample) {
    REGULA_EXPECTS(opt.reduction != Reduction::none, who,
                   "reduction must be mean, sum or batchmean for a reduced loss (use the "
                   "per-sample call for none), got ",
                   opt.reduction);
  }
  REGULA_EXPECTS(labels.size() == B, who, "labels must have one value per sample (", B, "), got ",
                 labels.size());
  if (losses != nullptr) {
    REGULA_EXPECTS(losses->size() == B, who, "losses must have one value per sample (", B,
                   "), got ", losses->size());
  }
  if (dlogits != nullptr) check_same_shape(who, "dlogits", *dlogits, "logits", z);
  check_no_overlap(who, {region("logits", z), region("labels", labels)},
                   {region("losses", losses), region("dlogits", dlogits)});
  double valid = 0.0;
  for (Index i = 0; i < B; ++i) {
    const std::int64_t yi = labels[i];
    if (yi == opt.ignore_index) continue;
    REGULA_EXPECTS(yi >= 0 && yi < static_cast<std::int64_t>(C), who, "labels[", i,
                   "] must be in [0, ", C, ") or ignore_index (", opt.ignore_index, "), got ", yi);
    valid += 1.0;
  }
  const double denom = opt.reduction == Reduction::mean ? valid : static_cast<double>(B);
  const double g = (per_sample || opt.reduction == Reduction::sum) ? 1.0 : 1.0 / denom;
  const T gt = static_cast<T>(g);
  const auto n = static_cast<std::size_t>(C);
  const auto cols = static_cast<std::size_t>(B);
  const double total =
      parallel_sum_chunks(cols, column_chunk(C), [&](std::size_t begin, std::size_t end) noexcept {
        double acc = 0.0;
        for (std::size_t c = begin; c < end; ++c) {
          const auto j = static_cast<Index>(c);
          T* dz = dlogits != nullptr ? dlogits->col(j).data() : nullptr;
          const std::int64_t yi = labels[j];
          if (yi == opt.ignore_index) {
            if (losses != nullptr) (*losses)[j] = T(0);
            if (dz != nullptr) {
              for (std::size_t i = 0; i < n; ++i) dz[i] = T(0);
            }
            continue;
          }
          const double l = kernels::coverage_column(z.col(j).data(), n,
                                                    static_cast<std::size_t>(yi), opt.N, gt, dz);
          if (losses != nullptr) (*losses)[j] = static_cast<T>(l);
          acc += l;
        }
        return acc;
      });
  if (per_sample || opt.reduction == Reduction::sum) return static_cast<T>(total);
  return static_cast<T>(total / denom);
}

}  // namespace detail

/// The reduced pass\@N coverage loss over softmax. Per sample, with p = softmax(z)_y:
///
///   ℓ = −log(1 − (1 − p)^N),   ∂ℓ/∂z = F·(softmax(z) − e_y),
///   F = N·p·(1 − p)^(N−1) / (1 − (1 − p)^N) ∈ (0, 1],
///
/// so the gradient is cross-entropy's scaled by F: F → 1 as p → 0 and F → 0 as p → 1 (N > 1),
/// which limits over-confidence. N = 1 is cross-entropy exactly. Reductions as cross_entropy
/// (mean over non-ignored samples). Numerics: see kernels/coverage.hpp; finite logits of any
/// magnitude give finite values, NaN gives NaN. No allocation.
/// @throws regula::invalid_argument on an empty batch, bad labels or shapes, N < 1 or not
///         finite, or reduction none.
template <class D>
[[nodiscard]] typename D::Scalar coverage_loss(const Eigen::MatrixBase<D>& logits,
                                               const LabelsCRef& labels,
                                               const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  return detail::run_coverage<T>("regula::coverage_loss", options, z, labels, nullptr, nullptr,
                                 false);
}

/// The reduced coverage loss and, fused, its gradient with respect to the logits.
template <class D>
typename D::Scalar coverage_loss(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                                 MatrixRef<typename D::Scalar> dlogits,
                                 const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  return detail::run_coverage<T>("regula::coverage_loss", options, z, labels, nullptr, &dlogits,
                                 false);
}

/// Per-sample coverage losses (ignored samples get 0); options.reduction is not used.
template <class D>
void coverage_loss_per_sample(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                              VectorRef<typename D::Scalar> losses,
                              const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  (void)detail::run_coverage<T>("regula::coverage_loss_per_sample", options, z, labels, &losses,
                                nullptr, true);
}

/// Per-sample coverage losses and dlogits.col(i) = ∂ℓ_i/∂z_i, each sample's own gradient.
template <class D>
void coverage_loss_per_sample(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                              VectorRef<typename D::Scalar> losses,
                              MatrixRef<typename D::Scalar> dlogits,
                              const CoverageLossOptions& options = {}) {
  using T = typename D::Scalar;
  const MatrixCRef<T> z(logits.derived());
  (void)detail::run_coverage<T>("regula::coverage_loss_per_sample", options, z, labels, &losses,
                                &dlogits, true);
}

}  // namespace regula

#endif  // REGULA_LOSSES_COVERAGE_HPP
