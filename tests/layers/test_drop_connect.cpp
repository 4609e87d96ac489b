#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>

#include "regula/layers/drop_connect.hpp"
#include "regula/layers/dropout.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

using regula::DropConnect;
using regula::DropConnectOptions;
using regula::Index;
using regula::Stream;

TEMPLATE_TEST_CASE(
    "DropConnect equals a dense product with Dropout applied to W on the same stream",
    "[layers][dropconnect]", float, double) {
  using T = TestType;
  const T tol = std::is_same_v<T, double> ? T(1e-12) : T(1e-5);
  const Index in = 150, out = 7, B = 5;  // 150 columns: three panels, the last one partial
  const regula::Matrix<T> W = regula::Matrix<T>::Random(out, in),
                          x = regula::Matrix<T>::Random(in, B);
  const regula::Vector<T> b = regula::Vector<T>::Random(out);
  const DropConnect<T> dc(DropConnectOptions{0.3});
  typename DropConnect<T>::Context ctx;
  regula::Matrix<T> y(out, B);
  Stream s(21);
  dc.forward(x, W, b, y, s, ctx);
  // The reference masks W with Dropout, drawn from the same position.
  const regula::Dropout<T> drop(regula::DropoutOptions{0.3});
  regula::Matrix<T> MW(out, in);
  Stream r(21);
  (void)drop.forward(W, MW, r);
  CHECK(r == s);
  regula::Matrix<T> ref = MW * x;
  ref.colwise() += b;
  CHECK((y - ref).cwiseAbs().maxCoeff() <= tol * ref.cwiseAbs().maxCoeff());
  const regula::Matrix<T> dy = regula::Matrix<T>::Random(out, B);
  regula::Matrix<T> dx(in, B), dW(out, in);
  regula::Vector<T> db(out);
  dc.backward(x, W, dy, ctx, dx, dW, db);
  const regula::Matrix<T> rdx = MW.transpose() * dy;
  const regula::Matrix<T> rdW = ((MW.array() != T(0)).template cast<T>() * drop.scale())
                                    .matrix()
                                    .cwiseProduct(dy * x.transpose());
  CHECK((dx - rdx).cwiseAbs().maxCoeff() <= tol * rdx.cwiseAbs().maxCoeff());
  CHECK((dW - rdW).cwiseAbs().maxCoeff() <= tol * rdW.cwiseAbs().maxCoeff());
  CHECK((db - dy.rowwise().sum()).cwiseAbs().maxCoeff() <= tol);
  // The context never holds the whole masked matrix.
  CHECK(ctx.panel.cols() <= DropConnect<T>::panel);
}

TEST_CASE("DropConnect gradients equal central finite differences",
          "[layers][dropconnect][gradcheck]") {
  const Index in = 70, out = 3, B = 2;
  const Eigen::MatrixXd W = Eigen::MatrixXd::Random(out, in), x = Eigen::MatrixXd::Random(in, B);
  const Eigen::VectorXd b = Eigen::VectorXd::Random(out);
  const Eigen::MatrixXd w = Eigen::MatrixXd::Random(out, B);
  const DropConnect<double> dc(DropConnectOptions{0.5});
  const Stream start(6);
  DropConnect<double>::Context ctx;
  Eigen::MatrixXd y(out, B), dx(in, B), dW(out, in);
  Eigen::VectorXd db(out);
  Stream s = start;
  dc.forward(x, W, b, y, s, ctx);
  dc.backward(x, W, w, ctx, dx, dW, db);
  auto fx = [&](const Eigen::MatrixXd& xi, Eigen::MatrixXd& o) {
    Stream t = start;
    DropConnect<double>::Context c;
    dc.forward(xi, W, b, o, t, c);
  };
  CHECK(regula::test::gradcheck(
            x, out, B, fx, [&](const Eigen::MatrixXd&, Eigen::MatrixXd& g) { g = dx; }, w) <
        regula::test::fd_tol);
  auto fW = [&](const Eigen::MatrixXd& Wi, Eigen::MatrixXd& o) {
    Stream t = start;
    DropConnect<double>::Context c;
    dc.forward(x, Wi, b, o, t, c);
  };
  CHECK(regula::test::gradcheck(
            W, out, B, fW, [&](const Eigen::MatrixXd&, Eigen::MatrixXd& g) { g = dW; }, w) <
        regula::test::fd_tol);
  const Eigen::MatrixXd b0 = b;
  auto fb = [&](const Eigen::MatrixXd& bi, Eigen::MatrixXd& o) {
    Stream t = start;
    DropConnect<double>::Context c;
    dc.forward(x, W, Eigen::VectorXd(bi), o, t, c);
  };
  CHECK(regula::test::gradcheck(
            b0, out, B, fb, [&](const Eigen::MatrixXd&, Eigen::MatrixXd& g) { g = db; }, w) <
        regula::test::fd_tol);
}

TEMPLATE_TEST_CASE("DropConnect: eval is W x + b, no allocation once sized, bad shapes throw",
                   "[layers][dropconnect]", float, double) {
  using T = TestType;
  const regula::Matrix<T> W = regula::Matrix<T>::Random(4, 6), x = regula::Matrix<T>::Random(6, 3);
  const regula::Vector<T> b = regula::Vector<T>::Random(4);
  DropConnect<T> dc(DropConnectOptions{0.5});
  typename DropConnect<T>::Context ctx;
  regula::Matrix<T> y(4, 3), dx(6, 3), dW(4, 6);
  regula::Vector<T> db(4);
  Stream s(1);
  dc.forward(x, W, b, y, s, ctx);
  {
    regula::test::NoMalloc guard;
    dc.forward(x, W, b, y, s, ctx);
    dc.backward(x, W, y, ctx, dx, dW, db);
  }
  dc.eval();
  const auto before = s;
  dc.forward(x, W, b, y, s, ctx);
  CHECK(s == before);
  regula::Matrix<T> ref = W * x;
  ref.colwise() += b;
  CHECK((y - ref).cwiseAbs().maxCoeff() < T(1e-5));
  const regula::Matrix<T> Wbad = regula::Matrix<T>::Random(4, 5);
  CHECK_THROWS_WITH(dc.forward(x, Wbad, b, y, s, ctx),
                    "regula::DropConnect: W must have one column per feature of x (6), got 5");
  const regula::Vector<T> bbad = regula::Vector<T>::Random(3);
  CHECK_THROWS_WITH(dc.forward(x, W, bbad, y, s, ctx),
                    "regula::DropConnect: b must have one entry per row of W (4), got 3");
  CHECK_THROWS_WITH(DropConnect<T>(DropConnectOptions{1.1}),
                    "regula::DropConnect: p must be in [0, 1], got 1.1");
}

TEMPLATE_TEST_CASE("DropConnect refuses any output sharing memory with an input or another output",
                   "[layers][dropconnect][alias]", float, double) {
  // Issue 20, item 6: y = x in forward and dW = W in backward were accepted and gave garbage.
  using T = TestType;
  const Index n = 6;  // square: every output can be given any input's storage
  regula::Matrix<T> W = regula::Matrix<T>::Random(n, n), x = regula::Matrix<T>::Random(n, n);
  regula::Matrix<T> dy = regula::Matrix<T>::Random(n, n);
  regula::Vector<T> b = regula::Vector<T>::Random(n);
  const regula::Matrix<T> W0 = W, x0 = x, dy0 = dy;
  const DropConnect<T> dc(DropConnectOptions{0.4});
  typename DropConnect<T>::Context ctx;
  Stream s(2);
  CHECK_THROWS_WITH(dc.forward(x, W, b, x, s, ctx), "regula::DropConnect: y must not overlap x");
  CHECK_THROWS_WITH(dc.forward(x, W, b, W, s, ctx), "regula::DropConnect: y must not overlap W");
  regula::Matrix<T> big(n + 1, n);
  CHECK_THROWS_WITH(dc.forward(x, W, big.col(0).head(n), big.bottomRows(n), s, ctx),
                    "regula::DropConnect: y must not overlap b");
  CHECK(s.offset() == 0);
  regula::Matrix<T> y(n, n), dx(n, n), dW(n, n);
  regula::Vector<T> db(n);
  dc.forward(x, W, b, y, s, ctx);
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, x, dW, db),
                    "regula::DropConnect::backward: dx must not overlap x");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, W, dW, db),
                    "regula::DropConnect::backward: dx must not overlap W");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dy, dW, db),
                    "regula::DropConnect::backward: dx must not overlap dy");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, x, db),
                    "regula::DropConnect::backward: dW must not overlap x");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, W, db),
                    "regula::DropConnect::backward: dW must not overlap W");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dy, db),
                    "regula::DropConnect::backward: dW must not overlap dy");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dW, x.col(2)),
                    "regula::DropConnect::backward: db must not overlap x");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dW, W.col(0)),
                    "regula::DropConnect::backward: db must not overlap W");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dW, dy.col(5)),
                    "regula::DropConnect::backward: db must not overlap dy");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dx, db),
                    "regula::DropConnect::backward: dW must not overlap dx");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dW, dx.col(1)),
                    "regula::DropConnect::backward: db must not overlap dx");
  CHECK_THROWS_WITH(dc.backward(x, W, dy, ctx, dx, dW, dW.col(3)),
                    "regula::DropConnect::backward: db must not overlap dW");
  const DropConnect<T> other(DropConnectOptions{0.5});
  CHECK_THROWS_WITH(
      other.backward(x, W, dy, ctx, dx, dW, db),
      "regula::DropConnect::backward: ctx was filled by a layer with another p (keep threshold "
      "39322, this layer's 32768)");
  // Nothing was written to an input by the refused calls, and a valid call still works.
  CHECK(W == W0);
  CHECK(x == x0);
  CHECK(dy == dy0);
  dc.backward(x, W, dy, ctx, dx, dW, db);
  CHECK(db.isApprox(dy.rowwise().sum()));
}
