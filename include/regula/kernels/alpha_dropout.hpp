/// @file
/// Raw-pointer kernel of alpha dropout: y = a·(x ⊙ m) + (m ? b : a·α′ + b), with the keep mask m
/// drawn exactly as kernels/dropout.hpp draws it.
#ifndef REGULA_KERNELS_ALPHA_DROPOUT_HPP
#define REGULA_KERNELS_ALPHA_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/simd.hpp"
#include "regula/kernels/dropout.hpp"

namespace regula::kernels {

namespace detail {

/// One element: a·x + b if kept, a·(0·x) + dropped_value if not. a·x is rounded before b is
/// added (as ATen's separate multiply and add), never fused, so every instruction set gives the
/// same bits; the dropped branch is exact either way (a·(0·x) is ±0 or NaN).
template <class T>
REGULA_ALWAYS_INLINE T alpha_value(bool kept, T x, T a, T b, T dropped_value) noexcept {
  return kept ? simd::opaque(a * x) + b : a * (x * T(0)) + dropped_value;
}

/// alpha_value over one whole tile with the tile's keep bits, SIMD. y may equal x.
template <class T, class A>
REGULA_ALWAYS_INLINE void alpha_tile(const T* x, const std::uint64_t keep[2], T a, T b,
                                     T dropped_value, T* y) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  constexpr std::uint64_t lanes = W == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << W) - 1;
  const B va(a), vb(b), vd(dropped_value), zero(T(0));
  for (std::size_t k = 0; k < dropout_tile; k += W) {
    const std::uint64_t bits = (keep[k / 64] >> (k % 64)) & lanes;
    const B xv = B::load_unaligned(x + k);
    const B kept = simd::opaque(va * xv) + vb;
    const B dropped = va * (xv * zero) + vd;
    xsimd::select(simd::from_bits<T, A>(bits), kept, dropped).store_unaligned(y + k);
  }
}

}  // namespace detail

/// For the call's elements [i0, i0 + n) (x and y pointing at element i0; y may equal x):
/// kept elements give a·x + b, dropped ones a·(0·x) + dropped_value (NaN stays NaN, as in ATen).
/// The mask is Dropout's (kernels/dropout.hpp); a·x is rounded before the addition on every
/// instruction set, so the values are bitwise identical to alpha_dropout_segment_reference.
template <class T, class A = default_arch>
void alpha_dropout_segment(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x, T a,
                           T b, T dropped_value, T* y) noexcept {
  constexpr std::size_t K = detail::tiles_per_step;
  detail::for_each_tile<T>(
      i0, n, x,
      [&](std::size_t tile, std::uint64_t(&keep)[K][2]) noexcept {
        dropout_tiles_keep<K, A>(d, tile, keep);
      },
      [&](std::size_t tile, std::size_t, std::size_t, std::uint64_t keep[2]) noexcept {
        dropout_tile_keep<A>(d, tile, keep);
      },
      [&](std::size_t off, const std::uint64_t(&keep)[K][2]) noexcept {
        for (std::size_t k = 0; k < K; ++k) {
          const std::size_t o = off + k * dropout_tile;
          detail::alpha_tile<T, A>(x + o, keep[k], a, b, dropped_value, y + o);
        }
      },
      [&](std::size_t off, std::size_t j0, std::size_t len, const std::uint64_t keep[2]) noexcept {
        if (len == dropout_tile) {
          detail::alpha_tile<T, A>(x + off, keep, a, b, dropped_value, y + off);
          return;
        }
        for (std::size_t j = j0; j < j0 + len; ++j) {
          const bool k = ((keep[j / 64] >> (j % 64)) & 1U) != 0;
          y[off + j - j0] = detail::alpha_value(k, x[off + j - j0], a, b, dropped_value);
        }
      });
}

/// Scalar reference of alpha_dropout_segment (mask from the scalar Philox). The product goes
/// through a volatile, so it is rounded whatever the compiler's contraction flags.
template <class T>
void alpha_dropout_segment_reference(const DropoutDraw& d, std::size_t i0, std::size_t n,
                                     const T* x, T a, T b, T dropped_value, T* y) noexcept {
  for (std::size_t i = i0; i < i0 + n; ++i) {
    std::uint64_t keep[2];
    dropout_tile_keep_reference(d, i / dropout_tile, keep);
    const std::size_t j = i % dropout_tile;
    const bool k = ((keep[j / 64] >> (j % 64)) & 1U) != 0;
    const T xv = x[i - i0];
    volatile T ax = a * xv;
    y[i - i0] = k ? ax + b : a * (xv * T(0)) + dropped_value;
  }
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_ALPHA_DROPOUT_HPP
