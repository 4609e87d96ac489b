#include "regula/selection/forget_rate.hpp"

#include "support/catch.hpp"

using Catch::Matchers::WithinAbs;

TEST_CASE("The paper's forget-rate schedule at known epochs (T_k = 10, tau = 0.5)",
          "[selection][schedule]") {
  const regula::ForgetRateOptions o{0.5, 10, 1};
  CHECK(regula::forget_rate(o, 0) == 0.0);
  CHECK_THAT(regula::forget_rate(o, 1), WithinAbs(0.05, 1e-15));
  CHECK_THAT(regula::forget_rate(o, 5), WithinAbs(0.25, 1e-15));
  CHECK(regula::forget_rate(o, 10) == 0.5);
  CHECK(regula::forget_rate(o, 200) == 0.5);
  // c = 2 bends the ramp: tau·(T/T_k)².
  CHECK_THAT(regula::forget_rate({0.5, 10, 2}, 5), WithinAbs(0.125, 1e-15));
  CHECK_THAT(regula::forget_rate({0.5, 10, 0.5}, 4), WithinAbs(0.5 * std::sqrt(0.4), 1e-15));
}

TEST_CASE("The official code's schedule: linspace(0, tau^c, T_k), then tau",
          "[selection][schedule]") {
  const regula::ForgetRateOptions o{0.5, 10, 1};
  CHECK(regula::legacy_coteaching_forget_rate(o, 0) == 0.0);
  CHECK_THAT(regula::legacy_coteaching_forget_rate(o, 1), WithinAbs(0.5 / 9, 1e-15));
  CHECK_THAT(regula::legacy_coteaching_forget_rate(o, 9), WithinAbs(0.5, 1e-15));
  CHECK(regula::legacy_coteaching_forget_rate(o, 10) == 0.5);
  // The code raises tau (not the epoch ratio) to c.
  CHECK_THAT(regula::legacy_coteaching_forget_rate({0.5, 10, 2}, 9), WithinAbs(0.25, 1e-15));
  CHECK(regula::legacy_coteaching_forget_rate({0.5, 10, 2}, 10) == 0.5);
}

TEST_CASE("Schedules reject bad parameters, naming them", "[selection][schedule][errors]") {
  CHECK_THROWS_WITH(regula::forget_rate({1.0, 10, 1}, 1),
                    "regula::forget_rate: tau must be in [0, 1), got 1");
  CHECK_THROWS_WITH(regula::forget_rate({-0.1, 10, 1}, 1),
                    "regula::forget_rate: tau must be in [0, 1), got -0.1");
  CHECK_THROWS_WITH(regula::forget_rate({0.5, 0.5, 1}, 1),
                    "regula::forget_rate: ramp_epochs must be >= 1, got 0.5");
  CHECK_THROWS_WITH(regula::forget_rate({0.5, 10, 0}, 1),
                    "regula::forget_rate: exponent must be > 0, got 0");
  CHECK_THROWS_WITH(regula::forget_rate({0.5, 10, 1}, -1),
                    "regula::forget_rate: epoch must be >= 0, got -1");
  CHECK_THROWS_AS(regula::legacy_coteaching_forget_rate({0.5, 10, 1}, 1.5),
                  regula::invalid_argument);
}
