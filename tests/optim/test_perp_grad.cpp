#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>

#include "regula/optim/perp_grad.hpp"

#include "support/catch.hpp"
#include "support/no_malloc.hpp"

namespace {

template <class T>
using Mat = regula::Matrix<T>;

template <class T>
Mat<T> random_matrix(regula::Index rows, regula::Index cols, unsigned seed) {
  std::srand(seed);
  return Eigen::MatrixXd::Random(rows, cols).cast<T>();
}

}  // namespace

TEMPLATE_TEST_CASE("perp_grad removes the component along w and keeps the norm",
                   "[optim][perp_grad]", float, double) {
  using T = TestType;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  const Mat<T> w = random_matrix<T>(37, 5, 1);
  const Mat<T> g0 = random_matrix<T>(37, 5, 2);
  // The official formula, in double.
  const Eigen::MatrixXd wd = w.template cast<double>(), gd = g0.template cast<double>();
  const double c = wd.cwiseProduct(gd).sum() / (wd.squaredNorm() + 1e-30);
  const Eigen::MatrixXd perp = gd - c * wd;
  const Eigen::MatrixXd official = perp * (gd.norm() / (perp.norm() + 1e-30));

  Mat<T> g = g0;
  const auto r = regula::perp_grad(w, g);
  CHECK(std::abs(r.coefficient - c) < tol);
  CHECK(std::abs(r.norm_before - gd.norm()) < tol * gd.norm());
  CHECK(std::abs(r.norm_after - gd.norm()) < tol * gd.norm());
  CHECK_FALSE(r.parallel);
  CHECK((g.template cast<double>() - official).cwiseAbs().maxCoeff() < tol);
  // Orthogonal to w.
  CHECK(std::abs(g.template cast<double>().cwiseProduct(wd).sum()) < tol * wd.norm() * gd.norm());
  // The bare projection (the paper's formula).
  g = g0;
  regula::PerpGradOptions bare;
  bare.preserve_norm = false;
  (void)regula::perp_grad(w, g, bare);
  CHECK((g.template cast<double>() - perp).cwiseAbs().maxCoeff() < tol);
  // SIMD kernels against their references on a ragged size.
  regula::kernels::PerpGradDots a, b;
  regula::kernels::perp_grad_dots(w.data(), g0.data(), 37, a);
  regula::kernels::perp_grad_dots_reference(w.data(), g0.data(), 37, b);
  CHECK(std::abs(a.wg - b.wg) < 1e-12);
  CHECK(std::abs(a.ww - b.ww) < 1e-12);
  CHECK(std::abs(a.gg - b.gg) < 1e-12);
}

TEMPLATE_TEST_CASE("perp_grad guards: w = 0 and g parallel to w", "[optim][perp_grad]", float,
                   double) {
  using T = TestType;
  const Mat<T> g0 = random_matrix<T>(10, 3, 3);
  Mat<T> g = g0;
  const auto r0 = regula::perp_grad(Mat<T>::Zero(10, 3), g);
  CHECK(r0.coefficient == 0.0);
  CHECK(g == g0);  // a no-op, not NaN
  const Mat<T> w = random_matrix<T>(10, 3, 4);
  g = T(3) * w;
  const auto r1 = regula::perp_grad(w, g);
  CHECK(r1.parallel);
  CHECK(g.isZero(0));
  // Nearly parallel but clearly above rounding noise: projected and rescaled, not zeroed.
  g = T(3) * w;
  g(0, 0) += T(0.01);
  const auto r3 = regula::perp_grad(w, g);
  CHECK_FALSE(r3.parallel);
  CHECK(std::abs(r3.norm_after - r3.norm_before) < 1e-4 * r3.norm_before);
  // Zero gradient stays zero.
  g.setZero();
  const auto r2 = regula::perp_grad(w, g);
  CHECK_FALSE(r2.parallel);
  CHECK(g.isZero(0));
  CHECK(g.allFinite());
}

TEMPLATE_TEST_CASE("perp_grad accumulates in double and allocates nothing", "[optim][perp_grad]",
                   float, double) {
  using T = TestType;
  const Mat<T> w = random_matrix<T>(1000, 20, 5);
  Mat<T> g = random_matrix<T>(1000, 20, 6);
  Eigen::Matrix<T, Eigen::Dynamic, 1> v = random_matrix<T>(333, 1, 7);
  Eigen::Matrix<T, Eigen::Dynamic, 1> gv = random_matrix<T>(333, 1, 8);
  {
    regula::test::NoMalloc guard;
    (void)regula::perp_grad(w, g);
    (void)regula::perp_grad(v, gv);
    (void)regula::perp_grad(w.block(1, 1, 50, 3), g.block(1, 1, 50, 3));
  }
  CHECK(g.allFinite());
  Mat<T> gn = g;
  gn(5, 5) = std::numeric_limits<T>::quiet_NaN();
  (void)regula::perp_grad(w, gn);
  CHECK(gn.array().isNaN().any());
}

TEST_CASE("perp_grad rejects bad arguments", "[optim][perp_grad][errors]") {
  const Eigen::MatrixXf w = Eigen::MatrixXf::Random(4, 3);
  Eigen::MatrixXf g(4, 2);
  CHECK_THROWS_WITH(regula::perp_grad(w, g),
                    "regula::perp_grad: g must have the shape of w (4 x 3), got 4 x 2");
  Eigen::MatrixXf g3(4, 3);
  regula::PerpGradOptions o;
  o.eps = -1;
  CHECK_THROWS_WITH(regula::perp_grad(w, g3, o),
                    "regula::perp_grad: eps must be finite and >= 0, got -1");
  Eigen::MatrixXf same = w;
  CHECK_THROWS_WITH(regula::perp_grad(same, same), "regula::perp_grad: g must not overlap w");
}
