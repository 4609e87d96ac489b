#define EIGEN_RUNTIME_NO_MALLOC
#include "regula/losses/binary_kl.hpp"

#include <cmath>

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(Bkl, binary_kl, KDLossOptions, KDLossOptions{}.temperature(4.0), false);
REGULA_KD_LOSS_TRAITS(Bkln, binary_kl_norm, KDLossOptions, KDLossOptions{}.temperature(4.0), false);

TEMPLATE_TEST_CASE("binary_kl and binary_kl_norm match DHKD's formulas", "[losses][binary_kl]",
                   float, double) {
  kd::standard_checks<Bkl, TestType>();
  kd::temperature_checks<Bkl, TestType>();
  kd::standard_checks<Bkln, TestType>();
  kd::temperature_checks<Bkln, TestType>();
}

TEST_CASE("binary_kl gradients match central differences (double)", "[losses][binary_kl][gradcheck]") {
  kd::gradient_check<Bkl>();
  kd::gradient_check<Bkln>();
}

TEMPLATE_TEST_CASE("binary_kl_norm reproduces the test vector of algorithms.md 10",
                   "[losses][binary_kl]", float, double) {
  using T = TestType;
  regula::Matrix<T> z(3, 1), v(3, 1), dz(3, 1);
  z << T(1), T(2), T(0.5);
  v << T(0.5), T(2.5), T(-1);
  const T loss = regula::binary_kl_norm(z, v, dz, KDLossOptions{}.temperature(2.0));
  const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-9;
  CHECK(static_cast<double>(loss) == Approx(0.337233217).margin(tol));
  CHECK(static_cast<double>(dz(0)) == Approx(0.124353002).margin(tol));
  CHECK(static_cast<double>(dz(1)) == Approx(-0.124353002).margin(tol));
  CHECK(static_cast<double>(dz(2)) == Approx(0.358357398).margin(tol));
}

TEST_CASE("binary_kl_norm equals T^2 * sum log cosh((z - v)/2T) / B", "[losses][binary_kl]") {
  const auto z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  for (double t : {0.5, 2.0, 7.0}) {
    const double want =
        t * t * ((z - v).array() / (2.0 * t)).cosh().log().sum() / static_cast<double>(kd::kB);
    CHECK(regula::binary_kl_norm(z, v, KDLossOptions{}.temperature(t)) == Approx(want).epsilon(1e-12));
  }
  // Far past DHKD's clamp (|z - v| > 18.4 T) the gradient saturates at T/(2B) instead of 0.
  Eigen::MatrixXd a(1, 1), b(1, 1), d(1, 1);
  a << 100.0;
  b << 0.0;
  (void)regula::binary_kl_norm(a, b, d, KDLossOptions{}.temperature(2.0));
  CHECK(d(0) == Approx(1.0).epsilon(1e-12));
}

}  // namespace
