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

TEMPLATE_TEST_CASE("DropPath drops whole samples (row) or the whole batch (batch)", "[layers][droppath]", float,
                   double) {
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

TEMPLATE_TEST_CASE("DropPath: eval identity, p = 1 zero, bad input throws", "[layers][droppath]", float, double) {
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
  CHECK_THROWS_WITH(DropPath<T>(DropPathOptions{-1.0}), "regula::DropPath: p must be in [0, 1], got -1");
  regula::Matrix<T> wrong(3, 5);
  CHECK_THROWS_WITH(dp.forward(f, wrong, s), "regula::DropPath: y must have the shape of branch (3 x 4), got 3 x 5");
}
