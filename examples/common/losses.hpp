// Example support (not part of the library). The one place where the examples get their
// per-sample cross-entropy: a local stand-in with the contract of regula's
// cross_entropy_per_sample, to be replaced by it.
#ifndef REGULA_EXAMPLES_COMMON_LOSSES_HPP
#define REGULA_EXAMPLES_COMMON_LOSSES_HPP

#include <cstdint>
#include <vector>

#include "common/data.hpp"

namespace ex {

/// Per-sample softmax cross-entropy: losses[i] = log Σ_c exp z_ci − z_{y_i, i} and
/// dlogits.col(i) = softmax(z_i) − e_{y_i} (sample i's own gradient, no 1/B), computed in float
/// with the max subtracted. Same contract as regula::cross_entropy_per_sample.
void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses, Mat& dlogits);

/// The same as a loss functor for regula::MultiSampleDropout (outputs pre-sized by the caller).
struct CrossEntropyLoss {
  void operator()(const Eigen::Ref<const Mat>& logits, const Eigen::Ref<const Labels>& labels,
                  Eigen::Ref<Vec> losses, Eigen::Ref<Mat> dlogits) const;
};

/// Loss only.
void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses);

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_LOSSES_HPP
