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

}  // namespace ex
