// The distance in units in the last place between two floats (or doubles), for the exp and log
// checks (tests/kernels/exp_log_cases.hpp and scripts/check_exp_log.cpp).
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

/// |a − b| in ulps for two doubles of the same sign, capped at 2^40; 0 for two NaNs, 2^40 for a
/// NaN against a number or for two nonzero values of opposite signs.
inline std::int64_t ulps(double a, double b) {
  constexpr std::int64_t far = std::int64_t{1} << 40;
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : far;
  if (a == b) return 0;
  if (std::signbit(a) != std::signbit(b)) return far;
  std::uint64_t ua, ub;
  std::memcpy(&ua, &a, sizeof a);
  std::memcpy(&ub, &b, sizeof b);
  const std::uint64_t d = ua > ub ? ua - ub : ub - ua;
  return d > static_cast<std::uint64_t>(far) ? far : static_cast<std::int64_t>(d);
}

}  // namespace regula::test

#endif  // REGULA_TESTS_SUPPORT_ULPS_HPP
