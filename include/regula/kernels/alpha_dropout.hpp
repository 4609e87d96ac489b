/// @file
/// Raw-pointer kernel of alpha dropout: y = a·(x ⊙ m) + (m ? b : a·α′ + b), with the keep mask m
/// drawn exactly as kernels/dropout.hpp draws it.
#ifndef REGULA_KERNELS_ALPHA_DROPOUT_HPP
#define REGULA_KERNELS_ALPHA_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/kernels/dropout.hpp"

namespace regula::kernels {

/// For the call's elements [i0, i0 + n) (x and y pointing at element i0; y may equal x):
/// kept elements give a·x + b, dropped ones a·(0·x) + dropped_value (NaN stays NaN, as in ATen).
template <class T>
void alpha_dropout_segment(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x, T a, T b,
                           T dropped_value, T* y) noexcept {
  std::size_t i = i0;
  const std::size_t end = i0 + n;
  while (i < end) {
    const std::size_t tile = i / dropout_tile;
    const std::size_t base = tile * dropout_tile;
    const std::size_t stop = base + dropout_tile < end ? base + dropout_tile : end;
    std::uint64_t keep[2];
    dropout_tile_keep(d, tile, keep);
    for (; i < stop; ++i) {
      const std::size_t j = i - base;
      const bool k = ((keep[j / 64] >> (j % 64)) & 1U) != 0;
      const T xv = x[i - i0];
      y[i - i0] = k ? a * xv + b : a * (xv * T(0)) + dropped_value;
    }
  }
}

/// Scalar reference of alpha_dropout_segment (mask from the scalar Philox).
template <class T>
void alpha_dropout_segment_reference(const DropoutDraw& d, std::size_t i0, std::size_t n, const T* x, T a,
                                     T b, T dropped_value, T* y) noexcept {
  for (std::size_t i = i0; i < i0 + n; ++i) {
    std::uint64_t keep[2];
    dropout_tile_keep_reference(d, i / dropout_tile, keep);
    const std::size_t j = i % dropout_tile;
    const bool k = ((keep[j / 64] >> (j % 64)) & 1U) != 0;
    const T xv = x[i - i0];
    y[i - i0] = k ? a * xv + b : a * (xv * T(0)) + dropped_value;
  }
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_ALPHA_DROPOUT_HPP
