#define EIGEN_RUNTIME_NO_MALLOC
#include "regula/losses/logit_mse.hpp"

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;
using regula::LogitMSEOptions;

REGULA_KD_LOSS_TRAITS(Mse, logit_mse, LogitMSEOptions, LogitMSEOptions{}, false);
REGULA_KD_LOSS_TRAITS(StdKd, logit_std_kd, KDLossOptions, KDLossOptions{}.temperature(4.0), true);

TEMPLATE_TEST_CASE("logit_mse matches F.mse_loss", "[losses][logit_mse]", float, double) {
  kd::golden_checks<Mse, TestType>();
  kd::per_sample_checks<Mse, TestType>();
  kd::error_checks<Mse, TestType>();
  kd::no_malloc_checks<Mse, TestType>();
  // ±1e4 logits stay finite (1e8-sized squares fit a float).
  const auto z = kd::spread<TestType>(37, 6, 1e4, 1), v = kd::spread<TestType>(37, 6, 1e4, 2);
  regula::Matrix<TestType> dz(37, 6);
  CHECK(std::isfinite(regula::logit_mse(z, v, dz)));
  CHECK(dz.allFinite());
}

TEMPLATE_TEST_CASE("logit_std_kd matches torchdistill's LogitStdKDLoss formula",
                   "[losses][logit_std_kd]", float, double) {
  kd::standard_checks<StdKd, TestType>();
  kd::temperature_checks<StdKd, TestType>();
}

TEST_CASE("logit_mse and logit_std_kd gradients match central differences (double)",
          "[losses][logit_mse][gradcheck]") {
  kd::gradient_check<Mse>();
  kd::gradient_check<StdKd>();
}

TEST_CASE("logit_std_kd is invariant to shifting and scaling the logits", "[losses][logit_std_kd]") {
  const auto z = kd::gmat<double>("z"), v = kd::gmat<double>("v");
  const auto o = KDLossOptions{}.temperature(2.0);
  const Eigen::MatrixXd z2 = (3.0 * z.array() + 5.0).matrix();
  CHECK(regula::logit_std_kd(z2, v, o) == Approx(regula::logit_std_kd(z, v, o)).epsilon(1e-6));
  // A constant column has std 0: finite, no division by zero in the gradient.
  Eigen::MatrixXd c = Eigen::MatrixXd::Constant(4, 2, 1.5), vc = kd::spread<double>(4, 2, 2, 9);
  Eigen::MatrixXd dz(4, 2);
  CHECK(std::isfinite(regula::logit_std_kd(c, vc, dz, o)));
  CHECK(dz.allFinite());
  Eigen::MatrixXd one(1, 2);
  CHECK_THROWS_WITH(regula::logit_std_kd(one, one, o), Catch::Contains("at least two classes"));
}

}  // namespace
