/// @file
/// Raw-pointer kernel of Gaussian (multiplicative) dropout: y = x ⊙ (1 + σz) with z the standard
/// normals of `Stream::normal` at a recorded position, so backward regenerates the same noise.
#ifndef REGULA_KERNELS_GAUSSIAN_DROPOUT_HPP
#define REGULA_KERNELS_GAUSSIAN_DROPOUT_HPP

#include <cstddef>
#include <cstdint>

#include "regula/core/simd.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/dropout.hpp"

namespace regula::kernels {

/// Philox blocks used by n Gaussian draws: four normals per block, as Stream::normal.
[[nodiscard]] constexpr std::uint64_t gaussian_blocks(std::size_t n) noexcept {
  return (n + 3) / 4;
}

/// For the call's elements [i0, i0 + n) (x and y pointing at element i0; y may equal x):
/// y = x·(1 + σ·zᵢ), zᵢ element i of `Stream::normal` started at `at` (block ⌊i/4⌋, Box–Muller
/// in double). σ·zᵢ is rounded to double before 1 is added (never a fused multiply-add, so every
/// instruction set gives the same factor), then the factor is rounded to T.
template <class T>
void gaussian_multiply_segment(const Stream& at, std::size_t i0, std::size_t n, const T* x,
                               double sigma, T* y) noexcept {
  std::uint64_t block = ~std::uint64_t{0};
  double z[4] = {0, 0, 0, 0};
  for (std::size_t i = i0; i < i0 + n; ++i) {
    if (i / 4 != block) {
      block = i / 4;
      Stream s(at.seed(), at.subsequence(), at.offset() + block);
      s.normal(z, 4);
    }
    y[i - i0] = x[i - i0] * static_cast<T>(1.0 + simd::opaque(sigma * z[i % 4]));
  }
}

/// Scalar reference of gaussian_multiply_segment: element by element, no cache; σ·zᵢ goes through
/// a volatile, so it is rounded whatever the compiler's contraction flags.
template <class T>
void gaussian_multiply_segment_reference(const Stream& at, std::size_t i0, std::size_t n,
                                         const T* x, double sigma, T* y) noexcept {
  for (std::size_t i = i0; i < i0 + n; ++i) {
    Stream s(at.seed(), at.subsequence(), at.offset() + i / 4);
    double z[4];
    s.normal(z, 4);
    volatile double sz = sigma * z[i % 4];
    y[i - i0] = x[i - i0] * static_cast<T>(1.0 + sz);
  }
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_GAUSSIAN_DROPOUT_HPP
