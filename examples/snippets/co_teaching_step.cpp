// One Co-teaching step on the loss side, as docs/noisy_labels.md describes: per-sample
// cross-entropy of two networks, the small-loss exchange, and the gradients each network
// back-propagates.
#include <cstdio>

#include <regula/regula.hpp>

int main() {
  const regula::Index classes = 10, batch = 128;
  regula::Matrix<float> z1 = regula::Matrix<float>::Random(classes, batch);  // logits of network 1
  regula::Matrix<float> z2 = regula::Matrix<float>::Random(classes, batch);  // logits of network 2
  regula::Labels y(batch);
  for (regula::Index i = 0; i < batch; ++i) y(i) = i % classes;

  // Per-sample losses and each sample's own gradient (workspaces reused every step).
  regula::Vector<float> l1(batch), l2(batch);
  regula::Matrix<float> g1(classes, batch), g2(classes, batch);
  regula::cross_entropy_per_sample(z1, y, l1, g1);
  regula::cross_entropy_per_sample(z2, y, l2, g2);

  // Forget rate of this epoch, then the exchange: g1, g2 become dL1/dz1 and dL2/dz2.
  const double rate = regula::forget_rate(regula::ForgetRateOptions{0.5, 10, 1}, /*epoch=*/3);
  regula::CoTeaching<float> co_teaching;
  const auto r = co_teaching.exchange(l1, l2, rate, g1, g2);

  std::printf(
      "forget rate %.2f: network 1 trains on %zu samples (loss %.4f), network 2 on %zu (loss "
      "%.4f)\n",
      rate, r.kept1, static_cast<double>(r.loss1), r.kept2, static_cast<double>(r.loss2));
  // ... back-propagate g1 through network 1 and g2 through network 2, then step each optimizer.
  return r.kept1 == regula::keep_count(batch, rate) ? 0 : 1;
}
