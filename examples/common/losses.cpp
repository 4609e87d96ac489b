#include "common/losses.hpp"

#include <algorithm>
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

NestedPrefix::NestedPrefix(std::vector<double> weights) : cdf_(std::move(weights)) {
  double total = 0.0;
  for (double& c : cdf_) {
    total += c;
    c = total;
  }
  for (double& c : cdf_) c /= total;
}

NestedPrefix NestedPrefix::half_gaussian(Index units, double sigma, double mu) {
  std::vector<double> w(static_cast<std::size_t>(units));
  for (std::size_t k = 0; k < w.size(); ++k) {
    const double z = (static_cast<double>(k) - mu) / sigma;
    w[k] = std::exp(-z * z);
  }
  return NestedPrefix(std::move(w));
}

NestedPrefix NestedPrefix::geometric(Index units, double rho) {
  std::vector<double> w(static_cast<std::size_t>(units));
  double p = 1.0 - rho, tail = 1.0;
  for (std::size_t k = 0; k < w.size(); ++k) {
    w[k] = k + 1 == w.size() ? tail : p;  // the mass beyond K lands on K
    tail -= p;
    p *= rho;
  }
  return NestedPrefix(std::move(w));
}

Index NestedPrefix::draw(double u) const {
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end() - 1, u);
  return (it - cdf_.begin()) + 1;
}

Index NestedPrefix::forward(Mat& h, regula::Stream& stream) const {
  const Index b = draw(stream.uniform<double>());
  if (b < h.rows()) h.bottomRows(h.rows() - b).setZero();
  return b;
}

void NestedPrefix::forward_per_sample(Mat& h, regula::Stream& stream, std::vector<Index>& kept) const {
  std::vector<double> u(static_cast<std::size_t>(h.cols()));
  stream.uniform(u.data(), u.size());
  kept.resize(u.size());
  for (Index j = 0; j < h.cols(); ++j) {
    const Index b = draw(u[static_cast<std::size_t>(j)]);
    kept[static_cast<std::size_t>(j)] = b;
    if (b < h.rows()) h.col(j).tail(h.rows() - b).setZero();
  }
}

void NestedPrefix::backward_per_sample(Mat& dh, const std::vector<Index>& kept) {
  for (Index j = 0; j < dh.cols(); ++j) {
    const Index b = kept[static_cast<std::size_t>(j)];
    if (b < dh.rows()) dh.col(j).tail(dh.rows() - b).setZero();
  }
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
