#include "common/losses.hpp"

namespace ex {

void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses, Mat& dlogits) {
  losses.resize(logits.cols());
  dlogits.resize(logits.rows(), logits.cols());
  regula::cross_entropy_per_sample(logits, labels, losses, dlogits);
}

void cross_entropy_per_sample(const Mat& logits, const Labels& labels, Vec& losses) {
  losses.resize(logits.cols());
  regula::cross_entropy_per_sample(logits, labels, losses);
}

}  // namespace ex
