/// @file
/// Raw-pointer kernels of multi-sample dropout's backward: y += x ⊙ m·s with the keep mask m of
/// a dropout call recomputed from its Philox position (kernels/dropout.hpp gives the layout) or
/// read from bits recorded while regenerating the masked input, so the M masked copies of the
/// gradient are summed in one pass each without being written.
#ifndef REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP
#define REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "regula/kernels/dropout.hpp"

namespace regula::kernels {

/// For the call's elements [i0, i0 + n) (x and y pointing at element i0):
/// y += x ⊙ m·scale, m drawn exactly as dropout_segment draws it.
template <class T, class A = default_arch>
void dropout_accumulate_segment(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x,
                                T scale, T* y) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::walk_tiles<T, A, true>(
      i0, n, x, scale, y, false,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept {
        dropout_tiles_keep<K, A>(d, tile, keep);
      },
      [&](std::size_t tile, std::size_t, std::size_t, std::uint64_t keep[2]) noexcept {
        dropout_tile_keep<A>(d, tile, keep);
      });
}

/// y += x ⊙ m·scale for the call's elements [i0, i0 + n) with m read from a mask that
/// dropout_segment recorded (bits i0..i0+n−1 of `mask`).
template <class T, class A = default_arch>
void masked_scale_add_segment(const std::uint64_t* mask, std::size_t i0, std::size_t n, const T* x,
                              T scale, T* y) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::walk_tiles<T, A, true>(
      i0, n, x, scale, y, false,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept {
        for (std::size_t k = 0; k < K; ++k)
          detail::load_keep_bits(mask, (tile + k) * dropout_tile, keep[k]);
      },
      [&](std::size_t tile, std::size_t, std::size_t, std::uint64_t keep[2]) noexcept {
        detail::load_keep_bits(mask, tile * dropout_tile, keep);
      });
}

namespace detail {

/// The n ≤ 64 keep bits of elements i..i+n−1 of a call's mask, in the low bits.
REGULA_ALWAYS_INLINE std::uint64_t mask_bits(const std::uint64_t* mask, std::size_t i,
                                             std::size_t n) noexcept {
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
void masked_transposed_product_column_reference(const std::uint64_t* mask, std::size_t i0,
                                                std::size_t K, std::size_t C, const T* wt,
                                                std::size_t ldw, const T* g, T scale, bool add,
                                                T* y) noexcept {
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
void masked_transposed_product_column(const std::uint64_t* mask, std::size_t i0, std::size_t K,
                                      std::size_t C, const T* wt, std::size_t ldw, const T* g,
                                      T scale, bool add, T* y) noexcept {
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
    for (std::size_t c = 0; c < C; ++c)
      v = xsimd::fma(B::load_unaligned(wt + c * ldw + k), B(g[c]), v);
    finish(k, v);
  }
  if (k < K)
    masked_transposed_product_column_reference(mask, i0 + k, K - k, C, wt + k, ldw, g, scale, add,
                                               y + k);
}

namespace detail {

/// Classes per group of the narrow-head kernels: one accumulator register per class.
inline constexpr std::size_t class_group = 16;

/// Calls f(std::integral_constant<std::size_t, G>{}, c0) for the groups c0..c0+G−1 of at most
/// class_group classes that cover 0..C−1, so that each group's kernel knows G at compile time.
template <class F, std::size_t... G>
REGULA_ALWAYS_INLINE void for_class_groups(std::size_t C, F&& f,
                                           std::index_sequence<G...>) noexcept {
  for (std::size_t c0 = 0; c0 < C; c0 += class_group) {
    const std::size_t gc = C - c0 < class_group ? C - c0 : class_group;
    (void)((gc == G + 1 && (f(std::integral_constant<std::size_t, G + 1>{}, c0), true)) || ...);
  }
}

template <class F>
REGULA_ALWAYS_INLINE void for_class_groups(std::size_t C, F&& f) noexcept {
  for_class_groups(C, std::forward<F>(f), std::make_index_sequence<class_group>{});
}

/// masked_outer_accumulate for the G classes c0..c0+G−1 (G ≤ 16): G accumulators in registers
/// per run of L features, the masked input formed on the fly.
template <std::size_t G, class T, class A>
void masked_outer_accumulate_group(const std::uint64_t* mask, std::size_t first, std::size_t K,
                                   std::size_t n, const T* x, std::size_t ldx, const T* g,
                                   std::size_t ldg, T scale, T* d, std::size_t ldd) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t L = B::size;
  const B s(scale);
  const B zero(T(0));
  std::size_t k = 0;
  for (; k + L <= K; k += L) {
    B acc[G];
    for (std::size_t c = 0; c < G; ++c) acc[c] = B::load_unaligned(d + k + c * ldd);
    for (std::size_t j = 0; j < n; ++j) {
      const B f =
          xsimd::select(simd::from_bits<T, A>(mask_bits(mask, first + j * K + k, L)), s, zero);
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

}  // namespace detail

/// The weight gradient of a narrow head over a block of n columns, with the masked input formed
/// on the fly: d[k + c·ldd] += Σ_j x[k + j·ldx]·(bit first + j·K + k of mask ? scale : 0)·g[c +
/// j·ldg] for k < K, c < C — i.e. ∂L/∂Wᵀ += h̃ Gᵀ, with d = ∂L/∂Wᵀ (K × C), x the block's input
/// columns, g the block's C × n logit gradients and the mask the call's recorded keep bits (element
/// (j, k) of the block is element first + j·K + k of the call).
template <class T>
void masked_outer_accumulate_reference(const std::uint64_t* mask, std::size_t first, std::size_t K,
                                       std::size_t C, std::size_t n, const T* x, std::size_t ldx,
                                       const T* g, std::size_t ldg, T scale, T* d,
                                       std::size_t ldd) noexcept {
  for (std::size_t j = 0; j < n; ++j) {
    for (std::size_t k = 0; k < K; ++k) {
      const T v =
          x[k + j * ldx] * (detail::mask_bits(mask, first + j * K + k, 1) != 0 ? scale : T(0));
      for (std::size_t c = 0; c < C; ++c) d[k + c * ldd] += v * g[c + j * ldg];
    }
  }
}

/// The SIMD twin of masked_outer_accumulate_reference (the same up to rounding), in groups of up
/// to 16 classes.
template <class T, class A = default_arch>
void masked_outer_accumulate(const std::uint64_t* mask, std::size_t first, std::size_t K,
                             std::size_t C, std::size_t n, const T* x, std::size_t ldx, const T* g,
                             std::size_t ldg, T scale, T* d, std::size_t ldd) noexcept {
  detail::for_class_groups(C, [&](auto size, std::size_t c0) noexcept {
    detail::masked_outer_accumulate_group<decltype(size)::value, T, A>(
        mask, first, K, n, x, ldx, g + c0, ldg, scale, d + c0 * ldd, ldd);
  });
}

namespace detail {

/// narrow_product for the G classes c0..c0+G−1 (G ≤ 16), one column at a time: G accumulators
/// over runs of L features, then one horizontal sum each.
template <std::size_t G, class T, class A>
void narrow_product_group(std::size_t K, std::size_t n, const T* x, std::size_t ldx, const T* wt,
                          std::size_t ldw, T* z, std::size_t ldz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t L = B::size;
  for (std::size_t j = 0; j < n; ++j) {
    const T* xj = x + j * ldx;
    B acc[G];
    for (std::size_t c = 0; c < G; ++c) acc[c] = B(T(0));
    std::size_t k = 0;
    for (; k + L <= K; k += L) {
      const B v = B::load_unaligned(xj + k);
      for (std::size_t c = 0; c < G; ++c)
        acc[c] = xsimd::fma(B::load_unaligned(wt + k + c * ldw), v, acc[c]);
    }
    for (std::size_t c = 0; c < G; ++c) {
      T sum = xsimd::hadd(acc[c]);
      for (std::size_t t = k; t < K; ++t) sum += wt[t + c * ldw] * xj[t];
      z[c + j * ldz] = sum;
    }
  }
}

}  // namespace detail

/// The logits of a narrow head over a block of n columns: z[c + j·ldz] = Σ_k wt[k + c·ldw]·x[k +
/// j·ldx] for c < C, j < n, with wt = Wᵀ (K × C) — i.e. z = W x for a head of few classes, where a
/// GEMM's register tile would be mostly empty.
template <class T>
void narrow_product_reference(std::size_t K, std::size_t C, std::size_t n, const T* x,
                              std::size_t ldx, const T* wt, std::size_t ldw, T* z,
                              std::size_t ldz) noexcept {
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
void narrow_product(std::size_t K, std::size_t C, std::size_t n, const T* x, std::size_t ldx,
                    const T* wt, std::size_t ldw, T* z, std::size_t ldz) noexcept {
  detail::for_class_groups(C, [&](auto size, std::size_t c0) noexcept {
    detail::narrow_product_group<decltype(size)::value, T, A>(K, n, x, ldx, wt + c0 * ldw, ldw,
                                                              z + c0, ldz);
  });
}

/// Scalar reference of dropout_accumulate_segment.
template <class T>
void dropout_accumulate_segment_reference(const DropoutDraw& d, std::size_t i0, std::size_t n,
                                          const T* x, T scale, T* y) noexcept {
  for (std::size_t i = i0; i < i0 + n; ++i) {
    std::uint64_t keep[2];
    dropout_tile_keep_reference(d, i / dropout_tile, keep);
    masked_scale_tile_reference<T, true>(x + (i - i0), keep, i % dropout_tile, 1, scale,
                                         y + (i - i0));
  }
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_MULTI_SAMPLE_DROPOUT_HPP
