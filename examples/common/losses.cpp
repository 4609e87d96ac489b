#include "common/losses.hpp"

#include <cmath>

namespace ex {

void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses, Mat& dlogits) {
  const Index b = logits.cols();
  losses.resize(b);
  dlogits.resize(logits.rows(), b);
  for (Index j = 0; j < b; ++j) {
    const float m = logits.col(j).maxCoeff();
    dlogits.col(j) = (logits.col(j).array() - m).exp();
    const float s = dlogits.col(j).sum();
    const Index y = static_cast<Index>(labels(j));
    losses(j) = std::log(s) - (logits(y, j) - m);
    dlogits.col(j) /= s;
    dlogits(y, j) -= 1.0F;
  }
}

void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses) {
  const Index b = logits.cols();
  losses.resize(b);
  for (Index j = 0; j < b; ++j) {
    const float m = logits.col(j).maxCoeff();
    const float s = (logits.col(j).array() - m).exp().sum();
    losses(j) = std::log(s) - (logits(static_cast<Index>(labels(j)), j) - m);
  }
}

NestedPrefix::NestedPrefix(Index units, double sigma, double mu) {
  cdf_.resize(static_cast<std::size_t>(units));
  double total = 0.0;
  for (Index k = 0; k < units; ++k) {
    const double z = (static_cast<double>(k) - mu) / sigma;
    total += std::exp(-z * z);
    cdf_[static_cast<std::size_t>(k)] = total;
  }
  for (double& c : cdf_) c /= total;
}

Index NestedPrefix::forward(Mat& h, regula::Stream& stream) const {
  const double u = stream.uniform<double>();
  Index k = 0;
  while (k + 1 < static_cast<Index>(cdf_.size()) && u >= cdf_[static_cast<std::size_t>(k)]) ++k;
  const Index b = k + 1;
  if (b < h.rows()) h.bottomRows(h.rows() - b).setZero();
  return b;
}

double NestedPrefix::mean_kept() const {
  double mean = 0.0, prev = 0.0;
  for (std::size_t k = 0; k < cdf_.size(); ++k) {
    mean += static_cast<double>(k + 1) * (cdf_[k] - prev);
    prev = cdf_[k];
  }
  return mean;
}

}  // namespace ex
