/// @file
/// The driver of the label-probability losses (coverage, generalized and symmetric
/// cross-entropy): losses ℓ = φ(softmax(z)_y) over `classes × batch` logits with integer labels,
/// whose per-column kernels are kernels/label_probability.hpp's. The driver owns the argument
/// checks, the overlap rules, ignore_index, the reductions and the deterministic parallel sum.
#ifndef REGULA_LOSSES_LABEL_PROBABILITY_HPP
#define REGULA_LOSSES_LABEL_PROBABILITY_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/reduction.hpp"

namespace regula::detail {

/// Runs `column(z_j, n, y_j, g, dz_j)` (a label-probability kernel: returns ℓ_j, writes g·∂ℓ_j/∂z_j
/// to dz_j when it is not null) over every column whose label is not ignore_index, after checking
/// shapes, labels and overlaps for `who`; ignored columns get a zero loss and gradient. Reduced
/// calls (per_sample false) return Σ ℓ_j scaled by the reduction (`mean` over the samples that
/// are not ignored, `sum`, `batchmean` over B) and write the gradient of that value; per-sample
/// calls write each ℓ_j to `losses` and each column's own gradient. The sum over columns is
/// parallel_sum_chunks': the same bits for any thread count.
template <class T, class Options, class Column>
T run_label_probability(const char* who, const Options& opt, const MatrixCRef<T>& z,
                        const LabelsCRef& labels, VectorRef<T>* losses, MatrixRef<T>* dlogits,
                        bool per_sample, Column&& column) {
  const Index C = z.rows();
  const Index B = z.cols();
  REGULA_EXPECTS(B > 0, who, "logits must hold at least one sample (column), got ", C, " x ", B);
  REGULA_EXPECTS(C > 0, who, "logits must have at least one class (row), got ", C, " x ", B);
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
          const double l = column(z.col(j).data(), n, static_cast<std::size_t>(yi), gt, dz);
          if (losses != nullptr) (*losses)[j] = static_cast<T>(l);
          acc += l;
        }
        return acc;
      });
  if (per_sample || opt.reduction == Reduction::sum) return static_cast<T>(total);
  return static_cast<T>(total / denom);
}

/// The reduced calls of a label-probability loss (`regula::generalized_cross_entropy` and the
/// others); `Loss` binds its options and kernel (`Options`, `name`, `per_sample_name`, `run`):
/// - `loss(logits, labels, options = {})`: the reduced loss;
/// - `loss(logits, labels, dlogits, options = {})`: the reduced loss and, fused, its gradient.
template <class Loss>
struct LabelLoss {
  using Options = typename Loss::Options;

  template <class D>
  [[nodiscard]] typename D::Scalar operator()(const Eigen::MatrixBase<D>& logits,
                                              const LabelsCRef& labels,
                                              const Options& options = {}) const {
    using T = typename D::Scalar;
    return Loss::template run<T>(Loss::name, MatrixCRef<T>(logits.derived()), labels, options,
                                 nullptr, nullptr, false);
  }
  template <class D>
  typename D::Scalar operator()(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                                MatrixRef<typename D::Scalar> dlogits,
                                const Options& options = {}) const {
    using T = typename D::Scalar;
    return Loss::template run<T>(Loss::name, MatrixCRef<T>(logits.derived()), labels, options,
                                 nullptr, &dlogits, false);
  }
};

/// The per-sample calls of a label-probability loss, no reduction (ignored samples get 0):
/// - `loss(logits, labels, losses, options = {})`: losses[i] = ℓ_i;
/// - `loss(logits, labels, losses, dlogits, options = {})`: with each sample's own gradient,
///   dlogits.col(i) = ∂ℓ_i/∂z_i.
template <class Loss>
struct LabelLossPerSample {
  using Options = typename Loss::Options;

  template <class D>
  void operator()(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                  VectorRef<typename D::Scalar> losses, const Options& options = {}) const {
    using T = typename D::Scalar;
    (void)Loss::template run<T>(Loss::per_sample_name, MatrixCRef<T>(logits.derived()), labels,
                                options, &losses, nullptr, true);
  }
  template <class D>
  void operator()(const Eigen::MatrixBase<D>& logits, const LabelsCRef& labels,
                  VectorRef<typename D::Scalar> losses, MatrixRef<typename D::Scalar> dlogits,
                  const Options& options = {}) const {
    using T = typename D::Scalar;
    (void)Loss::template run<T>(Loss::per_sample_name, MatrixCRef<T>(logits.derived()), labels,
                                options, &losses, &dlogits, true);
  }
};

}  // namespace regula::detail

#endif  // REGULA_LOSSES_LABEL_PROBABILITY_HPP
