#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>

#include "regula/losses/sinkhorn_kd.hpp"

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::Index;
using regula::SinkhornGradMode;
using regula::SinkhornKDOptions;
using regula::SinkhornKDWorkspace;
template <class T>
using Mat = regula::Matrix<T>;

TEMPLATE_TEST_CASE("sinkhorn_kd matches SinKD's loss.py under autograd (PyTorch, float64)",
                   "[losses][sinkhorn_kd]", float, double) {
  using T = TestType;
  const Mat<T> z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  Mat<T> dz(kd::kC, kd::kB);
  SinkhornKDWorkspace<T> ws;
  const T loss = regula::sinkhorn_kd<T>(z, v, dz, ws);  // defaults: T 2, eps 0.1, 20 it, 1e-3
  const double tol = std::is_same_v<T, float> ? 1e-4 : 1e-10;
  CHECK(static_cast<double>(loss) == Approx(kd::gscalar("sinkhorn_loss")).epsilon(tol));
  const Eigen::MatrixXd g = kd::gmat<double>("sinkhorn_grad");
  CHECK((dz.template cast<double>() - g).cwiseAbs().maxCoeff() <= tol * g.cwiseAbs().maxCoeff());
  CHECK(kd::rel_err(ws.cost(), kd::gmat<double>("sinkhorn_cost", kd::kB, kd::kB)) <= tol);
  CHECK(kd::rel_err(ws.plan(), kd::gmat<double>("sinkhorn_plan", kd::kB, kd::kB)) <= tol);
  // Loss only, and the allocating overloads, agree.
  CHECK(static_cast<double>(regula::sinkhorn_kd<T>(z, v, ws)) ==
        Approx(static_cast<double>(loss)).epsilon(1e-6));
  CHECK(static_cast<double>(regula::sinkhorn_kd(z, v)) ==
        Approx(static_cast<double>(loss)).epsilon(1e-6));
  // Softmax-based: every gradient column sums to 0.
  CHECK(dz.template cast<double>().colwise().sum().cwiseAbs().maxCoeff() < 1e-3 * tol);
}

TEST_CASE("sinkhorn_kd cost and converged plan match POT", "[losses][sinkhorn_kd]") {
  const Eigen::MatrixXd z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  SinkhornKDWorkspace<double> ws;
  const double loss = regula::sinkhorn_kd<double>(
      z, v, ws, SinkhornKDOptions{}.with_iterations(3000).with_lambda(1.0));
  // POT's plan has total mass 1 (marginals 1/B); SinKD's has unit row and column sums.
  CHECK(kd::rel_err(ws.cost(), kd::gmat<double>("pot_cost", kd::kB, kd::kB)) < 1e-12);
  CHECK(kd::rel_err(ws.plan(), kd::gmat<double>("pot_plan", kd::kB, kd::kB) * double(kd::kB)) <
        1e-9);
  CHECK(loss == Approx(kd::gscalar("pot_cost_value") * kd::kB).epsilon(1e-9));
  CHECK((ws.plan().colwise().sum().array() - 1.0).abs().maxCoeff() < 1e-12);
  CHECK((ws.plan().rowwise().sum().array() - 1.0).abs().maxCoeff() < 1e-9);
}

double sinkhorn_loss(const Eigen::MatrixXd& z, const Eigen::MatrixXd& v,
                     const SinkhornKDOptions& o) {
  SinkhornKDWorkspace<double> ws;
  return regula::sinkhorn_kd<double>(z, v, ws, o);
}

TEST_CASE("sinkhorn_kd unrolled gradient matches central differences (B = 3, C = 4, 20 it)",
          "[losses][sinkhorn_kd][gradcheck]") {
  const Eigen::MatrixXd z = kd::spread<double>(4, 3, 2.0, 11),
                        v = kd::spread<double>(4, 3, 2.0, 12);
  for (double eps : {0.1, 0.02}) {
    const auto o = SinkhornKDOptions{}.with_epsilon(eps).with_lambda(1e-3);
    Eigen::MatrixXd dz(4, 3);
    SinkhornKDWorkspace<double> ws;
    (void)regula::sinkhorn_kd<double>(z, v, dz, ws, o);
    Eigen::MatrixXd zp = z;
    double worst = 0.0;
    const double h = 1e-6;
    for (Index i = 0; i < z.size(); ++i) {
      zp(i) = z(i) + h;
      const double lp = sinkhorn_loss(zp, v, o);
      zp(i) = z(i) - h;
      const double lm = sinkhorn_loss(zp, v, o);
      zp(i) = z(i);
      worst = std::max(worst, std::abs((lp - lm) / (2 * h) - dz(i)));
    }
    CHECK(worst < 1e-9 * std::max(1.0, dz.cwiseAbs().maxCoeff() * 1e3));
    CHECK(dz.cwiseAbs().maxCoeff() > 1e-6);  // the check is not vacuous
  }
}

TEST_CASE("sinkhorn_kd envelope gradient keeps only the lambda * P term", "[losses][sinkhorn_kd]") {
  const Eigen::MatrixXd z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  const auto o = SinkhornKDOptions{}.with_grad_mode(SinkhornGradMode::envelope);
  Eigen::MatrixXd dz(kd::kC, kd::kB), du(kd::kC, kd::kB);
  SinkhornKDWorkspace<double> ws;
  const double l = regula::sinkhorn_kd<double>(z, v, dz, ws, o);
  const double lu = regula::sinkhorn_kd<double>(z, v, du, ws);
  CHECK(l == Approx(lu).epsilon(1e-14));  // same forward
  // Naive: dL/dPs[c,i] = sum_j lambda P_ij sign(Ps[c,i] - Pt[c,j]), then softmax at T = 2.
  const double T = 2.0;
  Eigen::MatrixXd ps(kd::kC, kd::kB), pt(kd::kC, kd::kB);
  for (Index i = 0; i < kd::kB; ++i) {
    ps.col(i) = (z.col(i) / T).array().exp().matrix();
    ps.col(i) /= ps.col(i).sum();
    pt.col(i) = (v.col(i) / T).array().exp().matrix();
    pt.col(i) /= pt.col(i).sum();
  }
  Eigen::MatrixXd want(kd::kC, kd::kB);
  for (Index i = 0; i < kd::kB; ++i) {
    Eigen::VectorXd g = Eigen::VectorXd::Zero(kd::kC);
    for (Index j = 0; j < kd::kB; ++j) {
      g += 1e-3 * ws.plan()(i, j) * (ps.col(i) - pt.col(j)).array().sign().matrix();
    }
    want.col(i) = (ps.col(i).array() * (g.array() - ps.col(i).dot(g))).matrix() / T;
  }
  CHECK((dz - want).cwiseAbs().maxCoeff() < 1e-15);
  CHECK((dz - du).cwiseAbs().maxCoeff() > 1e-7);  // an approximation: it differs from unrolled
}

TEMPLATE_TEST_CASE("sinkhorn_kd: small epsilon in the log domain, extremes, NaN, per-sample",
                   "[losses][sinkhorn_kd]", float, double) {
  using T = TestType;
  const Index C = 37, B = 9;
  SinkhornKDWorkspace<T> ws;
  Mat<T> dz(C, B);
  const Mat<T> z = kd::spread<T>(C, B, 3, 1), v = kd::spread<T>(C, B, 3, 2);
  // eps = 1e-3: exp(-W/eps) underflows in float (W up to 2); the potentials do not.
  const T l = regula::sinkhorn_kd<T>(z, v, dz, ws, SinkhornKDOptions{}.with_epsilon(1e-3));
  CHECK(std::isfinite(l));
  CHECK(dz.allFinite());
  CHECK((ws.plan().colwise().sum().array() - T(1)).abs().maxCoeff() < T(1e-4));
  // +-1e4 logits.
  const Mat<T> zb = kd::spread<T>(C, B, 1e4, 3), vb = kd::spread<T>(C, B, 1e4, 4);
  CHECK(std::isfinite(regula::sinkhorn_kd<T>(zb, vb, dz, ws)));
  CHECK(dz.allFinite());
  // Per-sample contributions sum to the loss.
  regula::Vector<T> losses(B);
  regula::sinkhorn_kd_per_sample<T>(z, v, losses, ws);
  CHECK(static_cast<double>(losses.sum()) ==
        Approx(static_cast<double>(regula::sinkhorn_kd<T>(z, v, ws))).epsilon(1e-5));
  // NaN in gives NaN out.
  Mat<T> zn = z;
  zn(3, 4) = std::numeric_limits<T>::quiet_NaN();
  CHECK(std::isnan(regula::sinkhorn_kd<T>(zn, v, dz, ws)));
}

// Logits past T·max at T < 1 (found by the kd harness once the kd-extreme-span step-around was
// gone): z/T overflowed to +inf and the softmax, hence loss and gradient, were NaN. The
// probabilities of these columns are one-hot or ties exactly, the same as those of moderate
// logits in the same order, so the loss and gradient equal those of that moderate input.
TEMPLATE_TEST_CASE("sinkhorn_kd is finite where z/T passes the largest T",
                   "[losses][sinkhorn_kd][extreme]", float, double) {
  using T = TestType;
  const T M = std::numeric_limits<T>::max();
  Mat<T> z(3, 3), v(3, 3), zm(3, 3), vm(3, 3);
  z << M, T(0.5), -M, T(0), T(-1), M, -M, T(2), M;
  v << T(1), M, T(0), -M, M, T(0.25), T(0.5), T(-3), M;
  // Moderate logits with the same probabilities at T = 0.5 (e^{−2000} and below are 0 in T).
  zm << T(1000), T(0.5), T(-1000), T(0), T(-1), T(1000), T(-1000), T(2), T(1000);
  vm << T(1), T(1000), T(0), T(-1000), T(1000), T(0.25), T(0.5), T(-3), T(1000);
  for (const auto mode : {SinkhornGradMode::unrolled, SinkhornGradMode::envelope}) {
    const auto opt =
        SinkhornKDOptions{}.with_temperature(0.5).with_lambda(1.0).with_grad_mode(mode);
    SinkhornKDWorkspace<T> ws;
    Mat<T> dz(3, 3), dm(3, 3);
    const T loss = regula::sinkhorn_kd<T>(z, v, dz, ws, opt);
    const T want = regula::sinkhorn_kd<T>(zm, vm, dm, ws, opt);
    REQUIRE(std::isfinite(loss));
    CHECK(loss >= T(0));
    CHECK(loss == want);
    CHECK(dz == dm);
  }
}

TEMPLATE_TEST_CASE("sinkhorn_kd rejects bad arguments, naming them", "[losses][sinkhorn_kd]", float,
                   double) {
  using T = TestType;
  const Mat<T> z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  SinkhornKDWorkspace<T> ws;
  CHECK_THROWS_WITH(regula::sinkhorn_kd<T>(z, v, ws, SinkhornKDOptions{}.with_epsilon(0.0)),
                    Catch::Contains("regula::sinkhorn_kd") &&
                        Catch::Contains("epsilon must be finite and > 0, got 0"));
  CHECK_THROWS_WITH(regula::sinkhorn_kd<T>(z, v, ws, SinkhornKDOptions{}.with_temperature(-2.0)),
                    Catch::Contains("temperature"));
  CHECK_THROWS_WITH(regula::sinkhorn_kd<T>(z, v, ws, SinkhornKDOptions{}.with_iterations(0)),
                    Catch::Contains("iterations must be >= 1, got 0"));
  CHECK_THROWS_WITH(regula::sinkhorn_kd<T>(z, v, ws, SinkhornKDOptions{}.with_lambda(NAN)),
                    Catch::Contains("lambda"));
  CHECK_THROWS_WITH(regula::sinkhorn_kd<T>(z, Mat<T>(kd::kC + 1, kd::kB), ws),
                    Catch::Contains("teacher logits"));
  regula::Vector<T> short_l(2);
  CHECK_THROWS_AS(regula::sinkhorn_kd_per_sample<T>(z, v, short_l, ws), regula::invalid_argument);
}

TEMPLATE_TEST_CASE("sinkhorn_kd refuses finite options that overflow in T (issue 20, item 9)",
                   "[losses][sinkhorn_kd]", float, double) {
  using T = TestType;
  const Mat<T> z = kd::gmat<T>("z"), v = kd::gmat<T>("v");
  Mat<T> dz(kd::kC, kd::kB);
  SinkhornKDWorkspace<T> ws;
  const double eps_min = regula::sinkhorn_epsilon_min<T>;
  // 1e-39 was accepted and gave NaN in float (1/eps overflows); just below the bound the
  // log-domain exponents round by more than 1 and overflow a few times lower.
  for (double eps : {1e-39, eps_min / 2, 1e-300}) {
    CAPTURE(eps);
    CHECK_THROWS_WITH(
        regula::sinkhorn_kd<T>(z, v, dz, ws, SinkhornKDOptions{}.with_epsilon(eps)),
        Catch::Contains("regula::sinkhorn_kd") && Catch::Contains("epsilon must be >= "));
  }
  // At the bound the loss and the gradient are finite.
  CHECK(std::isfinite(
      regula::sinkhorn_kd<T>(z, v, dz, ws, SinkhornKDOptions{}.with_epsilon(eps_min))));
  CHECK(dz.allFinite());
  // INT_MAX iterations asked 2·INT_MAX·B potentials (32 GiB) before anything was checked.
  CHECK_THROWS_WITH(
      regula::sinkhorn_kd<T>(z, v, dz, ws,
                             SinkhornKDOptions{}.with_iterations(std::numeric_limits<int>::max())),
      Catch::Contains("iterations must be <= 100000"));
  // A temperature whose 1/T is not a normal number of T.
  const double t_big = 10.0 * regula::detail::temperature_max<T>();
  CHECK_THROWS_WITH(regula::sinkhorn_kd<T>(z, v, ws, SinkhornKDOptions{}.with_temperature(t_big)),
                    Catch::Contains("temperature must be in ["));
}

TEMPLATE_TEST_CASE("sinkhorn_kd keeps two potential vectors unless the unrolled gradient needs all",
                   "[losses][sinkhorn_kd][nomalloc]", float, double) {
  using T = TestType;
  const Index C = 20, B = 6;
  const Mat<T> z = kd::spread<T>(C, B, 3, 7), v = kd::spread<T>(C, B, 3, 8);
  Mat<T> dz(C, B);
  SinkhornKDWorkspace<T> ws;
  const auto many = SinkhornKDOptions{}.with_iterations(5000);
  // Loss only and the envelope gradient run 5000 steps with the workspace sized for one step:
  // warm calls of another iteration count do not allocate.
  (void)regula::sinkhorn_kd<T>(z, v, ws, SinkhornKDOptions{}.with_iterations(1));
  double acc = 0;
  {
    regula::test::NoMalloc guard;
    acc += static_cast<double>(regula::sinkhorn_kd<T>(z, v, ws, many));
    acc += static_cast<double>(regula::sinkhorn_kd<T>(
        z, v, dz, ws, SinkhornKDOptions{many}.with_grad_mode(SinkhornGradMode::envelope)));
  }
  CHECK(std::isfinite(acc));
  // The same loss as with the full history of the unrolled gradient.
  SinkhornKDWorkspace<T> full;
  const T lu = regula::sinkhorn_kd<T>(z, v, dz, full, many);
  CHECK(static_cast<double>(regula::sinkhorn_kd<T>(z, v, ws, many)) ==
        Approx(static_cast<double>(lu)).epsilon(std::is_same_v<T, float> ? 1e-6 : 1e-13));
}

TEMPLATE_TEST_CASE("sinkhorn_kd with a warm workspace does not allocate",
                   "[losses][sinkhorn_kd][nomalloc]", float, double) {
  using T = TestType;
  const Index C = 50, B = 11;
  const Mat<T> z = kd::spread<T>(C, B, 3, 5), v = kd::spread<T>(C, B, 3, 6);
  Mat<T> dz(C, B);
  regula::Vector<T> losses(B);
  SinkhornKDWorkspace<T> ws;
  (void)regula::sinkhorn_kd<T>(z, v, dz, ws);
  double acc = 0;
  {
    regula::test::NoMalloc guard;
    acc += static_cast<double>(regula::sinkhorn_kd<T>(z, v, dz, ws));
    acc += static_cast<double>(regula::sinkhorn_kd<T>(
        z, v, dz, ws, SinkhornKDOptions{}.with_grad_mode(SinkhornGradMode::envelope)));
    regula::sinkhorn_kd_per_sample<T>(z, v, losses, ws);
  }
  CHECK(std::isfinite(acc));
}

// Fuzz finding sinkhorn-float-tiny-eps-unrolled: in float the log-domain potentials round by
// about 6/ε ulps and the unrolled backward amplified that into a gradient 2,500 times too large
// at ε = 1e-6 (20 iterations), 6e7 at 1000 and NaN at 100,000; at ε = 1e-3 it was off by 3e-3.
// Below sinkhorn_float_in_double_below a float call runs in double: every output is then the
// double call's, rounded once.
TEST_CASE("sinkhorn_kd<float> below the in-double bound is the double call rounded once",
          "[losses][sinkhorn_kd][extreme]") {
  Mat<float> z(2, 3), v(2, 3);  // the finding's input
  z.col(0) << 0.0f, 3.375f;
  z.col(1) << -0.0f, 6.0625f;
  z.col(2) << -7.0f, 1e30f;
  v.col(0) << 0.0f, 0.0f;
  v.col(1) << 0.5f, 0.0f;
  v.col(2) << -2.9375f, 0.375f;
  const Mat<float> zs = kd::spread<float>(6, 9, 3, 5), vs = kd::spread<float>(6, 9, 3, 6);
  struct Case {
    const Mat<float>* z;
    const Mat<float>* v;
    double eps;
    int iterations;
  };
  const Case cases[] = {{&z, &v, 1e-6, 100000},
                        {&z, &v, 1e-6, 20},
                        {&z, &v, 1e-3, 20},
                        {&zs, &vs, 1e-4, 50},
                        {&zs, &vs, 5e-3, 20}};
  for (const Case& c : cases) {
    CAPTURE(c.eps, c.iterations);
    const auto opt = SinkhornKDOptions{}
                         .with_temperature(4.0)
                         .with_epsilon(c.eps)
                         .with_iterations(c.iterations)
                         .with_lambda(1.0);
    const Index C = c.z->rows(), B = c.z->cols();
    Mat<float> dz(C, B);
    Mat<double> dzd(C, B);
    SinkhornKDWorkspace<float> ws;
    SinkhornKDWorkspace<double> wsd;
    const float loss = regula::sinkhorn_kd<float>(*c.z, *c.v, dz, ws, opt);
    const Mat<double> zd = c.z->cast<double>(), vd = c.v->cast<double>();
    const double lossd = regula::sinkhorn_kd<double>(zd, vd, dzd, wsd, opt);
    REQUIRE(dz.allFinite());
    CHECK(loss == static_cast<float>(lossd));
    CHECK(dz == dzd.cast<float>());
    CHECK(ws.cost() == wsd.cost().cast<float>());
    CHECK(ws.plan() == wsd.plan().cast<float>());
    regula::Vector<float> losses(B);
    regula::Vector<double> lossesd(B);
    regula::sinkhorn_kd_per_sample<float>(*c.z, *c.v, losses, ws, opt);
    regula::sinkhorn_kd_per_sample<double>(zd, vd, lossesd, wsd, opt);
    CHECK(losses == lossesd.cast<float>());
    if (c.iterations == 20) {  // warm: no allocation on the in-double path either
      regula::test::NoMalloc guard;
      (void)regula::sinkhorn_kd<float>(*c.z, *c.v, dz, ws, opt);
    }
  }
}

}  // namespace
