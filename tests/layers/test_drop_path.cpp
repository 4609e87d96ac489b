#include <cmath>
#include <limits>

#include "regula/layers/drop_path.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"

using regula::DropPath;
using regula::DropPathMode;
using regula::DropPathOptions;
using regula::Index;
using regula::Stream;

TEMPLATE_TEST_CASE("DropPath drops whole samples (row) or the whole batch (batch)",
                   "[layers][droppath]", float, double) {
  using T = TestType;
  const regula::Matrix<T> f = regula::Matrix<T>::Random(9, 200).array() + T(2);
  const regula::Matrix<T> x = regula::Matrix<T>::Random(9, 200);
  regula::Matrix<T> y(9, 200), out(9, 200), db(9, 200);
  {
    const DropPath<T> dp(DropPathOptions{0.25, DropPathMode::row});
    Stream s(4);
    const auto ctx = dp.forward(f, y, s);
    CHECK(s == Stream(4, 0, regula::kernels::dropout_blocks(200)));
    Index dropped = 0;
    for (Index n = 0; n < 200; ++n) {
      const bool kept = dp.kept(ctx, n);
      dropped += kept ? 0 : 1;
      CHECK(y.col(n) == (f.col(n) * (kept ? dp.scale() : T(0))));
    }
    CHECK(std::abs(static_cast<double>(dropped) - 50.0) < 5 * std::sqrt(200 * 0.25 * 0.75));
    Stream s2(4);
    regula::RandomContext c2;
    dp.forward_residual(x, f, out, s2, c2);
    // Equal up to one rounding: with FMA the compiler may fuse x + f·m/(1 − p).
    const T eps = std::numeric_limits<T>::epsilon();
    CHECK(((out - (x + y)).array().abs() <= 2 * eps * (x.array().abs() + y.array().abs())).all());
    dp.backward(f, c2, db);
    CHECK(db == y);
  }
  {
    const DropPath<T> dp(DropPathOptions{0.5, DropPathMode::batch});
    bool saw_kept = false, saw_dropped = false;
    Stream s(9);
    for (int t = 0; t < 30; ++t) {
      const auto ctx = dp.forward(f, y, s);
      const bool kept = dp.kept(ctx, 0);
      saw_kept = saw_kept || kept;
      saw_dropped = saw_dropped || !kept;
      CHECK(y == f * (kept ? dp.scale() : T(0)));
    }
    CHECK(saw_kept);
    CHECK(saw_dropped);
  }
}

TEST_CASE("DropPath gradient equals central finite differences", "[layers][droppath][gradcheck]") {
  for (const auto mode : {DropPathMode::row, DropPathMode::batch}) {
    const DropPath<double> dp(DropPathOptions{0.5, mode});
    const Eigen::MatrixXd x = Eigen::MatrixXd::Random(4, 9), w = Eigen::MatrixXd::Random(4, 9);
    const Stream start(mode == DropPathMode::row ? 3 : 4);
    auto f = [&](const Eigen::MatrixXd& in, Eigen::MatrixXd& out) {
      Stream s = start;
      (void)dp.forward(in, out, s);
    };
    auto vjp = [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
      Stream s = start;
      Eigen::MatrixXd y(4, 9);
      dp.backward(wt, dp.forward(x, y, s), dx);
    };
    CHECK(regula::test::gradcheck(x, 4, 9, f, vjp, w) < regula::test::fd_tol);
  }
}

TEMPLATE_TEST_CASE("DropPath: eval identity, p = 1 zero, bad input throws", "[layers][droppath]",
                   float, double) {
  using T = TestType;
  DropPath<T> dp(DropPathOptions{0.5});
  const regula::Matrix<T> f = regula::Matrix<T>::Random(3, 4);
  regula::Matrix<T> y(3, 4);
  Stream s(1);
  dp.eval();
  (void)dp.forward(f, y, s);
  CHECK(y == f);
  CHECK(s.offset() == 0);
  const DropPath<T> all(DropPathOptions{1.0});
  (void)all.forward(f, y, s);
  CHECK((y.array() == T(0)).all());
  CHECK_THROWS_WITH(DropPath<T>(DropPathOptions{-1.0}),
                    "regula::DropPath: p must be in [0, 1], got -1");
  regula::Matrix<T> wrong(3, 5);
  CHECK_THROWS_WITH(dp.forward(f, wrong, s),
                    "regula::DropPath: y must have the shape of branch (3 x 4), got 3 x 5");
}

TEMPLATE_TEST_CASE("DropPath refuses outputs that partly overlap an input; exact aliases work",
                   "[layers][droppath][alias]", float, double) {
  // Issue 20, item 5: forward and forward_residual accepted partly overlapping outputs.
  using T = TestType;
  const DropPath<T> dp(DropPathOptions{0.5});
  regula::Matrix<T> buf = regula::Matrix<T>::Random(10, 30);
  const regula::Matrix<T> x = regula::Matrix<T>::Random(9, 30);
  Stream s(3);
  regula::RandomContext ctx;
  CHECK_THROWS_WITH(
      dp.forward(buf.topRows(9), buf.bottomRows(9), s),
      "regula::DropPath: y must be branch itself or not overlap it; it overlaps partly");
  CHECK_THROWS_WITH(dp.forward_residual(buf.topRows(9), x, buf.bottomRows(9), s, ctx),
                    "regula::DropPath: out must be x itself or not overlap it; it overlaps partly");
  CHECK_THROWS_WITH(
      dp.forward_residual(x, buf.topRows(9), buf.bottomRows(9), s, ctx),
      "regula::DropPath: out must be branch itself or not overlap it; it overlaps partly");
  // out is x exactly, but branch overlaps it partly: refused too.
  CHECK_THROWS_WITH(
      dp.forward_residual(buf.topRows(9), buf.bottomRows(9), buf.topRows(9), s, ctx),
      "regula::DropPath: out must be branch itself or not overlap it; it overlaps partly");
  CHECK(s.offset() == 0);
  regula::Matrix<T> y(9, 30), dbr(9, 30);
  ctx = dp.forward(buf.topRows(9), y, s);
  CHECK_THROWS_WITH(dp.backward(buf.topRows(9), ctx, buf.bottomRows(9)),
                    "regula::DropPath::backward: dbranch must be dy itself or not overlap it; it "
                    "overlaps partly");
  const DropPath<T> other(DropPathOptions{0.25});
  CHECK_THROWS_WITH(
      other.backward(y, ctx, dbr),
      "regula::DropPath::backward: ctx was filled by a layer with another p (keep threshold 32768, "
      "this layer's 49152)");
  // out = x and out = branch exactly give the out-of-place result.
  const regula::Matrix<T> f = buf.topRows(9);
  regula::Matrix<T> out(9, 30), a = x, b = f;
  Stream s1(5), s2(5), s3(5);
  dp.forward_residual(x, f, out, s1, ctx);
  dp.forward_residual(a, f, a, s2, ctx);
  dp.forward_residual(x, b, b, s3, ctx);
  CHECK(a == out);
  CHECK(b == out);
}

TEMPLATE_TEST_CASE("DropPath's residual sum rounds the product first, on every instruction set",
                   "[layers][droppath][isa]", float, double) {
  // x + f·scale was fused into one rounding where the build had FMA and rounded twice elsewhere.
  using T = TestType;
  const DropPath<T> dp(DropPathOptions{0.3});  // scale 1/0.7: most products are inexact
  regula::Matrix<T> f(37, 64), x(37, 64), out(37, 64);
  for (Index i = 0; i < f.size(); ++i) {
    f(i) = static_cast<T>(std::sin(0.37 * static_cast<double>(i)));
    x(i) = static_cast<T>(std::cos(0.61 * static_cast<double>(i)));
  }
  Stream s(8);
  regula::RandomContext ctx;
  dp.forward_residual(x, f, out, s, ctx);
  Index kept = 0;
  for (Index n = 0; n < f.cols(); ++n) {
    const bool k = dp.kept(ctx, n);
    kept += k ? 1 : 0;
    for (Index r = 0; r < f.rows(); ++r) {
      volatile T prod = f(r, n) * (k ? dp.scale() : T(0));
      REQUIRE(out(r, n) == x(r, n) + prod);
    }
  }
  CHECK(kept > 0);
}
