#define EIGEN_RUNTIME_NO_MALLOC
#include "regula/losses/reverse_kl.hpp"

#include "kd_support.hpp"

namespace {

namespace kd = regula::test::kd;
using regula::KDLossOptions;

REGULA_KD_LOSS_TRAITS(ReverseKl, reverse_kl, KDLossOptions, KDLossOptions{}.temperature(4.0), true);

TEMPLATE_TEST_CASE("reverse_kl matches PyTorch and its invariants", "[losses][reverse_kl]", float,
                   double) {
  kd::standard_checks<ReverseKl, TestType>();
  kd::temperature_checks<ReverseKl, TestType>();
}

TEST_CASE("reverse_kl gradient matches central differences (double)",
          "[losses][reverse_kl][gradcheck]") {
  kd::gradient_check<ReverseKl>();
}

}  // namespace
