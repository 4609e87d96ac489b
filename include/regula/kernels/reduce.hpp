/// @file
/// Reductions over xsimd batches that xsimd 8.1 does not provide: the horizontal maximum, and
/// accumulation of float lanes in double (two double batches per float batch).
#ifndef REGULA_KERNELS_REDUCE_HPP
#define REGULA_KERNELS_REDUCE_HPP

#include <cstddef>
#include <type_traits>

#include "regula/core/simd.hpp"

namespace regula::kernels {

/// The largest lane of `x`. NaN lanes are skipped unless every lane is NaN; callers whose
/// result must be NaN for NaN input get it from the later arithmetic (exp(NaN − m) is NaN).
template <class T, class A>
REGULA_ALWAYS_INLINE T hmax(const xsimd::batch<T, A>& x) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  x.store_aligned(v);
  T m = v[0];
  for (std::size_t i = 1; i < W; ++i) m = v[i] > m ? v[i] : m;
  return m;
}

/// Sums batches of T in double lanes. For T = double this is a plain batch sum; for T = float
/// every float batch is widened into two double batches before it is added, so a column sum of
/// floats has the accuracy of a double sum (as the StableMax authors' float64 cast).
template <class T, class A = default_arch>
class DoubleAccumulator {
  using DB = xsimd::batch<double, A>;

 public:
  REGULA_ALWAYS_INLINE void add(const xsimd::batch<T, A>& x) noexcept {
    if constexpr (std::is_same_v<T, double>) {
      lo_ += x;
    } else {
#if XSIMD_WITH_AVX512F
      if constexpr (simd::is_arch_v<A, xsimd::avx512f>) {
        const __m512 f = x;
        lo_ += DB(_mm512_cvtps_pd(_mm512_castps512_ps256(f)));
        hi_ += DB(_mm512_cvtps_pd(
            _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(f), 1))));
        return;
      } else
#endif
#if XSIMD_WITH_AVX
      if constexpr (simd::is_arch_v<A, xsimd::avx>) {
        const __m256 f = x;
        lo_ += DB(_mm256_cvtps_pd(_mm256_castps256_ps128(f)));
        hi_ += DB(_mm256_cvtps_pd(_mm256_extractf128_ps(f, 1)));
        return;
      } else
#endif
#if XSIMD_WITH_SSE2
      if constexpr (simd::is_arch_v<A, xsimd::sse2>) {
        const __m128 f = x;
        lo_ += DB(_mm_cvtps_pd(f));
        hi_ += DB(_mm_cvtps_pd(_mm_movehl_ps(f, f)));
        return;
      } else
#endif
      {
        constexpr std::size_t W = xsimd::batch<T, A>::size;
        constexpr std::size_t WD = DB::size;
        alignas(64) T v[W];
        alignas(64) double d[W];
        x.store_aligned(v);
        for (std::size_t i = 0; i < W; ++i) d[i] = static_cast<double>(v[i]);
        for (std::size_t k = 0; k < W; k += WD) {
          (k / WD % 2 == 0 ? lo_ : hi_) += DB::load_aligned(d + k);
        }
      }
    }
  }

  /// The sum of everything added so far (lanes added by xsimd::hadd).
  [[nodiscard]] REGULA_ALWAYS_INLINE double sum() const noexcept { return xsimd::hadd(lo_ + hi_); }

 private:
  DB lo_ = DB(0.0);
  DB hi_ = DB(0.0);
};

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_REDUCE_HPP
