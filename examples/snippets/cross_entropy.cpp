// Cross-entropy in a hand-written training step: the fused call, the per-sample call (what a
// sample selector such as Co-teaching consumes) and the options.
#include <cstdio>

#include <regula/losses/cross_entropy.hpp>

int main() {
  const int classes = 10, batch = 4;
  Eigen::MatrixXf logits = Eigen::MatrixXf::Random(classes, batch);  // one column per sample
  regula::Labels labels(batch);
  labels << 3, 7, 0, -100;  // the last sample is ignored (ignore_index = -100)

  // Fused: the mean loss and dL/dlogits in one pass over each column.
  Eigen::MatrixXf dlogits(classes, batch);
  const float loss = regula::cross_entropy(logits, labels, dlogits);

  // Per sample: one loss per sample, and column i of dgrad = gradient of sample i's own loss.
  Eigen::VectorXf losses(batch);
  Eigen::MatrixXf dgrad(classes, batch);
  regula::cross_entropy_per_sample(logits, labels, losses, dgrad);

  // Options with PyTorch's names; class weights through the loss object; StableMax at compile time.
  const regula::CrossEntropyLoss<float> smoothed(
      regula::CrossEntropyOptions{}.with_label_smoothing(0.1).with_reduction(
          regula::Reduction::sum),
      Eigen::VectorXf::LinSpaced(classes, 0.5f, 2.0f));
  const float weighted = smoothed.forward_backward(logits, labels, dlogits);
  const float stable =
      regula::cross_entropy<regula::Normalizer::stablemax>(logits, labels, dlogits);

  std::printf("mean %.4f  sum of per-sample %.4f  weighted+smoothed %.4f  stablemax %.4f\n",
              static_cast<double>(loss), static_cast<double>(losses.sum()),
              static_cast<double>(weighted), static_cast<double>(stable));
  // The mean over the three non-ignored samples equals the per-sample sum / 3.
  return std::abs(loss - losses.sum() / 3) < 1e-5f ? 0 : 1;
}
