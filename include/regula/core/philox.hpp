/// @file
/// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror and Shaw, "Parallel
/// random numbers: as easy as 1, 2, 3" (SC'11), with a scalar path and an xsimd path that give
/// identical bits.
///
/// A block is `philox4x32_10(counter, key)`: four 32-bit words from a 128-bit counter and a
/// 64-bit key, through ten rounds of
///   (hi0, lo0) = M0·c0, (hi1, lo1) = M1·c2,
///   c ← (hi1 ⊕ c1 ⊕ k0, lo1, hi0 ⊕ c3 ⊕ k1, lo0),  k ← k + (W0, W1),
/// with M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85. The output equals
/// Random123's `philox4x32_R(10, ctr, key)`, which the tests check.
#ifndef REGULA_CORE_PHILOX_HPP
#define REGULA_CORE_PHILOX_HPP

#include <array>
#include <cstddef>
#include <cstdint>

#include "regula/core/simd.hpp"

namespace regula {

/// One Philox block: four 32-bit words.
using PhiloxBlock = std::array<std::uint32_t, 4>;
/// A 128-bit counter as four words, least significant first.
using PhiloxCounter = std::array<std::uint32_t, 4>;
/// A 64-bit key as two words, least significant first.
using PhiloxKey = std::array<std::uint32_t, 2>;

namespace detail {
/// M0, M1, W0, W1 and the round count of Philox4x32-10 (the file comment).
inline constexpr std::uint32_t philox_m0 = 0xD2511F53U;
inline constexpr std::uint32_t philox_m1 = 0xCD9E8D57U;
inline constexpr std::uint32_t philox_w0 = 0x9E3779B9U;
inline constexpr std::uint32_t philox_w1 = 0xBB67AE85U;
inline constexpr int philox_rounds = 10;
}  // namespace detail

/// The scalar reference: one Philox4x32-10 block.
[[nodiscard]] constexpr PhiloxBlock philox4x32_10(PhiloxCounter c, PhiloxKey k) noexcept {
  for (int r = 0; r < detail::philox_rounds; ++r) {
    const std::uint64_t p0 = std::uint64_t{detail::philox_m0} * c[0];
    const std::uint64_t p1 = std::uint64_t{detail::philox_m1} * c[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32);
    const auto lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32);
    const auto lo1 = static_cast<std::uint32_t>(p1);
    c = {hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0};
    k[0] += detail::philox_w0;
    k[1] += detail::philox_w1;
  }
  return c;
}

/// The counter of block number `block` (64 bits) of subsequence `subsequence` (64 bits).
[[nodiscard]] constexpr PhiloxCounter philox_counter(std::uint64_t block,
                                                     std::uint64_t subsequence) noexcept {
  return {static_cast<std::uint32_t>(block), static_cast<std::uint32_t>(block >> 32),
          static_cast<std::uint32_t>(subsequence), static_cast<std::uint32_t>(subsequence >> 32)};
}

/// The key of a 64-bit seed.
[[nodiscard]] constexpr PhiloxKey philox_key(std::uint64_t seed) noexcept {
  return {static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32)};
}

namespace simd {

/// Philox4x32-10 on M·W blocks at once, one block per lane, words held as four batches
/// (structure of arrays): on return c[m][w] lane l is word w of that lane's block. The M
/// independent chains are interleaved round by round, which hides the multiply latency.
template <class A, std::size_t M>
REGULA_ALWAYS_INLINE void philox4x32_10(xsimd::batch<std::uint32_t, A> (&c)[M][4],
                                        PhiloxKey k) noexcept {
  using B = xsimd::batch<std::uint32_t, A>;
  for (int r = 0; r < regula::detail::philox_rounds; ++r) {
    const B k0(k[0]);
    const B k1(k[1]);
    for (std::size_t m = 0; m < M; ++m) {
      B hi0, lo0, hi1, lo1;
      mulhilo(c[m][0], regula::detail::philox_m0, hi0, lo0);
      mulhilo(c[m][2], regula::detail::philox_m1, hi1, lo1);
      c[m][0] = hi1 ^ c[m][1] ^ k0;
      c[m][1] = lo1;
      c[m][2] = hi0 ^ c[m][3] ^ k1;
      c[m][3] = lo0;
    }
    k[0] += regula::detail::philox_w0;
    k[1] += regula::detail::philox_w1;
  }
}

/// Philox4x32-10 on W blocks at once (a single chain).
template <class A>
REGULA_ALWAYS_INLINE void philox4x32_10(xsimd::batch<std::uint32_t, A> (&c)[4],
                                        PhiloxKey k) noexcept {
  xsimd::batch<std::uint32_t, A> one[1][4] = {{c[0], c[1], c[2], c[3]}};
  philox4x32_10<A, 1>(one, k);
  for (std::size_t w = 0; w < 4; ++w) c[w] = one[0][w];
}

/// Loads the counters of blocks `first, first + 1, …, first + W − 1` of `subsequence`,
/// carrying into the high word where the low word wraps.
template <class A>
REGULA_ALWAYS_INLINE void philox_counters(xsimd::batch<std::uint32_t, A> (&c)[4],
                                          std::uint64_t first, std::uint64_t subsequence) noexcept {
  using B = xsimd::batch<std::uint32_t, A>;
  constexpr std::size_t W = B::size;
  const auto lo = static_cast<std::uint32_t>(first);
  const auto hi = static_cast<std::uint32_t>(first >> 32);
  if (REGULA_LIKELY(lo <= UINT32_MAX - (W - 1))) {
    alignas(64) std::uint32_t iota[W];
    for (std::size_t i = 0; i < W; ++i) iota[i] = static_cast<std::uint32_t>(i);
    c[0] = B(lo) + B::load_aligned(iota);
    c[1] = B(hi);
  } else {
    alignas(64) std::uint32_t w0[W];
    alignas(64) std::uint32_t w1[W];
    for (std::size_t i = 0; i < W; ++i) {
      const std::uint64_t b = first + i;
      w0[i] = static_cast<std::uint32_t>(b);
      w1[i] = static_cast<std::uint32_t>(b >> 32);
    }
    c[0] = B::load_aligned(w0);
    c[1] = B::load_aligned(w1);
  }
  c[2] = B(static_cast<std::uint32_t>(subsequence));
  c[3] = B(static_cast<std::uint32_t>(subsequence >> 32));
}

}  // namespace simd

}  // namespace regula

#endif  // REGULA_CORE_PHILOX_HPP
