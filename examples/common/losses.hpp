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

/// Nested dropout (Rippel et al., ICML 2014): keep the first b units, zero the rest, no
/// rescaling, b drawn from a prior over 1..K. Per batch (one b, Chen et al.) or per sample.
class NestedPrefix {
 public:
  /// Chen et al.'s prior (`GaussianDist`): P(keep the first b units) ∝ exp(−((b − 1 − μ)/σ)²).
  static NestedPrefix half_gaussian(Index units, double sigma, double mu = 0.0);
  /// Rippel et al.'s prior: P(b) = ρ^(b−1)(1 − ρ), the tail beyond K clamped onto K.
  static NestedPrefix geometric(Index units, double rho);

  /// One b for the whole batch: draws one uniform from `stream`, zeroes rows ≥ b of h in place,
  /// returns b.
  Index forward(Mat& h, regula::Stream& stream) const;
  /// One b per sample (column), written to `kept`.
  void forward_per_sample(Mat& h, regula::Stream& stream, std::vector<Index>& kept) const;
  /// The backward of forward with the same b: rows ≥ b of dh are zeroed.
  static void backward(Mat& dh, Index b) { if (b < dh.rows()) dh.bottomRows(dh.rows() - b).setZero(); }
  static void backward_per_sample(Mat& dh, const std::vector<Index>& kept);
  /// The mean number of kept units.
  [[nodiscard]] double mean_kept() const;

 private:
  explicit NestedPrefix(std::vector<double> weights);
  [[nodiscard]] Index draw(double u) const;
  std::vector<double> cdf_;
};

}  // namespace ex

#endif  // REGULA_EXAMPLES_COMMON_LOSSES_HPP
