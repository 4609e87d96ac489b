/// @file
/// Raw-pointer dropout kernels: keep masks drawn from Philox4x32-10 and the masked scale
/// y = x ⊙ m·s, each with a scalar reference twin that gives identical bits.
///
/// **Where element i's random bits come from.** Elements are numbered 0, 1, … in the order of
/// the call (column-major: i = col·rows + row). Element i uses 16 bits: half h = ⌊i/64⌋ mod 2
/// (h = 0 the low 16 bits) of word w = ⌊i/16⌋ mod 4 of the Philox block
/// `first_block + 16·⌊i/128⌋ + (i mod 16)`. So 128 elements (a *tile*) use 16 consecutive
/// blocks, and one SIMD lane holds one block at any width up to 16 lanes: no transposes, and
/// the same bits at every width. Element i is kept when its 16-bit value u satisfies
/// u < keep_threshold, so the keep probability is keep_threshold / 2¹⁶ exactly.
///
/// Keep masks are bit fields in call order: bit i mod 64 of word ⌊i/64⌋ is element i.
#ifndef REGULA_KERNELS_DROPOUT_HPP
#define REGULA_KERNELS_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/philox.hpp"
#include "regula/core/simd.hpp"

namespace regula::kernels {

/// Outputs at least this large (bytes, per call) are written with streaming stores when they do
/// not alias the input: far larger than the caches, they would only evict useful lines, and the
/// streaming store saves reading each output line before writing it (a third of the traffic).
inline constexpr std::size_t streaming_bytes = std::size_t{16} << 20;

/// Elements per tile, and Philox blocks per tile.
inline constexpr std::size_t dropout_tile = 128;
/// Philox blocks per tile of the dropout kernels: the unit of their parallel and SIMD split, whose
/// mask bits do not depend on either.
inline constexpr std::size_t dropout_tile_blocks = 16;
/// Random bits per element; the keep probability is quantized to multiples of 2⁻¹⁶.
inline constexpr int dropout_bits = 16;

/// Where a dropout call's bits come from: Philox key, subsequence, first block of tile 0,
/// and the keep threshold in [0, 2¹⁶].
struct DropoutDraw {
  /// The Philox key of the stream's seed.
  PhiloxKey key;
  /// The stream's subsequence.
  std::uint64_t subsequence;
  /// The first Philox block of this draw.
  std::uint64_t first_block;
  /// The keep threshold in [0, 2¹⁶]: an element is kept when its 16-bit draw is below it.
  std::uint32_t keep_threshold;
};

/// Philox blocks used by a call on n elements: 16 per started tile.
[[nodiscard]] constexpr std::uint64_t dropout_blocks(std::size_t n) noexcept {
  const std::uint64_t tiles = (n + dropout_tile - 1) / dropout_tile;
  return tiles * dropout_tile_blocks;
}

/// Words of a keep mask for n elements: two per started tile.
[[nodiscard]] constexpr std::size_t dropout_mask_words(std::size_t n) noexcept {
  return 2 * ((n + dropout_tile - 1) / dropout_tile);
}

namespace detail {}  // namespace detail

/// Scalar reference of dropout_tile_keep.
inline void dropout_tile_keep_reference(const DropoutDraw& d, std::uint64_t tile,
                                        std::uint64_t keep[2]) noexcept {
  keep[0] = keep[1] = 0;
  const std::uint64_t first = d.first_block + tile * dropout_tile_blocks;
  PhiloxBlock blocks[dropout_tile_blocks];
  for (std::size_t l = 0; l < dropout_tile_blocks; ++l) {
    blocks[l] = philox4x32_10(philox_counter(first + l, d.subsequence), d.key);
  }
  for (std::size_t j = 0; j < dropout_tile; ++j) {
    const std::uint32_t word = blocks[j % 16][(j / 16) % 4];
    const std::uint32_t u = (j / 64) == 0 ? (word & 0xFFFFU) : (word >> 16);
    keep[j / 64] |= std::uint64_t{u < d.keep_threshold} << (j % 64);
  }
}

/// The keep bits of the K consecutive tiles tile0, …, tile0 + K − 1: keep[k][0] for the
/// elements 0..63 of tile tile0 + k, keep[k][1] for 64..127. The K·16/W Philox chains run
/// interleaved.
template <std::size_t K, class A = default_arch>
REGULA_ALWAYS_INLINE void dropout_tiles_keep(const DropoutDraw& d, std::uint64_t tile0,
                                             std::uint64_t (&keep)[K][2]) noexcept {
  using B = xsimd::batch<std::uint32_t, A>;
  using IB = xsimd::batch<std::int32_t, A>;
  constexpr std::size_t W = B::size;
  static_assert(dropout_tile_blocks % W == 0, "SIMD width must divide 16 lanes");
  constexpr std::size_t per_tile = dropout_tile_blocks / W;
  constexpr std::size_t M = K * per_tile;
  const std::uint64_t first = d.first_block + tile0 * dropout_tile_blocks;
  B c[M][4];
  for (std::size_t m = 0; m < M; ++m) simd::philox_counters(c[m], first + m * W, d.subsequence);
  simd::philox4x32_10<A, M>(c, d.key);
  const IB threshold(static_cast<std::int32_t>(d.keep_threshold));
  const B low16(0xFFFFU);
  for (std::size_t k = 0; k < K; ++k) {
    std::uint64_t k0 = 0;
    std::uint64_t k1 = 0;
    for (std::size_t n = 0; n < per_tile; ++n) {
      for (std::size_t w = 0; w < 4; ++w) {
        const B word = c[k * per_tile + n][w];
        // Both halves are below 2¹⁶, so a signed compare is exact (and native on every ISA).
        const IB lo = xsimd::bitwise_cast<IB>(word & low16);
        const IB hi = xsimd::bitwise_cast<IB>(word >> 16);
        const std::size_t pos = w * 16 + n * W;
        k0 |= simd::to_bits(lo < threshold) << pos;
        k1 |= simd::to_bits(hi < threshold) << pos;
      }
    }
    keep[k][0] = k0;
    keep[k][1] = k1;
  }
}

/// The 128 keep bits of tile `tile`: keep[0] for its elements 0..63, keep[1] for 64..127.
template <class A = default_arch>
REGULA_ALWAYS_INLINE void dropout_tile_keep(const DropoutDraw& d, std::uint64_t tile,
                                            std::uint64_t keep[2]) noexcept {
  std::uint64_t k[1][2];
  dropout_tiles_keep<1, A>(d, tile, k);
  keep[0] = k[0][0];
  keep[1] = k[0][1];
}

/// y[j] = x[j]·(bit j of keep ? scale : 0) for j < n ≤ 128, scalar. Multiplying by the factor
/// (rather than writing 0) keeps PyTorch's semantics: NaN or ±inf in a dropped element gives NaN.
/// With `Add`, y[j] += x[j]·factor instead.
template <class T, bool Add = false>
REGULA_ALWAYS_INLINE void masked_scale_tile_reference(const T* x, const std::uint64_t keep[2],
                                                      std::size_t j0, std::size_t n, T scale,
                                                      T* y) noexcept {
  for (std::size_t j = j0; j < j0 + n; ++j) {
    const T factor = ((keep[j / 64] >> (j % 64)) & 1U) != 0 ? scale : T(0);
    if constexpr (Add) {
      y[j - j0] += x[j - j0] * factor;
    } else {
      y[j - j0] = x[j - j0] * factor;
    }
  }
}

/// The SIMD twin of masked_scale_tile_reference for one whole tile (j0 = 0, n = 128). With
/// `Streaming`, y must be aligned to the batch size and is written with non-temporal stores;
/// with `Add` (not streaming), x ⊙ m·scale is added to y.
template <class T, class A = default_arch, bool Streaming = false, bool Add = false>
REGULA_ALWAYS_INLINE void masked_scale_tile(const T* x, const std::uint64_t keep[2], T scale,
                                            T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  constexpr std::uint64_t lanes = W == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << W) - 1;
  const B s(scale);
  const B zero(T(0));
  for (std::size_t k = 0; k < dropout_tile; k += W) {
    const std::uint64_t bits = (keep[k / 64] >> (k % 64)) & lanes;
    const B factor = xsimd::select(simd::from_bits<T, A>(bits), s, zero);
    B out = B::load_unaligned(x + k) * factor;
    if constexpr (Add) out = B::load_unaligned(y + k) + out;
    if constexpr (Streaming) {
      simd::store_stream(y + k, out);
    } else {
      out.store_unaligned(y + k);
    }
  }
}

namespace detail {

/// Stores keep bits j0..j0+n−1 of a tile into the call's mask at element offset `tile_base`.
inline void store_keep_bits(std::uint64_t* mask, std::size_t tile_base, const std::uint64_t keep[2],
                            std::size_t j0, std::size_t n) noexcept {
  std::uint64_t* words = mask + tile_base / 64;
  if (j0 == 0 && n == dropout_tile) {
    words[0] = keep[0];
    words[1] = keep[1];
    return;
  }
  for (std::size_t h = 0; h < 2; ++h) {
    const std::size_t lo = j0 > h * 64 ? j0 - h * 64 : 0;
    const std::size_t hi_end = j0 + n < (h + 1) * 64 ? j0 + n - h * 64 : 64;
    if (j0 + n <= h * 64 || lo >= 64 || hi_end <= lo) continue;
    const std::size_t len = hi_end - lo;
    const std::uint64_t sel = (len == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << len) - 1))
                              << lo;
    words[h] = (words[h] & ~sel) | (keep[h] & sel);
  }
}

/// Reads the keep bits of a tile from a call's mask.
inline void load_keep_bits(const std::uint64_t* mask, std::size_t tile_base,
                           std::uint64_t keep[2]) noexcept {
  keep[0] = mask[tile_base / 64];
  keep[1] = mask[tile_base / 64 + 1];
}

}  // namespace detail

namespace detail {

/// Tiles per step on the fast path: four independent Philox chains in flight.
inline constexpr std::size_t tiles_per_step = 4;

/// Walks the call's elements [i0, i0 + n) tile by tile, x pointing at element i0:
/// `steps(off, keep)` takes tiles_per_step whole tiles starting at element offset `off` (from
/// x), their keep bits from `keep_tiles(tile, keep)`; `part(off, j0, len, keep)` takes elements
/// j0..j0+len−1 of one tile (len may be a whole tile), its bits from `keep_tile(tile, j0, len,
/// keep)`. The input is prefetched a few steps ahead. Every masked kernel (dropout, its
/// accumulating and stored-mask forms, alpha dropout) is this walk with its own tile operation.
template <class T, class KeepTiles, class KeepTile, class Steps, class Part>
REGULA_ALWAYS_INLINE void for_each_tile(std::size_t i0, std::size_t n, const T* x,
                                        KeepTiles&& keep_tiles, KeepTile&& keep_tile, Steps&& steps,
                                        Part&& part) noexcept {
  constexpr std::size_t K = tiles_per_step;
  std::size_t i = i0;
  const std::size_t end = i0 + n;
  while (i < end) {
    const std::size_t tile = i / dropout_tile;
    const std::size_t base = tile * dropout_tile;
    const std::size_t off = i - i0;
    if (i == base && end - i >= K * dropout_tile) {
      std::uint64_t keep[K][2];
#if defined(__GNUC__) || defined(__clang__)
      // Ask for the input a few steps ahead: the Philox work between loads is long enough that
      // the hardware prefetcher alone does not keep the memory pipe full.
      for (std::size_t b = 0; b < K * dropout_tile * sizeof(T); b += 64) {
        __builtin_prefetch(reinterpret_cast<const char*>(x + off + 4 * K * dropout_tile) + b, 0, 0);
      }
#endif
      keep_tiles(tile, keep);
      steps(off, keep);
      i += K * dropout_tile;
      continue;
    }
    const std::size_t j0 = i - base;
    const std::size_t len = (end - base < dropout_tile ? end - base : dropout_tile) - j0;
    std::uint64_t keep[2];
    keep_tile(tile, j0, len, keep);
    part(off, j0, len, keep);
    i += len;
  }
}

/// for_each_tile applying y = x ⊙ m·scale (y += x ⊙ m·scale with `Add`) to the call's elements
/// [i0, i0 + n), y pointing at element i0 too.
template <class T, class A, bool Add = false, class KeepTiles, class KeepTile>
REGULA_ALWAYS_INLINE void walk_tiles(std::size_t i0, std::size_t n, const T* x, T scale, T* y,
                                     bool streaming, KeepTiles&& keep_tiles,
                                     KeepTile&& keep_tile) noexcept {
  constexpr std::size_t K = tiles_per_step;
  for_each_tile<T>(
      i0, n, x, keep_tiles, keep_tile,
      [&](std::size_t off, const std::uint64_t(&keep)[K][2]) noexcept {
        constexpr std::size_t align = sizeof(xsimd::batch<T, A>);
        const bool aligned = reinterpret_cast<std::uintptr_t>(y + off) % align == 0;
        for (std::size_t k = 0; k < K; ++k) {
          const std::size_t o = off + k * dropout_tile;
          if constexpr (Add) {
            masked_scale_tile<T, A, false, true>(x + o, keep[k], scale, y + o);
          } else if (streaming && aligned) {
            masked_scale_tile<T, A, true>(x + o, keep[k], scale, y + o);
          } else {
            masked_scale_tile<T, A>(x + o, keep[k], scale, y + o);
          }
        }
      },
      [&](std::size_t off, std::size_t j0, std::size_t len, const std::uint64_t keep[2]) noexcept {
        if (len == dropout_tile) {
          masked_scale_tile<T, A, false, Add>(x + off, keep, scale, y + off);
        } else {
          masked_scale_tile_reference<T, Add>(x + off, keep, j0, len, scale, y + off);
        }
      });
  if (streaming) simd::store_fence();
}

}  // namespace detail

/// Dropout of the call's elements [i0, i0 + n), x and y pointing at element i0 (y may equal x):
/// y = x ⊙ m·scale with m drawn as described at the top of this file. When `record` is not null
/// the keep bits of these elements are also written to it (bits i0..i0+n−1 of the call's mask).
///
/// `streaming` asks for non-temporal stores of whole, aligned tiles (see streaming_bytes); the
/// values written are the same.
template <class T, class A = default_arch>
void dropout_segment(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x, T scale, T* y,
                     std::uint64_t* record, bool streaming = false) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::walk_tiles<T, A>(
      i0, n, x, scale, y, streaming,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept {
        dropout_tiles_keep<K, A>(d, tile, keep);
        if (record == nullptr) return;
        for (std::size_t k = 0; k < K; ++k) {
          detail::store_keep_bits(record, (tile + k) * dropout_tile, keep[k], 0, dropout_tile);
        }
      },
      [&](std::size_t tile, std::size_t j0, std::size_t len, std::uint64_t keep[2]) noexcept {
        dropout_tile_keep<A>(d, tile, keep);
        if (record != nullptr) detail::store_keep_bits(record, tile * dropout_tile, keep, j0, len);
      });
}

/// y = x ⊙ m·scale for the call's elements [i0, i0 + n) with m read from a mask that
/// dropout_segment recorded: the stored-mask backward, bit-identical to recomputing.
template <class T, class A = default_arch>
void masked_scale_segment(const std::uint64_t* mask, std::size_t i0, std::size_t n, const T* x,
                          T scale, T* y, bool streaming = false) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::walk_tiles<T, A>(
      i0, n, x, scale, y, streaming,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept {
        for (std::size_t k = 0; k < K; ++k)
          detail::load_keep_bits(mask, (tile + k) * dropout_tile, keep[k]);
      },
      [&](std::size_t tile, std::size_t, std::size_t, std::uint64_t keep[2]) noexcept {
        detail::load_keep_bits(mask, tile * dropout_tile, keep);
      });
}

/// Scalar reference of dropout_segment (drawing variant), element by element.
template <class T>
void dropout_segment_reference(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x,
                               T scale, T* y, std::uint64_t* mask) noexcept {
  for (std::size_t i = i0; i < i0 + n; ++i) {
    std::uint64_t keep[2];
    dropout_tile_keep_reference(d, i / dropout_tile, keep);
    const std::size_t j = i % dropout_tile;
    masked_scale_tile_reference(x + (i - i0), keep, j, 1, scale, y + (i - i0));
    if (mask != nullptr) detail::store_keep_bits(mask, i - j, keep, j, 1);
  }
}

/// y[j] = r[j] + x[j]·f for j < n, the product rounded to T before the sum (two roundings on
/// every instruction set, never a fused multiply-add), so the result has the same bits on SSE2,
/// AVX2 and AVX-512. y may equal x or r.
template <class T, class A = default_arch>
void scale_add(const T* x, std::size_t n, T f, const T* r, T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B vf(f);
  std::size_t j = 0;
  for (; j + W <= n; j += W) {
    (B::load_unaligned(r + j) + simd::opaque(B::load_unaligned(x + j) * vf)).store_unaligned(y + j);
  }
  for (; j < n; ++j) y[j] = r[j] + simd::opaque(x[j] * f);
}

/// Scalar reference of scale_add.
template <class T>
void scale_add_reference(const T* x, std::size_t n, T f, const T* r, T* y) noexcept {
  for (std::size_t j = 0; j < n; ++j) {
    volatile T p = x[j] * f;  // a store: the product is rounded whatever the compiler's flags
    y[j] = r[j] + p;
  }
}

/// Keep bit of element e of a dropout draw, with a one-tile cache (`tile` = ~0 initially): the
/// per-element mask reader of the structured layers (ChannelDropout, DropPath, AlphaDropout's
/// tests).
struct KeepBits {
  /// The draw the mask comes from.
  DropoutDraw draw;
  /// The tile whose keep bits are cached (none yet).
  std::uint64_t tile = ~std::uint64_t{0};
  /// The cached keep bits of that tile.
  std::uint64_t keep[2] = {0, 0};
  /// Whether element e is kept.
  [[nodiscard]] bool operator()(std::uint64_t e) noexcept {
    const std::uint64_t t = e / dropout_tile;
    if (t != tile) {
      dropout_tile_keep(draw, t, keep);
      tile = t;
    }
    const std::uint64_t j = e % dropout_tile;
    return ((keep[j / 64] >> (j % 64)) & 1U) != 0;
  }
};

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_DROPOUT_HPP
