#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>

#include "regula/losses/binary_kl.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/dkd.hpp"
#include "regula/losses/dual_head.hpp"

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::DualHeadKD;
using regula::DualHeadOptions;
using regula::Index;
using regula::KDLossOptions;
using regula::Labels;
using regula::MatrixCRef;
using regula::MatrixRef;

// A tiny student: features f (d x B), linear heads z1 = W1 f, z2 = W2 f.
struct Net {
  Eigen::MatrixXd w1, w2, v;
  Labels y;
  double gamma = 1.0, alpha = 0.7;
  Net()
      : w1(kd::spread<double>(7, 4, 1.0, 21)),
        w2(kd::spread<double>(7, 4, 1.0, 22)),
        v(kd::gmat<double>("v")),
        y(5) {
    y << 3, 0, 6, 2, 5;
  }
  template <class F>
  double step(const Eigen::MatrixXd& f, DualHeadKD<double>& dh, F&& on_grads) const {
    const Eigen::MatrixXd z1 = w1 * f, z2 = w2 * f;
    Eigen::MatrixXd dz1(7, 5), dz2(7, 5);
    auto ce = [&](const MatrixCRef<double>& z, MatrixRef<double> dz) {
      return regula::cross_entropy(z, y, dz);
    };
    auto bk = [&](const MatrixCRef<double>& z, MatrixRef<double> dz) {
      return regula::binary_kl_norm(z, v, dz, KDLossOptions{}.with_temperature(2.0));
    };
    const auto l = dh.forward_backward(z1, z2, ce, bk, dz1, dz2);
    on_grads(dz1, dz2);
    return l.total;
  }
};

TEST_CASE("dual-head: the combined feature gradient matches central differences",
          "[losses][dual_head][gradcheck]") {
  const Net net;
  DualHeadKD<double> dh(DualHeadOptions{}.with_weight1(net.gamma).with_weight2(net.alpha));
  const Eigen::MatrixXd f = kd::spread<double>(4, 5, 1.5, 23);
  const double err = regula::test::gradcheck(
      f, 1, 1,
      [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& out) {
        out(0, 0) = net.step(x, dh, [](auto&, auto&) {});
      },
      [&](const Eigen::MatrixXd& w, Eigen::MatrixXd& df) {
        (void)net.step(f, dh, [&](const Eigen::MatrixXd& dz1, const Eigen::MatrixXd& dz2) {
          const Eigen::MatrixXd df1 = net.w1.transpose() * dz1, df2 = net.w2.transpose() * dz2;
          dh.combine(df1, df2, df);
        });
        df *= w(0, 0);
      },
      Eigen::MatrixXd::Constant(1, 1, 1.0));
  CHECK(err < regula::test::fd_tol);
  // Losses reported unweighted, total weighted.
  const Eigen::MatrixXd z1 = net.w1 * f, z2 = net.w2 * f;
  Eigen::MatrixXd d1(7, 5), d2(7, 5);
  const auto l = dh.forward_backward(
      z1, z2,
      [&](const MatrixCRef<double>& z, MatrixRef<double> dz) {
        return regula::cross_entropy(z, net.y, dz);
      },
      [&](const MatrixCRef<double>& z, MatrixRef<double> dz) {
        return regula::dkd(z, net.v, net.y, dz);
      },
      d1, d2);
  CHECK(l.total == Approx(net.gamma * l.loss1 + net.alpha * l.loss2).epsilon(1e-14));
  CHECK(l.loss2 == Approx(regula::dkd(z2, net.v, net.y)).epsilon(1e-14));
}

TEST_CASE("gradient_alignment projects a conflicting gradient as DHKD's PCGrad",
          "[losses][dual_head]") {
  Eigen::VectorXd g1(3), g2(3), out(3);
  g1 << 1.0, 0.0, 2.0;
  g2 << -3.0, 1.0, 0.5;  // <g2, g1> = -2 < 0
  const double dot = regula::gradient_alignment<double>(g1, g2, out);
  CHECK(dot == Approx(-2.0));
  const Eigen::VectorXd g2p = g2 - (-2.0 / 5.0) * g1;
  CHECK((out - (g1 + g2p)).cwiseAbs().maxCoeff() < 1e-15);
  CHECK(std::abs((out - g1).dot(g1)) < 1e-14);  // the projected part is orthogonal to g1
  // No conflict: plain sum.
  g2 << 3.0, 1.0, 0.5;
  (void)regula::gradient_alignment<double>(g1, g2, out);
  CHECK((out - (g1 + g2)).cwiseAbs().maxCoeff() == 0.0);
  // In place, and through DualHeadKD::combine with align on.
  Eigen::MatrixXf a(2, 2), b(2, 2), c(2, 2);
  a << 1, 0, 0, 1;
  b << -1, 2, 0, -1;
  DualHeadKD<float> dh(DualHeadOptions{}.with_align(true));
  dh.combine(a, b, c);
  CHECK(std::abs((c - a).cwiseProduct(a).sum()) < 1e-6F);
  {
    regula::test::NoMalloc guard;
    (void)regula::gradient_alignment<float>(a, b, b);
  }
  CHECK((b - c).cwiseAbs().maxCoeff() < 1e-6F);
  Eigen::MatrixXf bad(3, 2);
  CHECK_THROWS_WITH(regula::gradient_alignment<float>(a, bad, c),
                    Catch::Contains("g2 must have the shape"));
  CHECK_THROWS_WITH(DualHeadKD<float>(DualHeadOptions{}.with_weight2(NAN)),
                    Catch::Contains("weight2"));
}

}  // namespace
