#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/losses/cross_entropy.hpp"

#include "support/catch.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace {

using regula::Index;
using regula::MultiSampleDropoutOptions;
using regula::MultiSampleReduction;
using regula::Stream;
template <class T>
using Mat = regula::Matrix<T>;
template <class T>
using Vec = regula::Vector<T>;
using LabelVec = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;

// Softmax cross-entropy per sample, by log-sum-exp, in the loss concept of MultiSampleDropout.
struct SoftmaxCE {
  template <class T>
  void operator()(const regula::MatrixCRef<T>& z, const regula::LabelView& y,
                  regula::VectorRef<T> loss, regula::MatrixRef<T> dz) const {
    for (Index n = 0; n < z.cols(); ++n) {
      const T mx = z.col(n).maxCoeff();
      const T lse = mx + std::log((z.col(n).array() - mx).exp().sum());
      loss(n) = lse - z(y(n), n);
      dz.col(n) = (z.col(n).array() - lse).exp();
      dz(y(n), n) -= T(1);
    }
  }
};

template <class T>
using MSD = regula::MultiSampleDropout<T, SoftmaxCE>;

template <class T>
void ce(const Mat<T>& z, const LabelVec& y, Vec<T>& l, Mat<T>& dz) {
  SoftmaxCE{}(regula::MatrixCRef<T>(z), y, regula::VectorRef<T>(l), regula::MatrixRef<T>(dz));
}

template <class T>
struct Problem {
  Index K = 37, B = 11, C = 5;
  Mat<T> h, W;
  Vec<T> b;
  LabelVec y;
  Problem(Index k, Index bb, Index c) : K(k), B(bb), C(c) {
    h = Mat<T>::Random(K, B);
    W = Mat<T>::Random(C, K) * T(0.5);
    b = Vec<T>::Random(C);
    y.resize(B);
    for (Index n = 0; n < B; ++n) y(n) = (n * 7 + 3) % C;
  }
};

// The loop of M independent dropout + head + loss passes, drawn one after another from the stream.
template <class T>
T loop_reference(const MultiSampleDropoutOptions& o, const Problem<T>& P, Stream s, Mat<T>& dh,
                 Mat<T>& dW, Vec<T>& db) {
  const Index M = o.samples;
  dh.setZero(P.K, P.B);
  dW.setZero(P.C, P.K);
  db.setZero(P.C);
  std::vector<Mat<T>> hm(static_cast<std::size_t>(M), Mat<T>(P.K, P.B));
  std::vector<regula::DropoutContext> ctx(static_cast<std::size_t>(M));
  std::vector<regula::Dropout<T>> drops;
  for (Index m = 0; m < M; ++m) {
    drops.emplace_back(
        regula::DropoutOptions{o.rates.empty() ? o.p : o.rates[static_cast<std::size_t>(m)]});
    const auto mu = static_cast<std::size_t>(m);
    drops[mu].forward(P.h, hm[mu], s, ctx[mu]);
  }
  Vec<T> l(P.B);
  Mat<T> dz(P.C, P.B), g(P.K, P.B), gm(P.K, P.B);
  double L = 0;
  if (o.reduction == MultiSampleReduction::mean_of_losses) {
    for (Index m = 0; m < M; ++m) {
      const auto mu = static_cast<std::size_t>(m);
      Mat<T> z = P.W * hm[mu];
      z.colwise() += P.b;
      ce<T>(z, P.y, l, dz);
      L += static_cast<double>(l.sum()) / static_cast<double>(M * P.B);
      dz /= static_cast<T>(M * P.B);
      dW += dz * hm[mu].transpose();
      db += dz.rowwise().sum();
      g = P.W.transpose() * dz;
      drops[mu].backward(g, ctx[mu], gm);
      dh += gm;
    }
  } else {
    Mat<T> zbar = Mat<T>::Zero(P.C, P.B);
    for (Index m = 0; m < M; ++m) {
      Mat<T> z = P.W * hm[static_cast<std::size_t>(m)];
      z.colwise() += P.b;
      zbar += z / static_cast<T>(M);
    }
    ce<T>(zbar, P.y, l, dz);
    L = static_cast<double>(l.sum()) / static_cast<double>(P.B);
    dz /= static_cast<T>(P.B * M);  // ∂L/∂z_m
    for (Index m = 0; m < M; ++m) {
      const auto mu = static_cast<std::size_t>(m);
      dW += dz * hm[mu].transpose();
      db += dz.rowwise().sum();
      g = P.W.transpose() * dz;
      drops[mu].backward(g, ctx[mu], gm);
      dh += gm;
    }
  }
  return static_cast<T>(L);
}

}  // namespace

TEMPLATE_TEST_CASE(
    "Multi-sample dropout: the fused path equals a loop of M passes on the same stream",
    "[layers][multisample]", float, double) {
  using T = TestType;
  const T tol = std::is_same_v<T, double> ? T(1e-12) : T(2e-5);
  // C = 5: the tiled path (one block of columns, and with B = 700 several blocks, the last one
  // partial); C = 70: the stacked path. Rates 0 and 1 take the identity and zero modes.
  struct Shape {
    Index K, B, C;
  };
  for (const Shape sh : {Shape{37, 11, 5}, Shape{37, 700, 5}, Shape{37, 11, 70}}) {
    const Problem<T> P(sh.K, sh.B, sh.C);
    for (const auto red :
         {MultiSampleReduction::mean_of_losses, MultiSampleReduction::mean_of_logits}) {
      for (const int rates : {0, 1, 2}) {
        MultiSampleDropoutOptions o;
        o.samples = 4;
        o.p = 0.4;
        if (rates == 1) o.rates = {0.1, 0.2, 0.3, 0.5};
        if (rates == 2) o.rates = {0.0, 0.6, 1.0, 0.25};
        o.reduction = red;
        const MSD<T> msd(o);
        typename MSD<T>::Context ctx;
        Stream s(77, 3);
        // Inputs and outputs as blocks of larger matrices (column stride ≠ rows) for one rate set.
        Mat<T> hbig = Mat<T>::Zero(P.K + 3, P.B), dhbig(P.K + 3, P.B);
        hbig.topRows(P.K) = P.h;
        const bool strided = rates == 1;
        const T L = strided ? msd.forward(hbig.topRows(P.K), P.W, P.b, P.y, s, ctx)
                            : msd.forward(P.h, P.W, P.b, P.y, s, ctx);
        // backward overwrites its outputs: start them at a value that would show through.
        Mat<T> dh = Mat<T>::Constant(P.K, P.B, T(7)), dW = Mat<T>::Constant(P.C, P.K, T(7));
        Vec<T> db = Vec<T>::Constant(P.C, T(7));
        dhbig.setConstant(T(7));
        if (strided) {
          msd.backward(P.W, ctx, dhbig.topRows(P.K), dW, db);
          dh = dhbig.topRows(P.K);
        } else {
          msd.backward(P.W, ctx, dh, dW, db);
        }
        Mat<T> rdh, rdW;
        Vec<T> rdb;
        Stream r(77, 3);
        const T RL = loop_reference(o, P, r, rdh, rdW, rdb);
        INFO("K " << P.K << ", B " << P.B << ", C " << P.C << ", reduction "
                  << static_cast<int>(red) << ", rates " << rates);
        const std::uint64_t drawn = rates == 2 ? 2 : 4;  // p = 0 and p = 1 draw nothing
        CHECK(s ==
              Stream(77, 3,
                     drawn * regula::kernels::dropout_blocks(static_cast<std::size_t>(P.K * P.B))));
        CHECK(std::abs(L - RL) <= tol * std::abs(RL));
        CHECK((dh - rdh).cwiseAbs().maxCoeff() <= tol * rdh.cwiseAbs().maxCoeff());
        CHECK((dW - rdW).cwiseAbs().maxCoeff() <= tol * rdW.cwiseAbs().maxCoeff());
        CHECK((db - rdb).cwiseAbs().maxCoeff() <= tol * rdb.cwiseAbs().maxCoeff());
        CHECK(rdh.cwiseAbs().maxCoeff() > 0);
      }
    }
  }
}

TEST_CASE("mean_of_losses and mean_of_logits differ", "[layers][multisample]") {
  const Problem<double> P(20, 9, 4);
  MultiSampleDropoutOptions a;
  a.samples = 4;
  MultiSampleDropoutOptions b = a;
  b.reduction = MultiSampleReduction::mean_of_logits;
  MSD<double>::Context c1, c2;
  Stream s1(1), s2(1);
  const double L1 = MSD<double>(a).forward(P.h, P.W, P.b, P.y, s1, c1);
  const double L2 = MSD<double>(b).forward(P.h, P.W, P.b, P.y, s2, c2);
  // The mean of convex losses is at least the loss of the mean logits (Jensen).
  CHECK(L1 > L2);
}

TEST_CASE("mean_of_logits: copies near the largest float do not overflow their mean",
          "[layers][multisample][regression]") {
  // Campaign finding msd-mean-copies-overflow: h = 1e38 at p = 0.25 gives copies of 1.33e38;
  // their sum over M = 3 passed FLT_MAX before the division by M, and a zero weight times the
  // infinity made the logits NaN. The mean itself (≤ 1.33e38) is finite.
  using T = float;
  Mat<T> h(2, 3);
  h << 1e38F, -13.0F, 1e38F,  //
      0.5F, 1e38F, -1e38F;
  Mat<T> W(2, 2);
  W << 0.0F, -0.0F,  //
      1e-30F, 0.0F;
  Vec<T> b = Vec<T>::Zero(2);
  LabelVec y(3);
  y << 0, 1, 1;
  MultiSampleDropoutOptions o;
  o.samples = 3;
  o.p = 0.25;
  o.reduction = MultiSampleReduction::mean_of_logits;
  MSD<T>::Context ctx;
  Stream s(5);
  const T L = MSD<T>(o).forward(h, W, b, y, s, ctx);
  CHECK(std::isfinite(L));
  CHECK(ctx.logits().allFinite());
}

TEMPLATE_TEST_CASE("Multi-sample dropout in eval runs the head once", "[layers][multisample]",
                   float, double) {
  using T = TestType;
  const Problem<T> P(16, 6, 3);
  MSD<T> msd(MultiSampleDropoutOptions{});
  msd.eval();
  typename MSD<T>::Context ctx;
  Stream s(4);
  const T L = msd.forward(P.h, P.W, P.b, P.y, s, ctx);
  CHECK(s.offset() == 0);
  Mat<T> z = P.W * P.h;
  z.colwise() += P.b;
  Vec<T> l(P.B);
  Mat<T> dz(P.C, P.B);
  ce<T>(z, P.y, l, dz);
  CHECK(ctx.logits().cols() == P.B);
  CHECK(L == Approx(l.mean()).epsilon(1e-6));
  Mat<T> dh(P.K, P.B), dW(P.C, P.K);
  Vec<T> db(P.C);
  msd.backward(P.W, ctx, dh, dW, db);
  dz /= static_cast<T>(P.B);
  const Mat<T> edW = dz * P.h.transpose();
  const Mat<T> edh = P.W.transpose() * dz;
  CHECK((dW - edW).cwiseAbs().maxCoeff() < T(1e-6));
  CHECK((dh - edh).cwiseAbs().maxCoeff() < T(1e-6));
  CHECK((db - dz.rowwise().sum()).cwiseAbs().maxCoeff() < T(1e-6));
}

TEST_CASE("Multi-sample dropout gradients equal central finite differences (double)",
          "[layers][multisample][gradcheck]") {
  const Problem<double> P(9, 4, 3);
  for (const auto red :
       {MultiSampleReduction::mean_of_losses, MultiSampleReduction::mean_of_logits}) {
    MultiSampleDropoutOptions o;
    o.samples = 3;
    o.rates = {0.2, 0.5, 0.3};
    o.reduction = red;
    const MSD<double> msd(o);
    const Stream start(5);
    const Eigen::MatrixXd one = Eigen::MatrixXd::Ones(1, 1);
    auto loss_at = [&](const Eigen::MatrixXd& h, const Eigen::MatrixXd& W,
                       const Eigen::VectorXd& b) {
      Stream s = start;
      MSD<double>::Context c;
      return msd.forward(h, W, b, P.y, s, c);
    };
    MSD<double>::Context ctx;
    Stream s = start;
    (void)msd.forward(P.h, P.W, P.b, P.y, s, ctx);
    Eigen::MatrixXd dh(P.K, P.B), dW(P.C, P.K);
    Eigen::VectorXd db(P.C);
    msd.backward(P.W, ctx, dh, dW, db);
    auto fh = [&](const Eigen::MatrixXd& h, Eigen::MatrixXd& out) {
      out(0, 0) = loss_at(h, P.W, P.b);
    };
    auto vh = [&](const Eigen::MatrixXd&, Eigen::MatrixXd& g) { g = dh; };
    CHECK(regula::test::gradcheck(P.h, 1, 1, fh, vh, one) < regula::test::fd_tol);
    auto fW = [&](const Eigen::MatrixXd& W, Eigen::MatrixXd& out) {
      out(0, 0) = loss_at(P.h, W, P.b);
    };
    auto vW = [&](const Eigen::MatrixXd&, Eigen::MatrixXd& g) { g = dW; };
    CHECK(regula::test::gradcheck(P.W, 1, 1, fW, vW, one) < regula::test::fd_tol);
    const Eigen::MatrixXd b0 = P.b;
    auto fb = [&](const Eigen::MatrixXd& b, Eigen::MatrixXd& out) {
      out(0, 0) = loss_at(P.h, P.W, b);
    };
    auto vb = [&](const Eigen::MatrixXd&, Eigen::MatrixXd& g) { g = db; };
    CHECK(regula::test::gradcheck(b0, 1, 1, fb, vb, one) < regula::test::fd_tol);
  }
}

TEMPLATE_TEST_CASE("Multi-sample dropout does not allocate once its context is sized",
                   "[layers][multisample][alloc]", float, double) {
  using T = TestType;
  const Problem<T> P(16, 8, 4);
  MultiSampleDropoutOptions o;
  o.samples = 3;
  const MSD<T> msd(o);
  typename MSD<T>::Context ctx;
  Stream s(2);
  Mat<T> dh(P.K, P.B), dW(P.C, P.K);
  Vec<T> db(P.C);
  (void)msd.forward(P.h, P.W, P.b, P.y, s, ctx);  // the first step sizes the context
  msd.backward(P.W, ctx, dh, dW, db);
  regula::test::NoMalloc guard;
  (void)msd.forward(P.h, P.W, P.b, P.y, s, ctx);
  msd.backward(P.W, ctx, dh, dW, db);
}

TEMPLATE_TEST_CASE("Multi-sample dropout rejects bad options and shapes, naming the parameter",
                   "[layers][multisample][errors]", float, double) {
  using T = TestType;
  MultiSampleDropoutOptions o;
  o.samples = 0;
  CHECK_THROWS_WITH(MSD<T>(o), "regula::MultiSampleDropout: samples (M) must be at least 1, got 0");
  o.samples = 2;
  o.p = 1.5;
  CHECK_THROWS_WITH(MSD<T>(o), "regula::MultiSampleDropout: p must be in [0, 1], got 1.5");
  o.p = 0.5;
  o.rates = {0.1};
  CHECK_THROWS_WITH(
      MSD<T>(o),
      "regula::MultiSampleDropout: rates must be empty or have one rate per sample (2), got 1");
  o.rates = {0.1, -0.2};
  CHECK_THROWS_WITH(MSD<T>(o), "regula::MultiSampleDropout: rates[1] must be in [0, 1], got -0.2");
  o.rates = {};
  const MSD<T> msd(o);
  const Problem<T> P(10, 4, 3);
  typename MSD<T>::Context ctx;
  Stream s(1);
  const Mat<T> Wbad = Mat<T>::Ones(3, 9);
  CHECK_THROWS_WITH(
      msd.forward(P.h, Wbad, P.b, P.y, s, ctx),
      "regula::MultiSampleDropout: W must have one column per feature of h (10), got 9");
  const Vec<T> bbad = Vec<T>::Ones(4);
  CHECK_THROWS_WITH(msd.forward(P.h, P.W, bbad, P.y, s, ctx),
                    "regula::MultiSampleDropout: b must have one entry per row of W (3), got 4");
  const LabelVec ybad = LabelVec::Zero(5);
  CHECK_THROWS_WITH(msd.forward(P.h, P.W, P.b, ybad, s, ctx),
                    "regula::MultiSampleDropout: labels must have one entry per sample (4), got 5");
  (void)msd.forward(P.h, P.W, P.b, P.y, s, ctx);
  Mat<T> dh(10, 4), dW(3, 10), dWbad(3, 11);
  Vec<T> db(3);
  CHECK_THROWS_WITH(msd.backward(P.W, ctx, dh, dWbad, db),
                    "regula::MultiSampleDropout::backward: dW must be 3 x 10, got 3 x 11");
  msd.backward(P.W, ctx, dh, dW, db);
  CHECK_THROWS_AS(msd.backward(P.W, ctx, dh, dW, db), regula::invalid_argument);
}

TEST_CASE("The library's PerSampleCrossEntropy drives MultiSampleDropout like the reference loss",
          "[layers][multisample]") {
  const Problem<double> P(24, 10, 6);
  MultiSampleDropoutOptions o;
  o.samples = 5;
  MSD<double>::Context c1;
  regula::MultiSampleDropout<double, regula::PerSampleCrossEntropy<>>::Context c2;
  Stream s1(3), s2(3);
  MSD<double> reference(o);
  regula::MultiSampleDropout<double, regula::PerSampleCrossEntropy<>> library(o);
  const double L1 = reference.forward(P.h, P.W, P.b, P.y, s1, c1);
  const double L2 = library.forward(P.h, P.W, P.b, P.y, s2, c2);
  CHECK(std::abs(L1 - L2) < 1e-12);
  Mat<double> dh1(P.K, P.B), dW1(P.C, P.K), dh2(P.K, P.B), dW2(P.C, P.K);
  Vec<double> db1(P.C), db2(P.C);
  reference.backward(P.W, c1, dh1, dW1, db1);
  library.backward(P.W, c2, dh2, dW2, db2);
  CHECK((dh1 - dh2).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((dW1 - dW2).cwiseAbs().maxCoeff() < 1e-12);
  CHECK((db1 - db2).cwiseAbs().maxCoeff() < 1e-12);
}

TEMPLATE_TEST_CASE(
    "Multi-sample dropout: an eval forward on a context of a tiled training call resets it",
    "[layers][multisample][context]", float, double) {
  // Issue 20, item 1: the eval forward returned before clearing the tiled flag, so backward took
  // the tiled path over a C × B gradient (heap-buffer-overflow).
  using T = TestType;
  const Problem<T> P(37, 11, 5);  // C < 64: the training call is tiled
  MultiSampleDropoutOptions o;
  o.samples = 4;
  MSD<T> msd(o);
  typename MSD<T>::Context ctx;
  Stream s(9);
  (void)msd.forward(P.h, P.W, P.b, P.y, s, ctx);
  msd.eval();
  const T L = msd.forward(P.h, P.W, P.b, P.y, s, ctx);
  CHECK_FALSE(ctx.training());
  Mat<T> dh = Mat<T>::Constant(P.K, P.B, T(7)), dW = Mat<T>::Constant(P.C, P.K, T(7));
  Vec<T> db = Vec<T>::Constant(P.C, T(7));
  msd.backward(P.W, ctx, dh, dW, db);
  // The eval gradients: the head once, on h itself.
  Mat<T> z = P.W * P.h;
  z.colwise() += P.b;
  Vec<T> l(P.B);
  Mat<T> dz(P.C, P.B);
  ce<T>(z, P.y, l, dz);
  dz /= static_cast<T>(P.B);
  const T tol = std::is_same_v<T, double> ? T(1e-12) : T(1e-5);
  CHECK(std::abs(L - l.mean()) <= tol * std::abs(l.mean()));
  CHECK((dW - dz * P.h.transpose()).cwiseAbs().maxCoeff() <= tol);
  CHECK((dh - P.W.transpose() * dz).cwiseAbs().maxCoeff() <= tol);
  CHECK((db - dz.rowwise().sum()).cwiseAbs().maxCoeff() <= tol);
  // And back to training on the same context: the tiled path again, equal to a fresh context.
  msd.train();
  Stream s1(10), s2(10);
  typename MSD<T>::Context fresh;
  (void)msd.forward(P.h, P.W, P.b, P.y, s1, ctx);
  (void)msd.forward(P.h, P.W, P.b, P.y, s2, fresh);
  Mat<T> dh2(P.K, P.B), dW2(P.C, P.K);
  Vec<T> db2(P.C);
  msd.backward(P.W, ctx, dh, dW, db);
  msd.backward(P.W, fresh, dh2, dW2, db2);
  CHECK(dh == dh2);
  CHECK(dW == dW2);
  CHECK(db == db2);
}

TEMPLATE_TEST_CASE(
    "Multi-sample dropout: a context of another shape, layer or failed call is refused",
    "[layers][multisample][context][errors]", float, double) {
  using T = TestType;
  MultiSampleDropoutOptions o;
  o.samples = 3;
  const MSD<T> msd(o);
  const Problem<T> P(10, 4, 3);
  Mat<T> dh(10, 4), dW(3, 10);
  Vec<T> db(3);
  typename MSD<T>::Context ctx;
  CHECK_FALSE(ctx.ready());
  CHECK_THROWS_WITH(
      msd.backward(P.W, ctx, dh, dW, db),
      "regula::MultiSampleDropout::backward: ctx holds no forward call (never filled, or its "
      "forward threw); run forward first");
  // Filled by a layer with another M, reduction or rate.
  Stream s(1);
  MultiSampleDropoutOptions o4 = o;
  o4.samples = 4;
  (void)MSD<T>(o4).forward(P.h, P.W, P.b, P.y, s, ctx);
  CHECK(ctx.ready());
  CHECK_THROWS_WITH(
      msd.backward(P.W, ctx, dh, dW, db),
      "regula::MultiSampleDropout::backward: ctx was filled by a layer with 4 samples (M), this "
      "one has 3");
  MultiSampleDropoutOptions ol = o;
  ol.reduction = MultiSampleReduction::mean_of_logits;
  (void)MSD<T>(ol).forward(P.h, P.W, P.b, P.y, s, ctx);
  CHECK_THROWS_WITH(
      msd.backward(P.W, ctx, dh, dW, db),
      "regula::MultiSampleDropout::backward: ctx was filled by a layer with another reduction");
  MultiSampleDropoutOptions op = o;
  op.rates = {0.5, 0.5, 0.2};
  (void)MSD<T>(op).forward(P.h, P.W, P.b, P.y, s, ctx);
  CHECK_THROWS_WITH(
      msd.backward(P.W, ctx, dh, dW, db),
      "regula::MultiSampleDropout::backward: ctx was filled by a layer with another drop rate for "
      "sample 2");
  // Filled with another shape: every output is checked against the recorded one.
  const Problem<T> Q(12, 5, 3);
  (void)msd.forward(Q.h, Q.W, Q.b, Q.y, s, ctx);
  CHECK_THROWS_WITH(
      msd.backward(P.W, ctx, dh, dW, db),
      "regula::MultiSampleDropout::backward: W must be 3 x 12 as in forward, got 3 x 10");
  CHECK_THROWS_WITH(msd.backward(Q.W, ctx, dh, dW, db),
                    "regula::MultiSampleDropout::backward: dh must be 12 x 5, got 10 x 4");
  // A forward whose loss threw leaves no call behind, even over a context that held one.
  (void)msd.forward(P.h, P.W, P.b, P.y, s, ctx);
  LabelVec bad = P.y;
  bad(2) = 99;
  struct Throwing {
    void operator()(const regula::MatrixCRef<T>& z, const regula::LabelView& y,
                    regula::VectorRef<T> l, regula::MatrixRef<T> dz) const {
      for (Index n = 0; n < y.size(); ++n) {
        if (y[n] >= z.rows()) throw regula::invalid_argument("label out of range");
      }
      SoftmaxCE{}(z, y, l, dz);
    }
  };
  const regula::MultiSampleDropout<T, Throwing> throwing(o);
  typename regula::MultiSampleDropout<T, Throwing>::Context tctx;
  (void)throwing.forward(P.h, P.W, P.b, P.y, s, tctx);
  CHECK_THROWS_AS(throwing.forward(P.h, P.W, P.b, bad, s, tctx), regula::invalid_argument);
  CHECK_FALSE(tctx.ready());
  CHECK_THROWS_WITH(
      throwing.backward(P.W, tctx, dh, dW, db),
      "regula::MultiSampleDropout::backward: ctx holds no forward call (never filled, or its "
      "forward threw); run forward first");
}

TEMPLATE_TEST_CASE("Multi-sample dropout rejects empty inputs at the boundary",
                   "[layers][multisample][errors]", float, double) {
  // Issue 20, item 2: h with 0 rows and C < 64 divided by zero when sizing the column blocks.
  using T = TestType;
  const MSD<T> msd(MultiSampleDropoutOptions{});
  typename MSD<T>::Context ctx;
  Stream s(1);
  const LabelVec y = LabelVec::Zero(4);
  const Mat<T> h0(0, 4), W0(5, 0), h(6, 4), Wr0(0, 6), Wsmall = Mat<T>::Ones(5, 6);
  const Vec<T> b5 = Vec<T>::Zero(5), b0(0);
  CHECK_THROWS_WITH(msd.forward(h0, W0, b5, y, s, ctx),
                    "regula::MultiSampleDropout: h must have at least one feature (row), got 0");
  CHECK_THROWS_WITH(msd.forward(h, Wr0, b0, y, s, ctx),
                    "regula::MultiSampleDropout: W must have at least one row (class), got 0");
  const Mat<T> hb(6, 0);
  const LabelVec y0(0);
  CHECK_THROWS_WITH(msd.forward(hb, Wsmall, b5, y0, s, ctx),
                    "regula::MultiSampleDropout: h must have at least one sample (column), got 0");
  CHECK(s.offset() == 0);
  CHECK_FALSE(ctx.ready());
}

TEMPLATE_TEST_CASE(
    "Multi-sample dropout backward refuses outputs sharing memory with W or each other",
    "[layers][multisample][errors][alias]", float, double) {
  // Issue 20, item 7: dW in W's storage (C ≥ 64) was written before W was read again.
  using T = TestType;
  for (const Index C : {Index{5}, Index{70}}) {
    const Problem<T> P(12, 6, C);
    MultiSampleDropoutOptions o;
    o.samples = 2;
    const MSD<T> msd(o);
    typename MSD<T>::Context ctx;
    Stream s(3);
    Mat<T> W = P.W;
    Mat<T> dh(P.K, P.B);
    Vec<T> db(C);
    Mat<T> dW(C, P.K);
    // Exact alias dW = W.
    (void)msd.forward(P.h, W, P.b, P.y, s, ctx);
    CHECK_THROWS_WITH(msd.backward(W, ctx, dh, W, db),
                      "regula::MultiSampleDropout::backward: dW must not overlap W");
    // dh inside W's storage, db inside dW's, dh overlapping dW.
    Mat<T> big(P.K + C, P.K * P.B + P.K);
    CHECK_THROWS_WITH(
        msd.backward(big.topLeftCorner(C, P.K), ctx, big.bottomLeftCorner(P.K, P.B), dW, db),
        "regula::MultiSampleDropout::backward: dh must not overlap W");
    CHECK_THROWS_WITH(msd.backward(W, ctx, dh, dW, dW.col(1)),
                      "regula::MultiSampleDropout::backward: db must not overlap dW");
    Mat<T> both(std::max(P.K, C), P.K + P.B);  // dW's first column is dh's last
    CHECK_THROWS_WITH(
        msd.backward(W, ctx, both.topLeftCorner(P.K, P.B), both.block(0, P.B - 1, C, P.K), db),
        "regula::MultiSampleDropout::backward: dW must not overlap dh");
    // The refusals consumed nothing: the call is still there for valid outputs, and they equal the
    // gradients of a context that saw no bad call.
    CHECK(ctx.ready());
    msd.backward(W, ctx, dh, dW, db);
    typename MSD<T>::Context fresh;
    Stream s2(3);
    (void)msd.forward(P.h, P.W, P.b, P.y, s2, fresh);
    Mat<T> dh2(P.K, P.B), dW2(C, P.K);
    Vec<T> db2(C);
    msd.backward(P.W, fresh, dh2, dW2, db2);
    CHECK(dh == dh2);
    CHECK(dW == dW2);
    CHECK(W == P.W);
  }
}
