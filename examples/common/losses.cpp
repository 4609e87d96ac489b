#include "common/losses.hpp"

#include <algorithm>
#include <cmath>

namespace ex {

void CrossEntropyLoss::operator()(const Eigen::Ref<const Mat>& logits, const Eigen::Ref<const Labels>& labels,
                                  Eigen::Ref<Vec> losses, Eigen::Ref<Mat> dlogits) const {
  for (Index j = 0; j < logits.cols(); ++j) {
    const float m = logits.col(j).maxCoeff();
    dlogits.col(j) = (logits.col(j).array() - m).exp();
    const float s = dlogits.col(j).sum();
    const Index y = labels(j);
    losses(j) = std::log(s) - (logits(y, j) - m);
    dlogits.col(j) /= s;
    dlogits(y, j) -= 1.0F;
  }
}

void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses, Mat& dlogits) {
  losses.resize(logits.cols());
  dlogits.resize(logits.rows(), logits.cols());
  CrossEntropyLoss{}(logits, labels, losses, dlogits);
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
