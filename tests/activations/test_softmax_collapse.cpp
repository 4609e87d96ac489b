#include <cmath>

#include "regula/activations/softmax_collapse.hpp"
#include "regula/losses/cross_entropy.hpp"

#include "support/catch.hpp"

using regula::CollapseSum;
using regula::Index;

TEST_CASE("softmax collapse is detected at the float and double absorption margins",
          "[activations][collapse]") {
  // Three classes, margin d: collapse iff 1 + 2e^-d rounds to 1 (d >= ln(2/eps) plus the pair).
  auto column = [](double d) {
    Eigen::MatrixXd z(3, 1);
    z << 0.0, -d, -d;
    return z;
  };
  CHECK(regula::softmax_collapse_fraction(column(18.0).cast<float>().eval()) == 1.0);
  CHECK(regula::softmax_collapse_fraction(column(15.0).cast<float>().eval()) == 0.0);
  CHECK(regula::softmax_collapse_fraction(column(18.0)) == 0.0);  // double needs ~37.4
  CHECK(regula::softmax_collapse_fraction(column(38.0)) == 1.0);
  Eigen::MatrixXf mixed(3, 4);
  mixed << 0, 0, 0, 0,   //
      -20, -1, -30, -2,  //
      -20, -1, -30, -2;
  CHECK(regula::softmax_collapse_fraction(mixed) == 0.5);
}

TEST_CASE("collapse depends on the summation order, as documented", "[activations][collapse]") {
  // 1000 classes at margin 16.7 (each term 5.6e-8 < half an ulp of 1 in float): a left-to-right
  // sum from the maximum absorbs every term; a lane-parallel sum adds them up first (5.6e-5).
  Eigen::MatrixXf z = Eigen::MatrixXf::Constant(1000, 1, -16.7f);
  z(0, 0) = 0.0f;
  CHECK(regula::softmax_collapse_fraction(z, CollapseSum::sequential) == 1.0);
  CHECK(regula::softmax_collapse_fraction(z, CollapseSum::simd) == 0.0);
}

TEST_CASE(
    "a collapsed sample keeps an accurate, non-zero cross-entropy; zero_loss_fraction counts "
    "exact zeros",
    "[activations][collapse]") {
  Eigen::MatrixXf z(3, 3);
  z << 0, 0, 5,    //
      -25, -1, 0,  //
      -25, -1, 0;
  regula::Labels y(3);
  y << 0, 0, 0;
  Eigen::VectorXf losses(3);
  regula::cross_entropy_per_sample(z, y, losses);
  // The float32 softmax of column 0 has collapsed (S rounds to 1), but its loss is
  // log1p(2·e^−25), not the 0 that log S − (z_y − m) gives in float.
  CHECK(regula::softmax_collapse_fraction(z) == Approx(1.0 / 3));
  CHECK(static_cast<double>(losses[0]) == Approx(std::log1p(2.0 * std::exp(-25.0))).epsilon(1e-6));
  CHECK(losses[1] > 0.0f);
  CHECK(regula::zero_loss_fraction(losses) == 0.0);
  Eigen::VectorXf with_zero(3);
  with_zero << 0.0f, 1e-30f, 2.0f;
  CHECK(regula::zero_loss_fraction(with_zero) == Approx(1.0 / 3));
  CHECK_THROWS_WITH(regula::zero_loss_fraction(Eigen::VectorXf()),
                    "regula::zero_loss_fraction: losses must not be empty, got 0 x 1");
  CHECK_THROWS_AS(regula::softmax_collapse_fraction(Eigen::MatrixXf(3, 0)),
                  regula::invalid_argument);
}
