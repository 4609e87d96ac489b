// Softmax and log-softmax forward and backward over the columns of a classes × batch matrix.
#include <cstdio>

#include <regula/activations/softmax.hpp>

int main() {
  Eigen::MatrixXd z = Eigen::MatrixXd::Random(5, 3);
  Eigen::MatrixXd p(5, 3), dz(5, 3);
  regula::softmax(z, p);  // p = softmax(z), per column
  const Eigen::MatrixXd dp = Eigen::MatrixXd::Random(5, 3);
  regula::softmax_backward(p, dp, dz);                // dz = p ⊙ (dp − ⟨dp, p⟩)
  const Eigen::MatrixXd lp = regula::log_softmax(z);  // convenience overload: a new matrix
  regula::log_softmax_backward(lp, dp, dz);           // dz = dp − exp(lp)·Σ dp
  std::printf("column sums of p: %.3f %.3f %.3f\n", p.col(0).sum(), p.col(1).sum(), p.col(2).sum());
  return std::abs(p.col(0).sum() - 1.0) < 1e-12 ? 0 : 1;
}
