// Softmax Collapse metrics, logged once per epoch as the StableMax paper's logger does.
#include <cstdio>

#include <regula/activations/softmax_collapse.hpp>
#include <regula/losses/cross_entropy.hpp>

int main() {
  Eigen::MatrixXf logits(3, 2);
  logits << 0.0f, 0.0f,  //
      -30.0f, -1.0f,     //
      -30.0f, -1.0f;     // sample 0: margin 30 > 16.6, every other term absorbed in float
  regula::Labels y(2);
  y << 0, 0;
  Eigen::VectorXf losses(2);
  regula::cross_entropy_per_sample(logits, y, losses);
  const double sc = regula::softmax_collapse_fraction(logits);
  const double zero = regula::zero_loss_fraction(losses);
  // The collapsed sample's loss is log1p(2·e^−30) ≈ 1.9e−13, not the 0 of float32 PyTorch.
  std::printf("softmax collapse %.2f, zero terms %.2f, loss of sample 0 %.3g\n", sc, zero,
              static_cast<double>(losses[0]));
  return sc == 0.5 && zero == 0.0 && losses[0] > 0.0f ? 0 : 1;
}
