/// @file
/// Raw-pointer kernel of the Philox4x32-10 generator (core/philox.hpp): consecutive blocks of
/// one subsequence written to memory, W at a time through xsimd, with its scalar reference twin.
#ifndef REGULA_KERNELS_PHILOX_HPP
#define REGULA_KERNELS_PHILOX_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/philox.hpp"
#include "regula/core/simd.hpp"

namespace regula {

namespace kernels {

/// Writes `n` consecutive blocks `first, …, first + n − 1` of `subsequence` under `key` to
/// `out` (4·n words, block-major). Scalar reference.
inline void philox_blocks_reference(PhiloxKey key, std::uint64_t subsequence, std::uint64_t first,
                                    std::size_t n, std::uint32_t* out) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const PhiloxBlock b = philox4x32_10(philox_counter(first + i, subsequence), key);
    for (std::size_t w = 0; w < 4; ++w) out[4 * i + w] = b[w];
  }
}

/// Same output as philox_blocks_reference, W blocks at a time through xsimd.
template <class A = default_arch>
void philox_blocks(PhiloxKey key, std::uint64_t subsequence, std::uint64_t first, std::size_t n,
                   std::uint32_t* out) noexcept {
  using B = xsimd::batch<std::uint32_t, A>;
  constexpr std::size_t W = B::size;
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    B c[4];
    simd::philox_counters(c, first + i, subsequence);
    simd::philox4x32_10(c, key);
    alignas(64) std::uint32_t words[4][W];
    for (std::size_t w = 0; w < 4; ++w) c[w].store_aligned(words[w]);
    for (std::size_t l = 0; l < W; ++l) {
      for (std::size_t w = 0; w < 4; ++w) out[4 * (i + l) + w] = words[w][l];
    }
  }
  philox_blocks_reference(key, subsequence, first + i, n - i, out + 4 * i);
}

}  // namespace kernels
}  // namespace regula

#endif  // REGULA_KERNELS_PHILOX_HPP
