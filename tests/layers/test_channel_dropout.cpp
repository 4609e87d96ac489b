#include <cmath>

#include "regula/layers/channel_dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

using regula::ChannelDropout;
using regula::ChannelDropoutOptions;
using regula::ChannelLayout;
using regula::Index;
using regula::Stream;

TEMPLATE_TEST_CASE("Channel dropout drops whole channels, in both layouts", "[layers][channel]",
                   float, double) {
  using T = TestType;
  const Index C = 6, S = 5, B = 40;
  for (const auto layout : {ChannelLayout::channel_major, ChannelLayout::channel_last}) {
    const ChannelDropout<T> cd(ChannelDropoutOptions{0.5, C, layout});
    const regula::Matrix<T> x = regula::Matrix<T>::Random(C * S, B).array() + T(2);  // no zeros
    regula::Matrix<T> y(C * S, B), dx(C * S, B);
    Stream s(7);
    const auto ctx = cd.forward(x, y, s);
    CHECK(s == Stream(7, 0, regula::kernels::dropout_blocks(static_cast<std::size_t>(C * B))));
    Index dropped = 0;
    for (Index n = 0; n < B; ++n) {
      for (Index c = 0; c < C; ++c) {
        const bool kept = cd.kept(ctx, c, n);
        dropped += kept ? 0 : 1;
        for (Index sp = 0; sp < S; ++sp) {
          const Index f = layout == ChannelLayout::channel_major ? c * S + sp : sp * C + c;
          REQUIRE(y(f, n) == (kept ? x(f, n) * cd.scale() : T(0)));
        }
      }
    }
    // About half of the 240 channels dropped (5 sigma: ±39).
    CHECK(std::abs(static_cast<double>(dropped) - 120.0) < 39.0);
    cd.backward(x, ctx, dx);
    CHECK(dx == y);
  }
}

TEST_CASE("Channel dropout gradient equals central finite differences",
          "[layers][channel][gradcheck]") {
  for (const auto layout : {ChannelLayout::channel_major, ChannelLayout::channel_last}) {
    const ChannelDropout<double> cd(ChannelDropoutOptions{0.4, 3, layout});
    const Eigen::MatrixXd x = Eigen::MatrixXd::Random(12, 5), w = Eigen::MatrixXd::Random(12, 5);
    const Stream start(8);
    auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
      Stream s = start;
      (void)cd.forward(in, out, s);
    };
    auto vjp = [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
      Stream s = start;
      Eigen::MatrixXd y(12, 5);
      cd.backward(wt, cd.forward(x, y, s), dx);
    };
    CHECK(regula::test::gradcheck(x, 12, 5, f, vjp, w) < regula::test::fd_tol);
  }
}

TEMPLATE_TEST_CASE("Channel dropout: eval identity; bad channels and p throw",
                   "[layers][channel][errors]", float, double) {
  using T = TestType;
  ChannelDropout<T> cd(ChannelDropoutOptions{0.5, 4});
  const regula::Matrix<T> x = regula::Matrix<T>::Random(8, 3);
  regula::Matrix<T> y(8, 3);
  Stream s(1);
  cd.eval();
  (void)cd.forward(x, y, s);
  CHECK(y == x);
  CHECK(s.offset() == 0);
  const regula::Matrix<T> odd = regula::Matrix<T>::Random(10, 3);
  regula::Matrix<T> yo(10, 3);
  CHECK_THROWS_WITH(
      cd.forward(odd, yo, s),
      "regula::ChannelDropout: channels (4) must divide the feature count of x, got 10 features");
  CHECK_THROWS_WITH(ChannelDropout<T>(ChannelDropoutOptions{0.5, 0}),
                    "regula::ChannelDropout: channels must be at least 1, got 0");
  CHECK_THROWS_WITH(ChannelDropout<T>(ChannelDropoutOptions{2.0, 1}),
                    "regula::ChannelDropout: p must be in [0, 1], got 2");
}

TEMPLATE_TEST_CASE(
    "Channel dropout refuses outputs that partly overlap the input; in place is exact",
    "[layers][channel][alias]", float, double) {
  // Issue 20, item 5: a partly overlapping y was accepted and gave garbage.
  using T = TestType;
  const ChannelDropout<T> cd(ChannelDropoutOptions{0.5, 3});
  regula::Matrix<T> buf = regula::Matrix<T>::Random(13, 8);
  Stream s(3);
  CHECK_THROWS_WITH(
      cd.forward(buf.topRows(12), buf.bottomRows(12), s),
      "regula::ChannelDropout: y must be x itself or not overlap it; it overlaps partly");
  CHECK(s.offset() == 0);
  regula::Matrix<T> y(12, 8), dx(12, 8);
  auto ctx = cd.forward(buf.topRows(12), y, s);
  CHECK_THROWS_WITH(cd.backward(buf.topRows(12), ctx, buf.bottomRows(12)),
                    "regula::ChannelDropout::backward: dx must be dy itself or not overlap it; it "
                    "overlaps partly");
  const ChannelDropout<T> other(ChannelDropoutOptions{0.25, 3});
  CHECK_THROWS_WITH(
      other.backward(y, ctx, dx),
      "regula::ChannelDropout::backward: ctx was filled by a layer with another p (keep threshold "
      "32768, this layer's 49152)");
  const ChannelDropout<T> four(ChannelDropoutOptions{0.5, 5});
  CHECK_THROWS_WITH(
      four.backward(y, ctx, dx),
      "regula::ChannelDropout::backward: channels (5) must divide the feature count of dy, got 12 "
      "features");
  const regula::Matrix<T> x = buf.topRows(12);
  regula::Matrix<T> z = x;
  Stream s1(5), s2(5);
  ctx = cd.forward(x, y, s1);
  (void)cd.forward(z, z, s2);
  CHECK(z == y);
  cd.backward(x, ctx, dx);
  z = x;
  cd.backward(z, ctx, z);
  CHECK(z == dx);
}
