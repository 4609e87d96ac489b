// SIMD-versus-scalar test cases for the raw kernels, compiled once per instruction set.
#ifndef REGULA_TESTS_KERNELS_SIMD_CASES_HPP
#define REGULA_TESTS_KERNELS_SIMD_CASES_HPP

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "regula/core/philox.hpp"
#include "regula/kernels/dropout.hpp"
#include "support/catch.hpp"

namespace regula::test {

/// Bitwise equality of two arrays (NaN equals NaN of the same payload).
template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

}  // namespace regula::test

TEST_CASE("SIMD Philox blocks equal scalar blocks", "[kernels][philox][simd]") {
  const std::size_t n = GENERATE(std::size_t{1}, std::size_t{7}, std::size_t{16}, std::size_t{33});
  std::vector<std::uint32_t> a(4 * n), b(4 * n);
  regula::kernels::philox_blocks_reference({1, 2}, 3, 0xFFFFFFFAULL, n, a.data());
  regula::kernels::philox_blocks({1, 2}, 3, 0xFFFFFFFAULL, n, b.data());
  CHECK(a == b);
}

TEST_CASE("SIMD tile keep bits equal the scalar ones for every threshold class",
          "[kernels][dropout][simd]") {
  const std::uint32_t threshold = GENERATE(0U, 1U, 66U, 32768U, 58982U, 65535U, 65536U);
  for (std::uint64_t tile = 0; tile < 64; ++tile) {
    const regula::kernels::DropoutDraw d{{0xDEADBEEFU, 0x12345U}, 77, 0xFFFFFF00ULL, threshold};
    std::uint64_t a[2], b[2];
    regula::kernels::dropout_tile_keep_reference(d, tile, a);
    regula::kernels::dropout_tile_keep(d, tile, b);
    REQUIRE(a[0] == b[0]);
    REQUIRE(a[1] == b[1]);
  }
}

TEMPLATE_TEST_CASE("SIMD dropout segments equal scalar ones on ragged sizes and offsets",
                   "[kernels][dropout][simd]", float, double) {
  using T = TestType;
  const std::size_t n = GENERATE(std::size_t{0}, std::size_t{1}, regula::simd::width<T> - 1,
                                 regula::simd::width<T>, regula::simd::width<T> + 1, std::size_t{127},
                                 std::size_t{128}, std::size_t{129}, std::size_t{1000});
  const std::size_t i0 = GENERATE(std::size_t{0}, std::size_t{5}, std::size_t{128}, std::size_t{250});
  std::vector<T> x(n), a(n), b(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<T>(i) - T(3.5);
  if (n > 3) {
    x[1] = std::numeric_limits<T>::quiet_NaN();
    x[2] = std::numeric_limits<T>::infinity();
  }
  const regula::kernels::DropoutDraw d{{9, 8}, 1, 12345, 40000};
  const std::size_t words = regula::kernels::dropout_mask_words(i0 + n) + 2;
  std::vector<std::uint64_t> ma(words, 0), mb(words, 0);
  regula::kernels::dropout_segment_reference<T>(d, i0, n, x.data(), T(1.5), a.data(), ma.data());
  regula::kernels::dropout_segment<T>(d, i0, n, x.data(), T(1.5), b.data(), mb.data());
  CHECK(regula::test::same_bits(a, b));
  CHECK(ma == mb);
  // Reading the stored mask back gives the same output.
  std::vector<T> c(n);
  regula::kernels::masked_scale_segment<T>(mb.data(), i0, n, x.data(), T(1.5), c.data());
  CHECK(regula::test::same_bits(a, c));
}

#endif
