// Losses for noisy labels: the generalized cross-entropy (cross-entropy's gradient weighted by
// p^q) and the symmetric cross-entropy (cross-entropy plus the reverse cross-entropy).
#include <cmath>
#include <cstdio>

#include <regula/losses/generalized_cross_entropy.hpp>
#include <regula/losses/symmetric_cross_entropy.hpp>

int main() {
  Eigen::MatrixXf z(3, 1);  // classes × batch
  z << 1.0f, 2.0f, 0.5f;
  regula::Labels y(1);
  y << 1;
  Eigen::MatrixXf dz(3, 1);
  const float gce = regula::generalized_cross_entropy(
      z, y, dz, regula::GeneralizedCrossEntropyOptions{}.with_q(0.7));  // 0.396449513
  const float sce = regula::symmetric_cross_entropy(
      z, y, regula::SymmetricCrossEntropyOptions{}.with_alpha(0.1).with_beta(1.0));  // 3.46778618
  const Eigen::VectorXd gd = dz.cast<double>();
  std::printf("gce %.9f  grad [%.9f %.9f %.9f]  sce %.8f\n", static_cast<double>(gce), gd(0), gd(1),
              gd(2), static_cast<double>(sce));
  return std::abs(gce - 0.396449513f) < 1e-6f && std::abs(sce - 3.46778618f) < 1e-5f ? 0 : 1;
}
