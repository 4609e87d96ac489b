// regula's float exp and log (kernels/exp_log.hpp) against std::exp and std::log in double,
// rounded to float, in ulps: every float whose exponential is subnormal, the boundaries of the
// overflow and underflow, every subnormal input of log, a fixed stride through all 2^32 bit
// patterns, and the special values. The exhaustive check over all 2^32 floats is
// scripts/check_exp_log.cpp (minutes, not a test). Compiled for each instruction set by
// test_isa.cpp and for the default one by test_exp_log.cpp.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "regula/kernels/exp_log.hpp"

#include "support/catch.hpp"
#include "support/ulps.hpp"

namespace exp_log_cases {

using B = xsimd::batch<float, regula::default_arch>;
constexpr std::size_t W = B::size;

inline float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

using regula::test::ulps;

// The worst ulp distance of f over the bit patterns lo, lo + step, ... ≤ hi, against ref, and
// where it is.
struct Worst {
  std::int64_t ulps = 0;
  float at = 0;
};

template <class F, class R>
Worst worst(std::uint64_t lo, std::uint64_t hi, std::uint64_t step, F&& f, R&& ref) {
  alignas(64) float in[W], out[W];
  Worst w;
  std::uint64_t u = lo;
  while (u <= hi) {
    std::size_t k = 0;
    for (; k < W && u <= hi; ++k, u += step) in[k] = from_bits(static_cast<std::uint32_t>(u));
    for (std::size_t j = k; j < W; ++j) in[j] = in[0];
    f(B::load_aligned(in)).store_aligned(out);
    for (std::size_t j = 0; j < k; ++j) {
      const std::int64_t d = ulps(out[j], ref(in[j]));
      if (d > w.ulps) {
        w.ulps = d;
        w.at = in[j];
      }
    }
  }
  return w;
}

inline void check_within_1ulp(const Worst& w) {
  INFO("worst " << w.ulps << " ulp at " << w.at);
  CHECK(w.ulps <= 1);
}

inline float exp_ref(float x) {
  return std::isnan(x) ? x : static_cast<float>(std::exp(static_cast<double>(x)));
}
inline float log_ref(float x) {
  return std::isnan(x) ? x : static_cast<float>(std::log(static_cast<double>(x)));
}

// Each special value alone in a batch must give exactly the reference's value.
template <class F, class R, std::size_t N>
void check_specials(const char* name, F&& f, R&& ref, const float (&specials)[N]) {
  alignas(64) float in[W], out[W];
  for (const float s : specials) {
    for (std::size_t k = 0; k < W; ++k) in[k] = s;
    f(B::load_aligned(in)).store_aligned(out);
    INFO(name << "(" << s << ") = " << out[0]);
    CHECK(ulps(out[0], ref(s)) == 0);
  }
}

}  // namespace exp_log_cases

TEST_CASE("regula's float exp is within 1 ulp of e^x, subnormal and overflowing results included",
          "[kernels][exp_log]") {
  using namespace exp_log_cases;
  auto f = [](const B& x) { return regula::kernels::exp_batch(x); };
  // Every float whose e^x is subnormal or rounds to 0 or the smallest subnormals:
  // x in [-104, -87.3] (bit patterns of the negative floats from 87.3 to 104 in magnitude).
  const std::uint32_t lo = 0xC2AE999Au;  // -87.3
  const std::uint32_t hi = 0xC2D00000u;  // -104
  check_within_1ulp(worst(lo, hi, 1, f, exp_ref));
  // The overflow boundary ln(FLT_MAX) = 88.7228 and its neighbourhood, every float.
  check_within_1ulp(worst(0x42B17180u - 4096, 0x42B17180u + 4096, 1, f, exp_ref));
  // A stride through every bit pattern (positive and negative, NaNs and infinities included).
  check_within_1ulp(worst(0, 0xFFFFFFFFu, 4099, f, exp_ref));
  // Special values.
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {0.0f,
                            -0.0f,
                            inf,
                            -inf,
                            std::numeric_limits<float>::max(),
                            -std::numeric_limits<float>::max(),
                            88.8f,
                            -104.5f,
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::denorm_min()};
  check_specials("exp", f, exp_ref, specials);
}

TEST_CASE("regula's float log is within 1 ulp of log x, subnormal inputs included",
          "[kernels][exp_log]") {
  using namespace exp_log_cases;
  auto f = [](const B& x) { return regula::kernels::log_batch(x); };
  // Subnormal inputs, a stride of 7 through all of them, and the positive floats near 1 (where
  // log x → 0 and the relative error is hardest to keep), every one.
  check_within_1ulp(worst(1, 0x007FFFFFu, 7, f, log_ref));
  check_within_1ulp(worst(0x3F700000u, 0x3F880000u, 1, f, log_ref));
  check_within_1ulp(worst(0, 0xFFFFFFFFu, 4099, f, log_ref));
  const float inf = std::numeric_limits<float>::infinity();
  alignas(64) float in[W], out[W];
  const float specials[] = {0.0f,
                            -0.0f,
                            inf,
                            -inf,
                            -1.0f,
                            1.0f,
                            std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::min(),
                            std::numeric_limits<float>::denorm_min(),
                            std::numeric_limits<float>::quiet_NaN()};
  check_specials("log", f, log_ref, specials);
  // A batch mixing the usual case with a special one takes the careful path for all its lanes.
  for (std::size_t k = 0; k < W; ++k) in[k] = 1.5f + static_cast<float>(k);
  in[W - 1] = 0.0f;
  f(B::load_aligned(in)).store_aligned(out);
  for (std::size_t k = 0; k + 1 < W; ++k) CHECK(ulps(out[k], log_ref(in[k])) <= 1);
  CHECK(out[W - 1] == -inf);
}

TEST_CASE("regula's double log is within 2 ulp of log x, subnormal inputs included",
          "[kernels][exp_log]") {
  // Double goes to xsimd's log, with subnormal inputs scaled into the normal range first
  // (xsimd 8.1 alone was 37 too low there). A stride through the subnormals, the boundary with
  // the normal range, and some normal inputs.
  using DB = xsimd::batch<double, regula::default_arch>;
  constexpr std::size_t WD = DB::size;
  alignas(64) double in[WD], out[WD];
  std::int64_t worst = 0;
  double at = 0;
  auto check = [&](std::uint64_t bits) {
    for (std::size_t k = 0; k < WD; ++k) {
      const std::uint64_t b = bits + k;
      std::memcpy(&in[k], &b, sizeof(double));
    }
    regula::kernels::log_batch(DB::load_aligned(in)).store_aligned(out);
    for (std::size_t k = 0; k < WD; ++k) {
      const std::int64_t d = regula::test::ulps(out[k], std::log(in[k]));
      if (d > worst) {
        worst = d;
        at = in[k];
      }
    }
  };
  for (std::uint64_t u = 1; u < 0x0010000000000000ULL; u += 0x000000A000000001ULL) check(u);
  check(0x000FFFFFFFFFFFF0ULL);  // the largest subnormals and the smallest normals
  check(0x0010000000000000ULL - WD / 2);
  for (std::uint64_t u = 0x0010000000000000ULL; u < 0x7FF0000000000000ULL;
       u += 0x0000123456789ABDULL)
    check(u);
  INFO("worst " << worst << " ulp at " << at);
  CHECK(worst <= 2);
  const double specials[] = {0.0, std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::infinity(), -1.0};
  for (const double s : specials) {
    const double l = regula::kernels::log_batch(DB(s)).get(0);
    INFO("log(" << s << ") = " << l);
    CHECK((std::isnan(l) ? std::isnan(std::log(s)) : l == std::log(s)));
  }
}
