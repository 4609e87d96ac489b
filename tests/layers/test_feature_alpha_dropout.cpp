#include <cmath>
#include <cstring>
#include <limits>

#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/feature_alpha_dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

using regula::ChannelLayout;
using regula::FeatureAlphaDropout;
using regula::FeatureAlphaDropoutOptions;
using regula::Index;
using regula::Stream;

TEMPLATE_TEST_CASE("Feature alpha dropout sets whole channels to a·α' + b, in both layouts",
                   "[layers][feature_alpha]", float, double) {
  using T = TestType;
  const Index C = 6, S = 5, B = 40;
  for (const auto layout : {ChannelLayout::channel_major, ChannelLayout::channel_last}) {
    const FeatureAlphaDropout<T> fa(FeatureAlphaDropoutOptions{0.5, C, layout});
    // The mask is ChannelDropout's on the same stream.
    const regula::ChannelDropout<T> cd(regula::ChannelDropoutOptions{0.5, C, layout});
    regula::Matrix<T> x(C * S, B);
    for (Index i = 0; i < x.size(); ++i)
      x(i) = static_cast<T>(std::sin(0.377 * static_cast<double>(i)) * 2.5);
    regula::Matrix<T> y(C * S, B), yc(C * S, B), dx(C * S, B);
    Stream s(7), sc(7);
    const auto ctx = fa.forward(x, y, s);
    const auto cctx = cd.forward(x, yc, sc);
    CHECK(s == Stream(7, 0, regula::kernels::dropout_blocks(static_cast<std::size_t>(C * B))));
    CHECK(s == sc);
    Index dropped = 0;
    for (Index n = 0; n < B; ++n) {
      for (Index c = 0; c < C; ++c) {
        const bool kept = fa.kept(ctx, c, n);
        REQUIRE(kept == cd.kept(cctx, c, n));
        dropped += kept ? 0 : 1;
        for (Index sp = 0; sp < S; ++sp) {
          const Index f = layout == ChannelLayout::channel_major ? c * S + sp : sp * C + c;
          volatile T ax = fa.a() * x(f, n);  // a·x rounded before b, whatever the build's flags
          REQUIRE(y(f, n) == (kept ? ax + fa.b() : fa.dropped_value()));
        }
      }
    }
    // About half of the 240 channels dropped (5 sigma: ±39).
    CHECK(std::abs(static_cast<double>(dropped) - 120.0) < 39.0);
    const regula::Matrix<T> dy = regula::Matrix<T>::Ones(C * S, B);
    fa.backward(dy, ctx, dx);
    for (Index n = 0; n < B; ++n)
      for (Index c = 0; c < C; ++c)
        for (Index sp = 0; sp < S; ++sp) {
          const Index f = layout == ChannelLayout::channel_major ? c * S + sp : sp * C + c;
          REQUIRE(dx(f, n) == (fa.kept(ctx, c, n) ? fa.a() : T(0)));
        }
  }
}

TEMPLATE_TEST_CASE(
    "Feature alpha dropout with one position per channel is AlphaDropout, bit for bit",
    "[layers][feature_alpha]", float, double) {
  using T = TestType;
  const Index rows = 515, cols = 7;  // whole tiles, single tiles and a ragged tail of the kernel
  const FeatureAlphaDropout<T> fa(FeatureAlphaDropoutOptions{}.with_p(0.3).with_channels(rows));
  const regula::AlphaDropout<T> ad(regula::AlphaDropoutOptions{0.3});
  CHECK(fa.a() == ad.a());
  CHECK(fa.b() == ad.b());
  CHECK(fa.dropped_value() == ad.dropped_value());
  CHECK(fa.effective_p() == ad.effective_p());
  regula::Matrix<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i)
    x(i) = static_cast<T>(std::sin(0.731 * static_cast<double>(i)) * 3.0);
  x(3, 2) = std::numeric_limits<T>::quiet_NaN();
  x(9, 4) = std::numeric_limits<T>::infinity();
  regula::Matrix<T> y1(rows, cols), y2(rows, cols), d1(rows, cols), d2(rows, cols);
  Stream s1(44), s2(44);
  const auto c1 = fa.forward(x, y1, s1);
  const auto c2 = ad.forward(x, y2, s2);
  CHECK(s1 == s2);
  // Compared as bits: NaN stays NaN in both, and an infinite input is NaN when dropped.
  CHECK(std::memcmp(y1.data(), y2.data(), sizeof(T) * static_cast<std::size_t>(y1.size())) == 0);
  fa.backward(x, c1, d1);
  ad.backward(x, c2, d2);
  CHECK(std::memcmp(d1.data(), d2.data(), sizeof(T) * static_cast<std::size_t>(d1.size())) == 0);
  CHECK(std::isnan(y1(3, 2)));
}

TEMPLATE_TEST_CASE(
    "Feature alpha dropout keeps mean 0 and variance 1 of SELU-normalised input (Monte Carlo)",
    "[layers][feature_alpha][stats]", float, double) {
  using T = TestType;
  constexpr double lambda = 1.0507009873554804934193349852946;
  constexpr double alpha = 1.6732632423543772848170429916717;
  const Index C = 500, S = 4, B = 500;  // 250,000 channel draws
  regula::Matrix<T> x(C * S, B);
  {
    Stream g(2024, 9);
    regula::Matrix<T> z(C * S, B);
    g.normal(z.data(), static_cast<std::size_t>(z.size()));
    for (Index i = 0; i < z.size(); ++i) {
      const double v = static_cast<double>(z(i));
      x(i) = static_cast<T>(lambda * (v > 0 ? v : alpha * std::expm1(v)));
    }
  }
  for (const double p : {0.1, 0.5}) {
    const FeatureAlphaDropout<T> fa(FeatureAlphaDropoutOptions{p, C});
    regula::Matrix<T> y(C * S, B);
    Stream s(5);
    (void)fa.forward(x, y, s);
    const Eigen::ArrayXXd yd = y.template cast<double>().array();
    const double m = yd.mean();
    const double v = (yd - m).square().mean();
    INFO("p = " << p << ": mean " << m << ", variance " << v);
    CHECK(std::abs(m) < 0.01);
    CHECK(std::abs(v - 1) < 0.02);
  }
}

TEST_CASE("Feature alpha dropout gradient equals central finite differences",
          "[layers][feature_alpha][gradcheck]") {
  for (const auto layout : {ChannelLayout::channel_major, ChannelLayout::channel_last}) {
    const FeatureAlphaDropout<double> fa(FeatureAlphaDropoutOptions{0.4, 3, layout});
    const Eigen::MatrixXd x = Eigen::MatrixXd::Random(12, 5), w = Eigen::MatrixXd::Random(12, 5);
    const Stream start(8);
    auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
      Stream s = start;
      (void)fa.forward(in, out, s);
    };
    auto vjp = [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
      Stream s = start;
      Eigen::MatrixXd y(12, 5);
      fa.backward(wt, fa.forward(x, y, s), dx);
    };
    CHECK(regula::test::gradcheck(x, 12, 5, f, vjp, w) < regula::test::fd_tol);
  }
}

TEMPLATE_TEST_CASE("Feature alpha dropout: eval identity, p = 1 gives 0·x, bad arguments throw",
                   "[layers][feature_alpha][errors]", float, double) {
  using T = TestType;
  FeatureAlphaDropout<T> fa(FeatureAlphaDropoutOptions{0.5, 4});
  regula::Matrix<T> x = regula::Matrix<T>::Random(8, 3);
  regula::Matrix<T> y(8, 3);
  Stream s(1);
  fa.eval();
  auto ctx = fa.forward(x, y, s);
  CHECK(y == x);
  CHECK(s.offset() == 0);
  regula::Matrix<T> dx(8, 3);
  fa.backward(x, ctx, dx);
  CHECK(dx == x);
  x(0, 0) = std::numeric_limits<T>::quiet_NaN();
  const FeatureAlphaDropout<T> all(FeatureAlphaDropoutOptions{1.0, 4});
  (void)all.forward(x, y, s);
  CHECK(std::isnan(y(0, 0)));
  CHECK((y.array().bottomRows(7) == T(0)).all());
  CHECK(s.offset() == 0);
  const regula::Matrix<T> odd = regula::Matrix<T>::Random(10, 3);
  regula::Matrix<T> yo(10, 3);
  fa.train();
  CHECK_THROWS_WITH(fa.forward(odd, yo, s),
                    "regula::FeatureAlphaDropout: channels (4) must divide the feature count of "
                    "x, got 10 features");
  CHECK(s.offset() == 0);
  CHECK_THROWS_WITH(FeatureAlphaDropout<T>(FeatureAlphaDropoutOptions{0.5, 0}),
                    "regula::FeatureAlphaDropout: channels must be at least 1, got 0");
  CHECK_THROWS_WITH(FeatureAlphaDropout<T>(FeatureAlphaDropoutOptions{-0.5, 1}),
                    "regula::FeatureAlphaDropout: p must be in [0, 1], got -0.5");
  CHECK_THROWS_WITH(
      FeatureAlphaDropout<T>(FeatureAlphaDropoutOptions{std::numeric_limits<double>::quiet_NaN()}),
      "regula::FeatureAlphaDropout: p must be in [0, 1], got nan");
}

TEMPLATE_TEST_CASE(
    "Feature alpha dropout refuses outputs that partly overlap the input; in place is exact",
    "[layers][feature_alpha][alias]", float, double) {
  using T = TestType;
  const FeatureAlphaDropout<T> fa(FeatureAlphaDropoutOptions{0.5, 3});
  regula::Matrix<T> buf = regula::Matrix<T>::Random(13, 8);
  Stream s(3);
  CHECK_THROWS_WITH(
      fa.forward(buf.topRows(12), buf.bottomRows(12), s),
      "regula::FeatureAlphaDropout: y must be x itself or not overlap it; it overlaps partly");
  CHECK(s.offset() == 0);
  regula::Matrix<T> y(12, 8), dx(12, 8);
  auto ctx = fa.forward(buf.topRows(12), y, s);
  CHECK_THROWS_WITH(fa.backward(buf.topRows(12), ctx, buf.bottomRows(12)),
                    "regula::FeatureAlphaDropout::backward: dx must be dy itself or not overlap "
                    "it; it overlaps partly");
  const FeatureAlphaDropout<T> other(FeatureAlphaDropoutOptions{0.25, 3});
  CHECK_THROWS_WITH(other.backward(y, ctx, dx),
                    "regula::FeatureAlphaDropout::backward: ctx was filled by a layer with another "
                    "p (keep threshold 32768, this layer's 49152)");
  const FeatureAlphaDropout<T> five(FeatureAlphaDropoutOptions{0.5, 5});
  CHECK_THROWS_WITH(five.backward(y, ctx, dx),
                    "regula::FeatureAlphaDropout::backward: channels (5) must divide the feature "
                    "count of dy, got 12 features");
  regula::Matrix<T> wrong(12, 7);
  CHECK_THROWS_WITH(fa.backward(wrong, ctx, wrong),
                    "regula::FeatureAlphaDropout::backward: dy must have the shape of the forward "
                    "input (12 x 8), got 12 x 7");
  const regula::Matrix<T> x = buf.topRows(12);
  regula::Matrix<T> z = x;
  Stream s1(5), s2(5);
  ctx = fa.forward(x, y, s1);
  (void)fa.forward(z, z, s2);
  CHECK(z == y);
  fa.backward(x, ctx, dx);
  z = x;
  fa.backward(z, ctx, z);
  CHECK(z == dx);
}
