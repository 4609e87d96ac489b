// The distance in units in the last place between two floats, for the exp and log checks
// (tests/kernels/exp_log_cases.hpp and scripts/check_exp_log.cpp).
#ifndef REGULA_TESTS_SUPPORT_ULPS_HPP
#define REGULA_TESTS_SUPPORT_ULPS_HPP

#include <cmath>
#include <cstdint>
#include <cstring>

namespace regula::test {

/// |a − b| in ulps, counted along the floats (across zero too); 0 for two NaNs, 2^40 for a NaN
/// against a number.
inline std::int64_t ulps(float a, float b) {
  constexpr std::int64_t far = std::int64_t{1} << 40;
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : far;
  if (a == b) return 0;
  std::uint32_t ua, ub;
  std::memcpy(&ua, &a, sizeof a);
  std::memcpy(&ub, &b, sizeof b);
  auto key = [](std::uint32_t u) {
    return (u & 0x80000000u) != 0 ? -static_cast<std::int64_t>(u & 0x7FFFFFFFu)
                                  : static_cast<std::int64_t>(u);
  };
  const std::int64_t d = key(ua) - key(ub);
  return d < 0 ? -d : d;
}

}  // namespace regula::test

#endif  // REGULA_TESTS_SUPPORT_ULPS_HPP
