// ⊥Grad before an optimizer step: per parameter tensor, remove the gradient's component along
// the weights (and keep its norm, as the official code).
#include <cstdio>

#include <regula/optim/perp_grad.hpp>

int main() {
  Eigen::MatrixXf W = Eigen::MatrixXf::Random(200, 113);   // one parameter tensor
  Eigen::MatrixXf dW = Eigen::MatrixXf::Random(200, 113);  // its gradient
  const regula::PerpGradResult r = regula::perp_grad(W, dW);
  const double along = (W.cast<double>().cwiseProduct(dW.cast<double>())).sum();
  std::printf("removed %.3g·W, |g| %.4f -> %.4f, <W, g'> = %.2g\n", r.coefficient, r.norm_before,
              r.norm_after, along);
  W -= 0.01f * dW;  // then the base optimizer's step (plain SGD here)
  return std::abs(along) < 1e-3 ? 0 : 1;
}
