// StableMax and its cross-entropy (Prieto et al., ICLR 2025).
#include <cstdio>

#include <regula/activations/stablemax.hpp>
#include <regula/losses/cross_entropy.hpp>

int main() {
  Eigen::MatrixXf z(3, 1);
  z << 2.0f, 0.0f, -1.0f;
  const Eigen::MatrixXf p = regula::stablemax(z);  // [2/3, 2/9, 1/9]: s(x) = x+1 or 1/(1−x)
  regula::Labels y(1);
  y << 0;
  Eigen::MatrixXf dz(3, 1);
  const float loss = regula::stablemax_cross_entropy(z, y, dz);  // log S − log s(z_y), in double
  const Eigen::VectorXd pd = p.cast<double>(), gd = dz.cast<double>();
  std::printf("p = [%.4f %.4f %.4f]  loss %.6f  grad [%.4f %.4f %.4f]\n", pd(0), pd(1), pd(2),
              static_cast<double>(loss), gd(0), gd(1), gd(2));
  return std::abs(loss - 0.405465108f) < 1e-6f ? 0 : 1;
}
