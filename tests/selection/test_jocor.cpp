#include <cmath>
#include <vector>

#include "regula/selection/jocor.hpp"
#include "support/catch.hpp"
#include "support/gradcheck.hpp"

namespace {

using Mat = regula::Matrix<double>;

/// The joint loss of one sample, restated from the paper with plain softmax in double.
double joint_loss(const Eigen::VectorXd& z1, const Eigen::VectorXd& z2, std::int64_t y, double lambda) {
  const Eigen::ArrayXd p = (z1.array() - z1.maxCoeff()).exp() / (z1.array() - z1.maxCoeff()).exp().sum();
  const Eigen::ArrayXd q = (z2.array() - z2.maxCoeff()).exp() / (z2.array() - z2.maxCoeff()).exp().sum();
  const double ce = -std::log(p(y)) - std::log(q(y));
  const double kl_qp = (q * (q.log() - p.log())).sum();
  const double kl_pq = (p * (p.log() - q.log())).sum();
  return (1 - lambda) * ce + lambda * (kl_qp + kl_pq);
}

}  // namespace

TEST_CASE("JoCoR per-sample joint losses follow the paper's formula", "[selection][jocor]") {
  const Mat z1 = Mat::Random(5, 9) * 3.0, z2 = Mat::Random(5, 9) * 3.0;
  regula::Labels y(9);
  for (int j = 0; j < 9; ++j) y(j) = j % 5;
  regula::JoCoR<double> jocor({0.7});
  regula::Vector<double> l(9);
  jocor.per_sample(z1, z2, y, l);
  for (int j = 0; j < 9; ++j) CHECK(std::abs(l(j) - joint_loss(z1.col(j), z2.col(j), y(j), 0.7)) < 1e-12);
}

TEST_CASE("JoCoR selects the smallest joint losses and its gradients equal finite differences",
          "[selection][jocor][gradcheck]") {
  const Mat z1 = Mat::Random(4, 10) * 2.0, z2 = Mat::Random(4, 10) * 2.0;
  regula::Labels y(10);
  for (int j = 0; j < 10; ++j) y(j) = (3 * j) % 4;
  const double lambda = 0.6;
  regula::JoCoR<double> jocor({lambda});
  Mat g1(4, 10), g2(4, 10);
  const auto r = jocor.step(z1, z2, y, 0.4, g1, g2);
  REQUIRE(r.kept == 6);
  regula::Vector<double> l(10);
  jocor.per_sample(z1, z2, y, l);
  regula::SmallLossSelector<double> ref;
  const auto sel = ref.select(l, 6);
  CHECK(jocor.selected() == sel);
  double mean = 0;
  for (auto j : sel) mean += l(j) / 6;
  CHECK(std::abs(r.loss - mean) < 1e-13);
  // L as a function of z¹ (z² fixed) and of z² (z¹ fixed), over the fixed selection.
  auto loss_of = [&](const Mat& a, const Mat& b) {
    double s = 0;
    for (auto j : sel) s += joint_loss(a.col(j), b.col(j), y(j), lambda);
    return s / static_cast<double>(sel.size());
  };
  const Eigen::MatrixXd w = Eigen::MatrixXd::Constant(1, 1, 0.9);
  auto f1 = [&](const Eigen::MatrixXd& z, Eigen::MatrixXd& out) { out = Eigen::MatrixXd::Constant(1, 1, loss_of(z, z2)); };
  auto f2 = [&](const Eigen::MatrixXd& z, Eigen::MatrixXd& out) { out = Eigen::MatrixXd::Constant(1, 1, loss_of(z1, z)); };
  CHECK(regula::test::gradcheck(z1, 1, 1, f1, [&](const Eigen::MatrixXd& v, Eigen::MatrixXd& d) { d = g1 * v(0, 0); }, w) < 1e-7);
  CHECK(regula::test::gradcheck(z2, 1, 1, f2, [&](const Eigen::MatrixXd& v, Eigen::MatrixXd& d) { d = g2 * v(0, 0); }, w) < 1e-7);
  // Unselected samples get no gradient.
  for (int j = 0; j < 10; ++j) {
    if (std::find(sel.begin(), sel.end(), j) == sel.end()) {
      CHECK(g1.col(j).isZero());
      CHECK(g2.col(j).isZero());
    }
  }
}

TEST_CASE("JoCoR with lambda = 0 is Co-teaching's cross-entropy on the joint selection", "[selection][jocor]") {
  const Mat z1 = Mat::Random(3, 6), z2 = Mat::Random(3, 6);
  regula::Labels y(6);
  y << 0, 1, 2, 0, 1, 2;
  regula::JoCoR<double> jocor({0.0});
  regula::Vector<double> l(6);
  jocor.per_sample(z1, z2, y, l);
  for (int j = 0; j < 6; ++j) CHECK(std::abs(l(j) - joint_loss(z1.col(j), z2.col(j), y(j), 0.0)) < 1e-13);
}

TEST_CASE("JoCoR stays finite for confident networks in float", "[selection][jocor]") {
  regula::Matrix<float> z1(3, 2), z2(3, 2);
  z1 << 1e4F, -1e4F, 0, 0, -1e4F, 1e4F;
  z2 << -1e4F, 1e4F, 1e4F, 0, 0, -1e4F;
  regula::Labels y(2);
  y << 0, 1;
  regula::JoCoR<float> jocor({0.5});
  regula::Matrix<float> g1(3, 2), g2(3, 2);
  const auto r = jocor.step(z1, z2, y, 0.0, g1, g2);
  CHECK(std::isfinite(r.loss));
  CHECK(g1.allFinite());
  CHECK(g2.allFinite());
}

TEST_CASE("JoCoR rejects bad input, naming the parameter", "[selection][jocor][errors]") {
  CHECK_THROWS_WITH(regula::JoCoR<double>({1.5}), "regula::JoCoR: lambda must be in [0, 1], got 1.5");
  regula::JoCoR<double> jocor;
  const Mat z = Mat::Zero(3, 2);
  regula::Labels y(2);
  y << 0, 3;
  regula::Vector<double> l(2);
  CHECK_THROWS_WITH(jocor.per_sample(z, z, y, l), "regula::JoCoR::per_sample: labels(1) must be in [0, 3), got 3");
  regula::Labels y1(1);
  y1 << 0;
  CHECK_THROWS_AS(jocor.per_sample(z, z, y1, l), regula::invalid_argument);
  const Mat z4 = Mat::Zero(4, 2);
  CHECK_THROWS_AS(jocor.per_sample(z, z4, y, l), regula::invalid_argument);
}
