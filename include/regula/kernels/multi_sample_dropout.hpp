/// @file
/// Raw-pointer kernels of multi-sample dropout's backward: y += x ⊙ m·s with the keep mask m of
/// a dropout call recomputed from its Philox position (kernels/dropout.hpp gives the layout) or
/// read from bits recorded while regenerating the masked input, so the M masked copies of the
/// gradient are summed in one pass each without being written.
#ifndef REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP
#define REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP

#include <cstddef>
#include <cstdint>
#include <utility>

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

namespace detail {

/// The n ≤ 64 keep bits of elements i..i+n−1 of a call's mask, in the low bits.
REGULA_ALWAYS_INLINE std::uint64_t mask_bits(const std::uint64_t* mask, std::size_t i, std::size_t n) noexcept {
  const std::size_t sh = i % 64;
  std::uint64_t v = mask[i / 64] >> sh;
  if (sh != 0 && sh + n > 64) v |= mask[i / 64 + 1] << (64 - sh);
  return n == 64 ? v : v & ((std::uint64_t{1} << n) - 1);
}

}  // namespace detail

/// One column of a narrow head's masked input gradient, without forming WᵀG:
/// y[k] (=|+=) (Σ_c wt[k + c·ldw]·g[c])·(bit i0 + k of mask ? scale : 0) for k < K, where wt is Wᵀ
/// (K × C, column stride ldw), g the column's C logit gradients and the mask the call's recorded
/// keep bits. `add` accumulates into y instead of writing it.
template <class T>
void masked_transposed_product_column_reference(const std::uint64_t* mask, std::size_t i0, std::size_t K,
                                                std::size_t C, const T* wt, std::size_t ldw, const T* g,
                                                T scale, bool add, T* y) noexcept {
  for (std::size_t k = 0; k < K; ++k) {
    T v = T(0);
    for (std::size_t c = 0; c < C; ++c) v += wt[k + c * ldw] * g[c];
    const T factor = detail::mask_bits(mask, i0 + k, 1) != 0 ? scale : T(0);
    y[k] = add ? y[k] + v * factor : v * factor;
  }
}

/// The SIMD twin of masked_transposed_product_column_reference (the same up to the rounding of
/// the fused multiply-adds).
template <class T, class A = default_arch>
void masked_transposed_product_column(const std::uint64_t* mask, std::size_t i0, std::size_t K, std::size_t C,
                                      const T* wt, std::size_t ldw, const T* g, T scale, bool add,
                                      T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t L = B::size;
  constexpr std::size_t U = 4;  // independent accumulators: the C-long FMA chains overlap
  const B s(scale);
  const B zero(T(0));
  auto finish = [&](std::size_t k, const B& v) noexcept {
    const B f = xsimd::select(simd::from_bits<T, A>(detail::mask_bits(mask, i0 + k, L)), s, zero);
    const B out = add ? xsimd::fma(v, f, B::load_unaligned(y + k)) : v * f;
    out.store_unaligned(y + k);
  };
  std::size_t k = 0;
  for (; k + U * L <= K; k += U * L) {
    B v[U];
    for (std::size_t u = 0; u < U; ++u) v[u] = zero;
    for (std::size_t c = 0; c < C; ++c) {
      const B gc(g[c]);
      const T* w = wt + c * ldw + k;
      for (std::size_t u = 0; u < U; ++u) v[u] = xsimd::fma(B::load_unaligned(w + u * L), gc, v[u]);
    }
    for (std::size_t u = 0; u < U; ++u) finish(k + u * L, v[u]);
  }
  for (; k + L <= K; k += L) {
    B v = zero;
    for (std::size_t c = 0; c < C; ++c) v = xsimd::fma(B::load_unaligned(wt + c * ldw + k), B(g[c]), v);
    finish(k, v);
  }
  if (k < K) masked_transposed_product_column_reference(mask, i0 + k, K - k, C, wt + k, ldw, g, scale, add, y + k);
}

namespace detail {

/// masked_outer_accumulate for the G classes c0..c0+G−1 (G ≤ 16): G accumulators in registers
/// per run of L features, the masked input formed on the fly.
template <std::size_t G, class T, class A>
void masked_outer_accumulate_group(const std::uint64_t* mask, std::size_t first, std::size_t K, std::size_t n,
                                   const T* x, std::size_t ldx, const T* g, std::size_t ldg, T scale, T* d,
                                   std::size_t ldd) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t L = B::size;
  const B s(scale);
  const B zero(T(0));
  std::size_t k = 0;
  for (; k + L <= K; k += L) {
    B acc[G];
    for (std::size_t c = 0; c < G; ++c) acc[c] = B::load_unaligned(d + k + c * ldd);
    for (std::size_t j = 0; j < n; ++j) {
      const B f = xsimd::select(simd::from_bits<T, A>(mask_bits(mask, first + j * K + k, L)), s, zero);
      const B v = B::load_unaligned(x + k + j * ldx) * f;
      const T* gj = g + j * ldg;
      for (std::size_t c = 0; c < G; ++c) acc[c] = xsimd::fma(v, B(gj[c]), acc[c]);
    }
    for (std::size_t c = 0; c < G; ++c) acc[c].store_unaligned(d + k + c * ldd);
  }
  for (; k < K; ++k) {
    for (std::size_t j = 0; j < n; ++j) {
      const T v = x[k + j * ldx] * (mask_bits(mask, first + j * K + k, 1) != 0 ? scale : T(0));
      for (std::size_t c = 0; c < G; ++c) d[k + c * ldd] += v * g[c + j * ldg];
    }
  }
}

template <class T, class A, std::size_t... G>
void masked_outer_accumulate_dispatch(std::size_t groups, std::index_sequence<G...>, const std::uint64_t* mask,
                                      std::size_t first, std::size_t K, std::size_t n, const T* x, std::size_t ldx,
                                      const T* g, std::size_t ldg, T scale, T* d, std::size_t ldd) noexcept {
  using Fn = void (*)(const std::uint64_t*, std::size_t, std::size_t, std::size_t, const T*, std::size_t, const T*,
                      std::size_t, T, T*, std::size_t) noexcept;
  static constexpr Fn table[] = {&masked_outer_accumulate_group<G + 1, T, A>...};
  table[groups - 1](mask, first, K, n, x, ldx, g, ldg, scale, d, ldd);
}

}  // namespace detail

/// The weight gradient of a narrow head over a block of n columns, with the masked input formed
/// on the fly: d[k + c·ldd] += Σ_j x[k + j·ldx]·(bit first + j·K + k of mask ? scale : 0)·g[c + j·ldg]
/// for k < K, c < C — i.e. ∂L/∂Wᵀ += h̃ Gᵀ, with d = ∂L/∂Wᵀ (K × C), x the block's input columns,
/// g the block's C × n logit gradients and the mask the call's recorded keep bits (element
/// (j, k) of the block is element first + j·K + k of the call).
template <class T>
void masked_outer_accumulate_reference(const std::uint64_t* mask, std::size_t first, std::size_t K, std::size_t C,
                                       std::size_t n, const T* x, std::size_t ldx, const T* g, std::size_t ldg,
                                       T scale, T* d, std::size_t ldd) noexcept {
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t k = 0; k < K; ++k) {
      const T v = x[k + j * ldx] * (detail::mask_bits(mask, first + j * K + k, 1) != 0 ? scale : T(0));
      for (std::size_t c = 0; c < C; ++c) d[k + c * ldd] += v * g[c + j * ldg];
    }
  }
}

/// The SIMD twin of masked_outer_accumulate_reference (the same up to rounding), in groups of up
/// to 16 classes.
template <class T, class A = default_arch>
void masked_outer_accumulate(const std::uint64_t* mask, std::size_t first, std::size_t K, std::size_t C,
                             std::size_t n, const T* x, std::size_t ldx, const T* g, std::size_t ldg, T scale, T* d,
                             std::size_t ldd) noexcept {
  constexpr std::size_t group = 16;
  for (std::size_t c0 = 0; c0 < C; c0 += group) {
    const std::size_t gc = C - c0 < group ? C - c0 : group;
    detail::masked_outer_accumulate_dispatch<T, A>(gc, std::make_index_sequence<group>{}, mask, first, K, n, x, ldx,
                                                   g + c0, ldg, scale, d + c0 * ldd, ldd);
  }
}

namespace detail {

/// narrow_product for the G classes c0..c0+G−1 (G ≤ 16), one column at a time: G accumulators
/// over runs of L features, then one horizontal sum each.
template <std::size_t G, class T, class A>
void narrow_product_group(std::size_t K, std::size_t n, const T* x, std::size_t ldx, const T* wt, std::size_t ldw,
                          T* z, std::size_t ldz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t L = B::size;
  for (std::size_t j = 0; j < n; ++j) {
    const T* xj = x + j * ldx;
    B acc[G];
    for (std::size_t c = 0; c < G; ++c) acc[c] = B(T(0));
    std::size_t k = 0;
    for (; k + L <= K; k += L) {
      const B v = B::load_unaligned(xj + k);
      for (std::size_t c = 0; c < G; ++c) acc[c] = xsimd::fma(B::load_unaligned(wt + k + c * ldw), v, acc[c]);
    }
    for (std::size_t c = 0; c < G; ++c) {
      T sum = xsimd::hadd(acc[c]);
      for (std::size_t t = k; t < K; ++t) sum += wt[t + c * ldw] * xj[t];
      z[c + j * ldz] = sum;
    }
  }
}

template <class T, class A, std::size_t... G>
void narrow_product_dispatch(std::size_t groups, std::index_sequence<G...>, std::size_t K, std::size_t n, const T* x,
                             std::size_t ldx, const T* wt, std::size_t ldw, T* z, std::size_t ldz) noexcept {
  using Fn = void (*)(std::size_t, std::size_t, const T*, std::size_t, const T*, std::size_t, T*, std::size_t) noexcept;
  static constexpr Fn table[] = {&narrow_product_group<G + 1, T, A>...};
  table[groups - 1](K, n, x, ldx, wt, ldw, z, ldz);
}

}  // namespace detail

/// The logits of a narrow head over a block of n columns: z[c + j·ldz] = Σ_k wt[k + c·ldw]·x[k + j·ldx]
/// for c < C, j < n, with wt = Wᵀ (K × C) — i.e. z = W x for a head of few classes, where a GEMM's
/// register tile would be mostly empty.
template <class T>
void narrow_product_reference(std::size_t K, std::size_t C, std::size_t n, const T* x, std::size_t ldx, const T* wt,
                              std::size_t ldw, T* z, std::size_t ldz) noexcept {
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t c = 0; c < C; ++c) {
      T sum = T(0);
      for (std::size_t k = 0; k < K; ++k) sum += wt[k + c * ldw] * x[k + j * ldx];
      z[c + j * ldz] = sum;
    }
  }
}

/// The SIMD twin of narrow_product_reference (the same up to the order of the sums), in groups
/// of up to 16 classes.
template <class T, class A = default_arch>
void narrow_product(std::size_t K, std::size_t C, std::size_t n, const T* x, std::size_t ldx, const T* wt,
                    std::size_t ldw, T* z, std::size_t ldz) noexcept {
  constexpr std::size_t group = 16;
  for (std::size_t c0 = 0; c0 < C; c0 += group) {
    const std::size_t gc = C - c0 < group ? C - c0 : group;
    detail::narrow_product_dispatch<T, A>(gc, std::make_index_sequence<group>{}, K, n, x, ldx, wt + c0 * ldw, ldw,
                                          z + c0, ldz);
  }
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
