#include <cmath>
#include <limits>

#include "regula/layers/alpha_dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

using regula::AlphaDropout;
using regula::AlphaDropoutOptions;
using regula::Index;
using regula::Stream;

TEMPLATE_TEST_CASE(
    "Alpha dropout keeps mean 0 and variance 1 of SELU-normalised input (Monte Carlo)",
    "[layers][alpha][stats]", float, double) {
  using T = TestType;
  // SELU of standard normal input: the self-normalising fixed point (mean 0, variance 1).
  constexpr double lambda = 1.0507009873554804934193349852946;
  constexpr double alpha = 1.6732632423543772848170429916717;
  const Index rows = 1000, cols = 1000;
  regula::Matrix<T> x(rows, cols);
  {
    Stream g(2024, 7);
    regula::Matrix<T> z(rows, cols);
    g.normal(z.data(), static_cast<std::size_t>(z.size()));
    for (Index i = 0; i < z.size(); ++i) {
      const double v = static_cast<double>(z(i));
      x(i) = static_cast<T>(lambda * (v > 0 ? v : alpha * std::expm1(v)));
    }
  }
  const double xm = x.template cast<double>().mean();
  const double xv = (x.template cast<double>().array() - xm).square().mean();
  REQUIRE(std::abs(xm) < 0.01);
  REQUIRE(std::abs(xv - 1) < 0.01);
  for (const double p : {0.1, 0.5}) {
    const AlphaDropout<T> ad(AlphaDropoutOptions{p});
    regula::Matrix<T> y(rows, cols);
    Stream s(5);
    (void)ad.forward(x, y, s);
    const Eigen::ArrayXXd yd = y.template cast<double>().array();
    const double m = yd.mean();
    const double v = (yd - m).square().mean();
    INFO("p = " << p << ": mean " << m << ", variance " << v);
    CHECK(std::abs(m) < 0.01);
    CHECK(std::abs(v - 1) < 0.02);
    // Without the affine correction (plain zeroing), the variance would move far from 1.
    const double zeroed_var = xv / (1 - p);
    CHECK(std::abs(zeroed_var - 1) > 0.1);
  }
}

TEST_CASE("Alpha dropout constants match ATen", "[layers][alpha]") {
  const AlphaDropout<double> ad(AlphaDropoutOptions{0.5});
  const double p = ad.effective_p();
  REQUIRE(p == 0.5);
  const double ap = -1.7580993408473766;
  const double a = std::pow((1 - p) * (1 + p * ap * ap), -0.5);
  CHECK(ad.a() == Approx(a).epsilon(1e-15));
  CHECK(ad.b() == Approx(-a * ap * p).epsilon(1e-15));
  CHECK(ad.dropped_value() == Approx(a * ap - a * ap * p).epsilon(1e-15));
  // torch 1.13: F.alpha_dropout(torch.zeros(n, dtype=torch.float64), 0.5, True) takes exactly the
  // values b (kept) and a·α' + b (dropped).
  CHECK(ad.a() == Approx(0.8864048946659319).epsilon(1e-15));
  CHECK(ad.b() == Approx(0.7791939305180315).epsilon(1e-15));
  CHECK(ad.dropped_value() == Approx(-0.7791939305180315).epsilon(1e-15));
}

TEMPLATE_TEST_CASE("Alpha dropout applies a·x + b to kept elements and a·α' + b to dropped ones",
                   "[layers][alpha]", float, double) {
  using T = TestType;
  const AlphaDropout<T> ad(AlphaDropoutOptions{0.3});
  const regula::Matrix<T> x = regula::Matrix<T>::Random(70, 9);
  regula::Matrix<T> y(70, 9), ref(70, 9), dx(70, 9);
  Stream s(12);
  const auto ctx = ad.forward(x, y, s);
  CHECK(s == Stream(12, 0, regula::kernels::dropout_blocks(630)));
  regula::kernels::KeepBits bits{ctx.draw()};
  for (Index i = 0; i < x.size(); ++i) {
    const bool kept = bits(static_cast<std::uint64_t>(i));
    volatile T ax = ad.a() * x(i);  // a·x rounded before b is added, whatever the build's flags
    CHECK(y(i) == (kept ? ax + ad.b() : ad.a() * (x(i) * T(0)) + ad.dropped_value()));
  }
  for (Index j = 0; j < 9; ++j) {
    regula::kernels::alpha_dropout_segment_reference(ctx.draw(), static_cast<std::size_t>(j * 70),
                                                     70, x.col(j).data(), ad.a(), ad.b(),
                                                     ad.dropped_value(), ref.col(j).data());
  }
  CHECK(ref == y);
  const regula::Matrix<T> dy = regula::Matrix<T>::Ones(70, 9);
  ad.backward(dy, ctx, dx);
  for (Index i = 0; i < x.size(); ++i)
    CHECK(dx(i) == (bits(static_cast<std::uint64_t>(i)) ? ad.a() : T(0)));
}

TEST_CASE("Alpha dropout gradient equals central finite differences",
          "[layers][alpha][gradcheck]") {
  const AlphaDropout<double> ad(AlphaDropoutOptions{0.4});
  const Eigen::MatrixXd x = Eigen::MatrixXd::Random(9, 5), w = Eigen::MatrixXd::Random(9, 5);
  const Stream start(31);
  auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
    Stream s = start;
    (void)ad.forward(in, out, s);
  };
  auto vjp = [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
    Stream s = start;
    Eigen::MatrixXd y(9, 5);
    ad.backward(wt, ad.forward(x, y, s), dx);
  };
  CHECK(regula::test::gradcheck(x, 9, 5, f, vjp, w) < regula::test::fd_tol);
}

TEMPLATE_TEST_CASE("Alpha dropout: eval identity, p = 1 gives 0·x, bad p throws", "[layers][alpha]",
                   float, double) {
  using T = TestType;
  AlphaDropout<T> ad(AlphaDropoutOptions{0.5});
  ad.eval();
  regula::Matrix<T> x = regula::Matrix<T>::Random(4, 3);
  regula::Matrix<T> y(4, 3);
  Stream s(1);
  (void)ad.forward(x, y, s);
  CHECK(y == x);
  CHECK(s.offset() == 0);
  x(0, 0) = std::numeric_limits<T>::quiet_NaN();
  const AlphaDropout<T> all(AlphaDropoutOptions{1.0});
  (void)all.forward(x, y, s);
  CHECK(std::isnan(y(0, 0)));
  CHECK((y.array().bottomRows(3) == T(0)).all());
  CHECK_THROWS_WITH(AlphaDropout<T>(AlphaDropoutOptions{1.5}),
                    "regula::AlphaDropout: p must be in [0, 1], got 1.5");
}

TEMPLATE_TEST_CASE("Alpha dropout refuses outputs that partly overlap the input; in place is exact",
                   "[layers][alpha][alias]", float, double) {
  // Issue 20, item 5: a partly overlapping y was accepted and gave garbage.
  using T = TestType;
  const AlphaDropout<T> ad(AlphaDropoutOptions{0.3});
  regula::Matrix<T> buf = regula::Matrix<T>::Random(131, 4);
  Stream s(3);
  CHECK_THROWS_WITH(
      ad.forward(buf.topRows(130), buf.bottomRows(130), s),
      "regula::AlphaDropout: y must be x itself or not overlap it; it overlaps partly");
  CHECK(s.offset() == 0);
  regula::Matrix<T> y(130, 4);
  auto ctx = ad.forward(buf.topRows(130), y, s);
  CHECK_THROWS_WITH(
      ad.backward(buf.bottomRows(130), ctx, buf.topRows(130)),
      "regula::AlphaDropout::backward: dx must be dy itself or not overlap it; it overlaps partly");
  // A context of a layer with another p.
  const AlphaDropout<T> other(AlphaDropoutOptions{0.6});
  regula::Matrix<T> dx(130, 4);
  CHECK_THROWS_WITH(
      other.backward(y, ctx, dx),
      "regula::AlphaDropout::backward: ctx was filled by a layer with another p (keep threshold "
      "45875, this layer's 26214)");
  const regula::Matrix<T> x = buf.topRows(130);
  regula::Matrix<T> z = x;
  Stream s1(5), s2(5);
  ctx = ad.forward(x, y, s1);
  (void)ad.forward(z, z, s2);
  CHECK(z == y);
  ad.backward(x, ctx, dx);
  z = x;
  ad.backward(z, ctx, z);
  CHECK(z == dx);
}

TEMPLATE_TEST_CASE("Alpha dropout rounds a·x before adding b, on every instruction set",
                   "[layers][alpha][isa]", float, double) {
  // The FMA builds fused a·x + b into one rounding and the SSE2 build rounded twice, so values
  // differed across builds (issue 20). Both roundings are now explicit: each kept element is
  // exactly fl(fl(a·x) + b), computed here through volatile stores the compiler cannot fuse.
  using T = TestType;
  const AlphaDropout<T> ad(AlphaDropoutOptions{0.2});
  const Index rows = 515, cols = 3;  // whole four-tile steps, single tiles and a ragged tail
  regula::Matrix<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i)
    x(i) = static_cast<T>(std::sin(0.731 * static_cast<double>(i)) * 3.0);
  regula::Matrix<T> y(rows, cols);
  Stream s(21);
  const auto ctx = ad.forward(x, y, s);
  regula::kernels::KeepBits bits{ctx.draw()};
  Index fused_would_differ = 0;
  for (Index i = 0; i < x.size(); ++i) {
    volatile T ax = ad.a() * x(i);
    const T two = ax + ad.b();
    if (bits(static_cast<std::uint64_t>(i))) {
      REQUIRE(y(i) == two);
      if (std::fma(ad.a(), x(i), ad.b()) != two) ++fused_would_differ;
    }
  }
  // The inputs are such that a fused multiply-add would give other bits for many elements.
  CHECK(fused_would_differ > 20);
}
