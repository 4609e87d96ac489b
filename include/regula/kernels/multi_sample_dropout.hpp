/// @file
/// Raw-pointer kernels of multi-sample dropout's backward: y += x ⊙ m·s with the keep mask m of
/// a dropout call recomputed from its Philox position (kernels/dropout.hpp gives the layout) or
/// read from bits recorded while regenerating the masked input, so the M masked copies of the
/// gradient are summed in one pass each without being written.
#ifndef REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP
#define REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/kernels/dropout.hpp"

namespace regula::kernels {

/// y[j] += x[j]·(bit j of keep ? scale : 0) for j0 ≤ j < j0 + n ≤ 128, scalar.
template <class T>
REGULA_ALWAYS_INLINE void masked_scale_add_tile_reference(const T* x, const std::uint64_t keep[2],
                                                          std::size_t j0, std::size_t n, T scale,
                                                          T* y) noexcept {
  for (std::size_t j = j0; j < j0 + n; ++j) {
    const T factor = ((keep[j / 64] >> (j % 64)) & 1U) != 0 ? scale : T(0);
    y[j - j0] += x[j - j0] * factor;
  }
}

/// The SIMD twin of masked_scale_add_tile_reference for one whole tile.
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE void masked_scale_add_tile(const T* x, const std::uint64_t keep[2], T scale,
                                                T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  constexpr std::uint64_t lanes = W == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << W) - 1;
  const B s(scale);
  const B zero(T(0));
  for (std::size_t k = 0; k < dropout_tile; k += W) {
    const std::uint64_t bits = (keep[k / 64] >> (k % 64)) & lanes;
    const B factor = xsimd::select(simd::from_bits<T, A>(bits), s, zero);
    (B::load_unaligned(y + k) + B::load_unaligned(x + k) * factor).store_unaligned(y + k);
  }
}

namespace detail {

/// Walks the call's elements [i0, i0 + n) tile by tile and adds x ⊙ m·scale to y with the keep
/// bits that `keep_tiles(tile, keep)` (four whole tiles) or `keep_tile(tile, keep)` provide.
template <class T, class A, class KeepTiles, class KeepTile>
REGULA_ALWAYS_INLINE void walk_tiles_add(std::size_t i0, std::size_t n, const T* x, T scale, T* y,
                                         KeepTiles&& keep_tiles, KeepTile&& keep_tile) noexcept {
  constexpr std::size_t K = tiles_per_step;
  std::size_t i = i0;
  const std::size_t end = i0 + n;
  while (i < end) {
    const std::size_t tile = i / dropout_tile;
    const std::size_t base = tile * dropout_tile;
    const std::size_t off = i - i0;
    if (i == base && end - i >= K * dropout_tile) {
      std::uint64_t keep[K][2];
      keep_tiles(tile, keep);
      for (std::size_t k = 0; k < K; ++k) {
        masked_scale_add_tile<T, A>(x + off + k * dropout_tile, keep[k], scale, y + off + k * dropout_tile);
      }
      i += K * dropout_tile;
      continue;
    }
    const std::size_t j0 = i - base;
    const std::size_t len = (end - base < dropout_tile ? end - base : dropout_tile) - j0;
    std::uint64_t keep[2];
    keep_tile(tile, keep);
    if (len == dropout_tile) {
      masked_scale_add_tile<T, A>(x + off, keep, scale, y + off);
    } else {
      masked_scale_add_tile_reference(x + off, keep, j0, len, scale, y + off);
    }
    i += len;
  }
}

}  // namespace detail

/// For the call's elements [i0, i0 + n) (x and y pointing at element i0):
/// y += x ⊙ m·scale, m drawn exactly as dropout_segment draws it.
template <class T, class A = default_arch>
void dropout_accumulate_segment(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x,
                                T scale, T* y) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::walk_tiles_add<T, A>(
      i0, n, x, scale, y,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept { dropout_tiles_keep<K, A>(d, tile, keep); },
      [&](std::size_t tile, std::uint64_t keep[2]) noexcept { dropout_tile_keep<A>(d, tile, keep); });
}

/// y += x ⊙ m·scale for the call's elements [i0, i0 + n) with m read from a mask that
/// dropout_segment recorded (bits i0..i0+n−1 of `mask`).
template <class T, class A = default_arch>
void masked_scale_add_segment(const std::uint64_t* mask, std::size_t i0, std::size_t n, const T* x,
                              T scale, T* y) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::walk_tiles_add<T, A>(
      i0, n, x, scale, y,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept {
        for (std::size_t k = 0; k < K; ++k) detail::load_keep_bits(mask, (tile + k) * dropout_tile, keep[k]);
      },
      [&](std::size_t tile, std::uint64_t keep[2]) noexcept { detail::load_keep_bits(mask, tile * dropout_tile, keep); });
}

/// Scalar reference of dropout_accumulate_segment.
template <class T>
void dropout_accumulate_segment_reference(const DropoutDraw& d, std::size_t i0, std::size_t n,
                                          const T* x, T scale, T* y) noexcept {
  for (std::size_t i = i0; i < i0 + n; ++i) {
    std::uint64_t keep[2];
    dropout_tile_keep_reference(d, i / dropout_tile, keep);
    masked_scale_add_tile_reference(x + (i - i0), keep, i % dropout_tile, 1, scale, y + (i - i0));
  }
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP
