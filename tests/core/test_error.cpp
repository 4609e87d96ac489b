#include <stdexcept>
#include <string>

#include "regula/core/error.hpp"

#include "support/catch.hpp"

namespace {

void check_p(double p) {
  REGULA_EXPECTS(p >= 0.0 && p <= 1.0, "regula::Thing", "p must be in [0, 1], got ", p);
}

}  // namespace

TEST_CASE("REGULA_EXPECTS throws regula::invalid_argument naming function, parameter and value",
          "[core][error]") {
  CHECK_NOTHROW(check_p(0.5));
  CHECK_THROWS_AS(check_p(1.5), regula::invalid_argument);
  CHECK_THROWS_AS(check_p(-1.0), std::invalid_argument);
  CHECK_THROWS_WITH(check_p(1.5), "regula::Thing: p must be in [0, 1], got 1.5");
}

TEST_CASE("error_message concatenates every part", "[core][error]") {
  CHECK(regula::detail::error_message("f", "a=", 1, ", b=", 2.5, ", c=", std::string("x")) ==
        "f: a=1, b=2.5, c=x");
}
