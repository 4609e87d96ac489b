// SIMD-versus-scalar test cases for the raw kernels, compiled once per instruction set.
#ifndef REGULA_TESTS_KERNELS_SIMD_CASES_HPP
#define REGULA_TESTS_KERNELS_SIMD_CASES_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "regula/core/philox.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/kernels/multi_sample_dropout.hpp"
#include "regula/kernels/philox.hpp"

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
  const std::size_t n =
      GENERATE(std::size_t{0}, std::size_t{1}, regula::simd::width<T> - 1, regula::simd::width<T>,
               regula::simd::width<T> + 1, std::size_t{127}, std::size_t{128}, std::size_t{129},
               std::size_t{1000});
  const std::size_t i0 =
      GENERATE(std::size_t{0}, std::size_t{5}, std::size_t{128}, std::size_t{250});
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

namespace regula::test {

/// Largest |a − b| relative to the largest |b| (1 when b is all zero).
template <class T>
double max_rel_diff(const std::vector<T>& a, const std::vector<T>& b) {
  double diff = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return diff / (scale > 0 ? scale : 1.0);
}

/// A recorded keep mask for call elements [0, n): a fixed pseudo-random pattern.
inline std::vector<std::uint64_t> test_mask(std::size_t n) {
  std::vector<std::uint64_t> m(regula::kernels::dropout_mask_words(n) + 2);
  std::uint64_t v = 0x9E3779B97F4A7C15ULL;
  for (auto& w : m) {
    v ^= v << 13;
    v ^= v >> 7;
    v ^= v << 17;
    w = v;
  }
  return m;
}

template <class T>
std::vector<T> test_values(std::size_t n, double phase) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i)
    x[i] = static_cast<T>(std::sin(0.37 * static_cast<double>(i) + phase));
  return x;
}

}  // namespace regula::test

TEMPLATE_TEST_CASE("SIMD narrow-head kernels of multi-sample dropout equal their scalar twins",
                   "[kernels][multisample][simd]", float, double) {
  using T = TestType;
  using regula::test::max_rel_diff;
  const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  const std::size_t K =
      GENERATE(std::size_t{1}, regula::simd::width<T> - 1, regula::simd::width<T>,
               regula::simd::width<T> + 1, 4 * regula::simd::width<T> + 3, std::size_t{130});
  const std::size_t C =
      GENERATE(std::size_t{1}, std::size_t{3}, std::size_t{10}, std::size_t{17}, std::size_t{33});
  const std::size_t n = 3, first = GENERATE(std::size_t{0}, std::size_t{5}, std::size_t{130});
  const std::size_t ldx = K + 2, ldw = K + 1, ldg = C + 1;
  INFO("K " << K << ", C " << C << ", first " << first);
  const auto mask = regula::test::test_mask(first + n * K);
  const auto x = regula::test::test_values<T>(ldx * n, 0.1);
  const auto wt = regula::test::test_values<T>(ldw * C, 0.7);
  const auto g = regula::test::test_values<T>(ldg * n, 1.3);
  // Logits: z = W x.
  std::vector<T> za(C * n + 5, T(9)), zb = za;
  regula::kernels::narrow_product_reference(K, C, n, x.data(), ldx, wt.data(), ldw, za.data(), C);
  regula::kernels::narrow_product(K, C, n, x.data(), ldx, wt.data(), ldw, zb.data(), C);
  CHECK(max_rel_diff(zb, za) <= tol);
  CHECK(zb.back() == T(9));  // nothing written past the block
  // ∂L/∂Wᵀ += h̃ Gᵀ with the masked input formed from the bits.
  auto da = regula::test::test_values<T>(K * C, 2.1), db = da;
  regula::kernels::masked_outer_accumulate_reference(mask.data(), first, K, C, n, x.data(), ldx,
                                                     g.data(), ldg, T(2), da.data(), K);
  regula::kernels::masked_outer_accumulate(mask.data(), first, K, C, n, x.data(), ldx, g.data(),
                                           ldg, T(2), db.data(), K);
  CHECK(max_rel_diff(db, da) <= tol);
  // One column of Σ masked WᵀG, written and accumulated.
  for (const bool add : {false, true}) {
    auto ya = regula::test::test_values<T>(K + 3, 0.5), yb = ya;
    regula::kernels::masked_transposed_product_column_reference(
        mask.data(), first, K, C, wt.data(), ldw, g.data(), T(2), add, ya.data());
    regula::kernels::masked_transposed_product_column(mask.data(), first, K, C, wt.data(), ldw,
                                                      g.data(), T(2), add, yb.data());
    CHECK(max_rel_diff(yb, ya) <= tol);
    CHECK(yb[K] == ya[K]);  // nothing written past the column
  }
  // Masked add from recorded bits equals the scalar walk.
  std::vector<T> sa = regula::test::test_values<T>(K, 0.9), sb = sa;
  regula::kernels::masked_scale_add_segment(mask.data(), first, K, x.data(), T(2), sb.data());
  for (std::size_t k = 0; k < K; ++k) {
    const bool kept = ((mask[(first + k) / 64] >> ((first + k) % 64)) & 1U) != 0;
    sa[k] += x[k] * (kept ? T(2) : T(0));
  }
  CHECK(regula::test::same_bits(sa, sb));
}

#endif
