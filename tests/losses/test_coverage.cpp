#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>

#include "regula/losses/coverage.hpp"
#include "regula/losses/cross_entropy.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace {

using regula::CoverageLossOptions;
using regula::Index;
using regula::Labels;
template <class T>
using Mat = regula::Matrix<T>;

CoverageLossOptions with_n(double n) {
  CoverageLossOptions o;
  o.N = n;
  return o;
}

template <class T>
Mat<T> random_matrix(Index rows, Index cols, double scale, unsigned seed) {
  std::srand(seed);
  return (Eigen::MatrixXd::Random(rows, cols) * scale).cast<T>();
}

}  // namespace

TEMPLATE_TEST_CASE("coverage loss reproduces the test vector of algorithms.md section 10",
                   "[losses][coverage]", float, double) {
  using T = TestType;
  Mat<T> z(3, 1);
  z << T(1), T(2), T(0.5);
  Labels y(1);
  y << 1;
  Mat<T> dz(3, 1);
  const T loss = regula::coverage_loss(z, y, dz, with_n(4));
  CHECK(std::abs(static_cast<double>(loss) - 0.019224489) < 1e-7);
  CHECK(std::abs(static_cast<double>(dz(0)) - 0.030376253) < 1e-7);
  CHECK(std::abs(static_cast<double>(dz(1)) + 0.048800382) < 1e-7);
  CHECK(std::abs(static_cast<double>(dz(2)) - 0.018424129) < 1e-7);
}

TEMPLATE_TEST_CASE("coverage loss with N = 1 equals cross-entropy", "[losses][coverage]", float,
                   double) {
  using T = TestType;
  const Mat<T> z = random_matrix<T>(23, 6, 4.0, 2);
  Labels y(6);
  y << 0, 22, 5, 5, 11, -100;
  Mat<T> d1(23, 6), d2(23, 6);
  const T a = regula::coverage_loss(z, y, d1, with_n(1));
  const T b = regula::cross_entropy(z, y, d2);
  CHECK(std::abs(static_cast<double>(a - b)) <= 1e-6 * static_cast<double>(b));
  CHECK((d1 - d2).cwiseAbs().maxCoeff() <= T(1e-6));
  CHECK(d1.col(5).isZero(0));
}

TEST_CASE("coverage loss: gradient by central differences, and SIMD against the reference",
          "[losses][coverage][gradcheck]") {
  const Eigen::MatrixXd z0 = random_matrix<double>(17, 4, 3.0, 5);
  Labels y(4);
  y << 3, 16, 0, 8;
  const Eigen::MatrixXd one = Eigen::MatrixXd::Ones(1, 1);
  for (const double n : {1.0, 2.0, 8.0, 100.0}) {
    INFO("N = " << n);
    const auto opt = with_n(n);
    const double err = regula::test::gradcheck(
        z0, 1, 1,
        [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& out) {
          out(0, 0) = regula::coverage_loss(x, y, opt);
        },
        [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
          (void)regula::coverage_loss(z0, y, dx, opt);
          dx *= wt(0, 0);
        },
        one);
    CHECK(err < regula::test::fd_tol);
    for (Index j = 0; j < 4; ++j) {
      Eigen::VectorXd a(17), b(17);
      const auto yj = static_cast<std::size_t>(y[j]);
      const double la =
          regula::kernels::coverage_column(z0.col(j).data(), 17, yj, n, 1.0, a.data());
      const double lb =
          regula::kernels::coverage_column_reference(z0.col(j).data(), 17, yj, n, 1.0, b.data());
      CHECK(std::abs(la - lb) < 1e-12 * std::max(1.0, lb));
      CHECK((a - b).cwiseAbs().maxCoeff() < 1e-12);
    }
  }
}

TEMPLATE_TEST_CASE(
    "coverage loss: confident samples stop pulling, extremes stay finite, NaN propagates",
    "[losses][coverage][numerics]", float, double) {
  using T = TestType;
  Mat<T> z(4, 4);
  z << T(9), T(-1e4), T(1e30), T(0),  //
      T(0), T(1e4), T(-1e30), T(0),   //
      T(0), T(0), T(0), T(0),         //
      T(0), T(0), T(0), T(0);
  Labels y(4);
  y << 0, 0, 1, 2;
  Eigen::Matrix<T, Eigen::Dynamic, 1> l(4), lce(4);
  Mat<T> dz(4, 4), dce(4, 4);
  regula::coverage_loss_per_sample(z, y, l, dz, with_n(16));
  regula::cross_entropy_per_sample(z, y, lce, dce);
  CHECK(l.allFinite());
  CHECK(dz.allFinite());
  // A confident correct sample: the coverage gradient is far smaller than cross-entropy's.
  CHECK(std::abs(static_cast<double>(dz(0, 0))) < 1e-3 * std::abs(static_cast<double>(dce(0, 0))));
  // A hopeless sample (p ~ 0): the loss is cross-entropy minus log N, the gradient the same.
  CHECK(std::abs(static_cast<double>(l[1]) - (static_cast<double>(lce[1]) - std::log(16.0))) <=
        1e-6 * static_cast<double>(lce[1]));
  CHECK((dz.col(1) - dce.col(1)).cwiseAbs().maxCoeff() < T(1e-6));
  CHECK(std::abs(static_cast<double>(l[2]) - (static_cast<double>(lce[2]) - std::log(16.0))) <=
        1e-6 * static_cast<double>(lce[2]));
  z(2, 3) = std::numeric_limits<T>::quiet_NaN();
  regula::coverage_loss_per_sample(z, y, l, dz, with_n(16));
  CHECK(std::isnan(l[3]));
  CHECK(std::isfinite(l[0]));
}

TEST_CASE("coverage loss rejects bad arguments and allocates nothing",
          "[losses][coverage][errors]") {
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(5, 3);
  Labels y(3);
  y << 0, 4, 2;
  CHECK_THROWS_WITH(regula::coverage_loss(z, y, with_n(0.5)),
                    "regula::coverage_loss: N must be finite and >= 1, got 0.5");
  CHECK_THROWS_AS(regula::coverage_loss(z, y, with_n(std::nan(""))), regula::invalid_argument);
  Labels bad = y;
  bad[2] = 5;
  CHECK_THROWS_WITH(
      regula::coverage_loss(z, bad),
      "regula::coverage_loss: labels[2] must be in [0, 5) or ignore_index (-100), got 5");
  const Eigen::MatrixXf empty(5, 0);
  CHECK_THROWS_WITH(
      regula::coverage_loss(empty, Labels(0)),
      "regula::coverage_loss: logits must hold at least one sample (column), got 5 x 0");
  Eigen::VectorXf losses(2);
  CHECK_THROWS_WITH(
      regula::coverage_loss_per_sample(z, y, losses),
      "regula::coverage_loss_per_sample: losses must have one value per sample (3), got 2");
  Eigen::MatrixXf dz(5, 3);
  Eigen::VectorXf l3(3);
  float acc = 0;
  {
    regula::test::NoMalloc guard;
    acc += regula::coverage_loss(z, y, dz, with_n(4));
    regula::coverage_loss_per_sample(z, y, l3, dz, with_n(4));
  }
  CHECK(std::isfinite(acc));
}
