#include <cmath>

#include "regula/layers/gaussian_dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

using regula::GaussianDropout;
using regula::GaussianDropoutOptions;
using regula::Index;
using regula::Stream;

TEMPLATE_TEST_CASE("Gaussian dropout keeps E[y] = x and Var[y] = x^2 p/(1-p) (Monte Carlo)",
                   "[layers][gaussian][stats]", float, double) {
  using T = TestType;
  const double p = 0.3;
  const GaussianDropout<T> gd(GaussianDropoutOptions{p});
  const regula::Matrix<T> x = regula::Matrix<T>::Constant(1000, 200, T(2));
  regula::Matrix<T> y(1000, 200);
  Stream s(17);
  (void)gd.forward(x, y, s);
  const Eigen::ArrayXXd yd = y.template cast<double>().array();
  const double n = static_cast<double>(y.size());
  const double var = 4.0 * p / (1 - p);
  const double mean = yd.mean();
  CHECK(std::abs(mean - 2.0) < 5.0 * std::sqrt(var / n));
  const double sample_var = (yd - mean).square().sum() / (n - 1);
  CHECK(std::abs(sample_var - var) < 0.02 * var);
  CHECK((yd < 0).any());  // r may be negative
}

TEMPLATE_TEST_CASE("Gaussian dropout noise is Stream::normal at the call's position",
                   "[layers][gaussian]", float, double) {
  using T = TestType;
  const GaussianDropout<T> gd(GaussianDropoutOptions{0.5});
  const regula::Matrix<T> x = regula::Matrix<T>::Random(13, 7);
  regula::Matrix<T> y(13, 7);
  Stream s(3, 1, 10);
  (void)gd.forward(x, y, s);
  CHECK(s == Stream(3, 1, 10 + (91 + 3) / 4));
  Stream r(3, 1, 10);
  double z[91];
  r.normal(z, 91);
  for (Index i = 0; i < 91; ++i) CHECK(y(i) == x(i) * static_cast<T>(1.0 + gd.stddev() * z[i]));
  regula::Matrix<T> ref(13, 7);
  for (Index j = 0; j < 7; ++j) {
    regula::kernels::gaussian_multiply_segment_reference(
        Stream(3, 1, 10), static_cast<std::size_t>(j * 13), 13, x.col(j).data(), gd.stddev(),
        ref.col(j).data());
  }
  CHECK(ref == y);
}

TEST_CASE("Gaussian dropout gradient equals central finite differences",
          "[layers][gaussian][gradcheck]") {
  const GaussianDropout<double> gd(GaussianDropoutOptions{0.4});
  const Eigen::MatrixXd x = Eigen::MatrixXd::Random(7, 5), w = Eigen::MatrixXd::Random(7, 5);
  const Stream start(9);
  auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
    Stream s = start;
    (void)gd.forward(in, out, s);
  };
  auto vjp = [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
    Stream s = start;
    Eigen::MatrixXd y(7, 5);
    gd.backward(wt, gd.forward(x, y, s), dx);
  };
  CHECK(regula::test::gradcheck(x, 7, 5, f, vjp, w) < regula::test::fd_tol);
}

TEMPLATE_TEST_CASE("Gaussian dropout: eval and p = 0 are the identity; bad p throws",
                   "[layers][gaussian]", float, double) {
  using T = TestType;
  GaussianDropout<T> gd(GaussianDropoutOptions{0.5});
  gd.eval();
  const regula::Matrix<T> x = regula::Matrix<T>::Random(5, 3);
  regula::Matrix<T> y(5, 3);
  Stream s(1);
  (void)gd.forward(x, y, s);
  CHECK(y == x);
  CHECK(s.offset() == 0);
  const GaussianDropout<T> none(GaussianDropoutOptions{0.0});
  (void)none.forward(x, y, s);
  CHECK(y == x);
  CHECK_THROWS_WITH(GaussianDropout<T>(GaussianDropoutOptions{1.0}),
                    "regula::GaussianDropout: p must be in [0, 1), got 1");
  CHECK_THROWS_AS(GaussianDropout<T>(GaussianDropoutOptions{-0.5}), regula::invalid_argument);
  regula::Matrix<T> wrong(5, 4);
  CHECK_THROWS_WITH(gd.forward(x, wrong, s),
                    "regula::GaussianDropout: y must have the shape of x (5 x 3), got 5 x 4");
}

TEMPLATE_TEST_CASE(
    "Gaussian dropout refuses outputs that partly overlap the input; in place is exact",
    "[layers][gaussian][alias]", float, double) {
  // Issue 20, item 5: a partly overlapping y was accepted and gave garbage.
  using T = TestType;
  const GaussianDropout<T> gd(GaussianDropoutOptions{0.4});
  regula::Matrix<T> buf = regula::Matrix<T>::Random(9, 6);
  Stream s(3);
  // y one element after x in the same storage.
  CHECK_THROWS_WITH(
      gd.forward(buf.topRows(8), buf.bottomRows(8), s),
      "regula::GaussianDropout: y must be x itself or not overlap it; it overlaps partly");
  // The same first element, another column stride.
  const Eigen::Map<regula::Matrix<T>> compact(buf.data(), 4, 6);
  Eigen::Map<regula::Matrix<T>, 0, Eigen::OuterStride<>> strided(buf.data(), 4, 6,
                                                                 Eigen::OuterStride<>(9));
  CHECK_THROWS_WITH(gd.forward(compact, strided, s),
                    "regula::GaussianDropout: y aliases x with another layout");
  CHECK(s.offset() == 0);  // refused before drawing
  regula::Matrix<T> scratch(8, 6);
  auto ctx = gd.forward(buf.topRows(8), scratch, s);
  CHECK_THROWS_WITH(gd.backward(buf.topRows(8), ctx, buf.bottomRows(8)),
                    "regula::GaussianDropout::backward: dx must be dy itself or not overlap it; it "
                    "overlaps partly");
  // Exactly in place equals out of place, forward and backward.
  const regula::Matrix<T> x = buf.topRows(8);
  regula::Matrix<T> y(8, 6), z = x, dx(8, 6);
  Stream s1(5), s2(5);
  ctx = gd.forward(x, y, s1);
  (void)gd.forward(z, z, s2);
  CHECK(z == y);
  gd.backward(x, ctx, dx);
  z = x;
  gd.backward(z, ctx, z);
  CHECK(z == dx);
}
