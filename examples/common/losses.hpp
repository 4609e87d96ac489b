// Example support (not part of the library). The one place where the examples get their
// per-sample cross-entropy and nested-dropout step: local stand-ins written with the signatures
// of regula's cross_entropy_per_sample and NestedDropout, to be replaced by them.
#ifndef REGULA_EXAMPLES_COMMON_LOSSES_HPP
#define REGULA_EXAMPLES_COMMON_LOSSES_HPP

#include <cstdint>
#include <vector>

#include <regula/core/stream.hpp>

#include "common/data.hpp"

namespace ex {

/// Per-sample softmax cross-entropy: losses[i] = log Σ_c exp z_ci − z_{y_i, i} and
/// dlogits.col(i) = softmax(z_i) − e_{y_i} (sample i's own gradient, no 1/B), computed in float
/// with the max subtracted. Same contract as regula::cross_entropy_per_sample.
void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses, Mat& dlogits);

/// Loss only.
void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses);

/// Nested dropout with Chen et al.'s prior (Boosting Co-teaching with Compression
/// Regularization, 2021): one index per mini-batch, P(keep the first b units) ∝
/// exp(−((b − 1 − μ)/σ)²), b = 1..K; units b..K−1 (0-based) are zeroed, no rescaling.
class NestedPrefix {
 public:
  NestedPrefix(Index units, double sigma, double mu = 0.0);
  /// Draws b from `stream` (one uniform) and zeroes rows ≥ b of h in place; returns b.
  Index forward(Mat& h, regula::Stream& stream) const;
  /// dh rows ≥ b are zeroed (the backward of forward with the same b).
  static void backward(Mat& dh, Index b) { if (b < dh.rows()) dh.bottomRows(dh.rows() - b).setZero(); }
  /// The mean number of kept units.
  [[nodiscard]] double mean_kept() const;

 private:
  std::vector<double> cdf_;
};

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_LOSSES_HPP
