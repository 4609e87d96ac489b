// The pass@N coverage loss: cross-entropy's gradient scaled down on confident samples.
#include <cstdio>

#include <regula/losses/coverage.hpp>

int main() {
  Eigen::MatrixXf z(3, 1);
  z << 1.0f, 2.0f, 0.5f;
  regula::Labels y(1);
  y << 1;
  regula::CoverageLossOptions opt;
  opt.N = 4;  // pass@4
  Eigen::MatrixXf dz(3, 1);
  const float loss = regula::coverage_loss(z, y, dz, opt);
  const Eigen::VectorXd gd = dz.cast<double>();
  std::printf("loss %.9f  grad [%.9f %.9f %.9f]\n", static_cast<double>(loss), gd(0), gd(1), gd(2));
  return std::abs(loss - 0.019224489f) < 1e-6f ? 0 : 1;
}
