// The exhaustive accuracy check of regula's float exp and log (kernels/exp_log.hpp) and, for
// comparison, xsimd's: every one of the 2^32 float bit patterns against std::exp and std::log in
// double rounded to float, in ulps (NaN must give NaN). About 1.5 minutes per function on one
// core; run it for each instruction set:
//
//   for f in -march=native "-mavx2 -mfma" -msse2; do
//     g++ -std=c++17 -O3 $f -DNDEBUG -Iinclude -Itests scripts/check_exp_log.cpp -o /tmp/cel
//     /tmp/cel
//   done
//
// Prints, per function, the worst distance and where, and how many inputs are more than 1 ulp
// off. The tests (tests/kernels/exp_log_cases.hpp) check a stride of this and the hard ranges.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "regula/kernels/exp_log.hpp"

#include "support/ulps.hpp"

namespace {

using B = xsimd::batch<float, regula::default_arch>;

using regula::test::ulps;

template <class F, class R>
void sweep(const char* name, F&& f, R&& ref) {
  alignas(64) float in[B::size], out[B::size];
  std::int64_t worst = 0;
  float at = 0;
  std::uint64_t over = 0;
  for (std::uint64_t u = 0; u <= 0xFFFFFFFFull; u += B::size) {
    for (std::size_t k = 0; k < B::size; ++k) {
      const auto bits = static_cast<std::uint32_t>(u + k);
      std::memcpy(&in[k], &bits, sizeof bits);
    }
    f(B::load_aligned(in)).store_aligned(out);
    for (std::size_t k = 0; k < B::size; ++k) {
      const std::int64_t d = ulps(out[k], ref(in[k]));
      if (d > 1) ++over;
      if (d > worst) {
        worst = d;
        at = in[k];
      }
    }
  }
  std::printf("%-10s %-12s worst %lld ulp at %a (%g), %llu inputs over 1 ulp\n", name,
              regula::default_arch::name(), static_cast<long long>(worst), static_cast<double>(at),
              static_cast<double>(at), static_cast<unsigned long long>(over));
}

}  // namespace

int main() {
  auto exp_ref = [](float x) {
    return std::isnan(x) ? x : static_cast<float>(std::exp(static_cast<double>(x)));
  };
  auto log_ref = [](float x) {
    return std::isnan(x) ? x : static_cast<float>(std::log(static_cast<double>(x)));
  };
  sweep(
      "exp", [](const B& x) { return regula::kernels::exp_batch(x); }, exp_ref);
  sweep(
      "xsimd exp", [](const B& x) { return xsimd::exp(x); }, exp_ref);
  sweep(
      "log", [](const B& x) { return regula::kernels::log_batch(x); }, log_ref);
  sweep(
      "xsimd log", [](const B& x) { return xsimd::log(x); }, log_ref);
  return 0;
}
