#define EIGEN_RUNTIME_NO_MALLOC
#include "regula/losses/total_variation.hpp"

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(Tv, total_variation, KDLossOptions, KDLossOptions{}.temperature(4.0), true);

TEMPLATE_TEST_CASE("total_variation matches PyTorch and its invariants",
                   "[losses][total_variation]", float, double) {
  kd::standard_checks<Tv, TestType>();
  kd::temperature_checks<Tv, TestType>();
}

TEST_CASE("total_variation gradient matches central differences (double)",
          "[losses][total_variation][gradcheck]") {
  // Golden logits have p != q in every class, where TV is differentiable.
  kd::gradient_check<Tv>();
}

TEST_CASE("total_variation is 1 for disjoint distributions", "[losses][total_variation]") {
  Eigen::MatrixXd z(2, 1), v(2, 1);
  z << 900.0, -900.0;
  v << -900.0, 900.0;
  CHECK(regula::total_variation(z, v, KDLossOptions{}.scale_by_t_squared(false)) ==
        Approx(1.0).epsilon(1e-12));
}

}  // namespace
