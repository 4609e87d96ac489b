#define EIGEN_RUNTIME_NO_MALLOC
#include "regula/losses/js.hpp"

#include <cmath>

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(Js, js, KDLossOptions, KDLossOptions{}.temperature(4.0), true);

TEMPLATE_TEST_CASE("js matches PyTorch and its invariants", "[losses][js]", float, double) {
  kd::standard_checks<Js, TestType>();
  kd::temperature_checks<Js, TestType>();
}

TEST_CASE("js gradient matches central differences (double)", "[losses][js][gradcheck]") {
  kd::gradient_check<Js>();
}

TEST_CASE("js is bounded by ln 2 and finite when a probability underflows", "[losses][js]") {
  Eigen::MatrixXd z(3, 1), v(3, 1), dz(3, 1);
  z << 800.0, 0.0, -800.0;  // p = (1, 0, 0) to double precision
  v << -800.0, 0.0, 800.0;  // q = (0, 0, 1)
  const double l = regula::js(z, v, dz, KDLossOptions{}.scale_by_t_squared(false));
  CHECK(l == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(dz.allFinite());
}

}  // namespace
