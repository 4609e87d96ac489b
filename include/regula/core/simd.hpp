/// @file
/// SIMD helpers over xsimd 8 batches: the few operations xsimd 8.1 does not offer portably
/// (the high half of a 32×32-bit product, lane masks to and from bit fields), and
/// `default_arch`, the best instruction set the user's `-m` flags enable.
///
/// Each helper has an x86 fast path chosen at compile time from the batch's architecture and
/// a generic lane-by-lane fallback, so every kernel built on them gives identical bits on every
/// instruction set.
#ifndef REGULA_CORE_SIMD_HPP
#define REGULA_CORE_SIMD_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "regula/config.hpp"

namespace regula {

/// The instruction set regula's header-only kernels are compiled for: the best one enabled by
/// the compiler flags of the translation unit (e.g. AVX-512 with `-march=native` on a recent
/// x86, SSE2 for plain x86-64).
using default_arch = xsimd::default_arch;

namespace simd {

template <class T, class A = default_arch>
using batch = xsimd::batch<T, A>;

template <class T, class A = default_arch>
inline constexpr std::size_t width = xsimd::batch<T, A>::size;

template <class A, class Base>
inline constexpr bool is_arch_v = std::is_base_of_v<Base, A>;

/// Lane-wise high 32 bits of the 64-bit product `a * m`.
template <class A>
REGULA_ALWAYS_INLINE xsimd::batch<std::uint32_t, A> mulhi(const xsimd::batch<std::uint32_t, A>& a,
                                                          std::uint32_t m) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (is_arch_v<A, xsimd::avx512f>) {
    const __m512i x = a;
    const __m512i mm = _mm512_set1_epi32(static_cast<int>(m));
    const __m512i even = _mm512_mul_epu32(x, mm);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mm);
    return _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_srli_epi64(even, 32), odd);
  } else
#endif
#if XSIMD_WITH_AVX2
      if constexpr (is_arch_v<A, xsimd::avx2>) {
    const __m256i x = a;
    const __m256i mm = _mm256_set1_epi32(static_cast<int>(m));
    const __m256i even = _mm256_mul_epu32(x, mm);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
    return _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  } else
#endif
#if XSIMD_WITH_SSE2
      if constexpr (is_arch_v<A, xsimd::sse2>) {
    const __m128i x = a;
    const __m128i mm = _mm_set1_epi32(static_cast<int>(m));
    const __m128i even = _mm_mul_epu32(x, mm);
    const __m128i odd = _mm_mul_epu32(_mm_srli_epi64(x, 32), mm);
    const __m128i hi_mask = _mm_set_epi32(-1, 0, -1, 0);
    return _mm_or_si128(_mm_srli_epi64(even, 32), _mm_and_si128(odd, hi_mask));
  } else
#endif
  {
    constexpr std::size_t W = xsimd::batch<std::uint32_t, A>::size;
    alignas(64) std::uint32_t v[W];
    a.store_aligned(v);
    for (std::size_t i = 0; i < W; ++i) {
      v[i] = static_cast<std::uint32_t>((std::uint64_t{v[i]} * m) >> 32);
    }
    return xsimd::batch<std::uint32_t, A>::load_aligned(v);
  }
}

/// Lane-wise high and low 32 bits of the 64-bit product `a * m`, from the same two widening
/// multiplies (cheaper than mulhi plus a 32-bit mullo on x86).
template <class A>
REGULA_ALWAYS_INLINE void mulhilo(const xsimd::batch<std::uint32_t, A>& a, std::uint32_t m,
                                  xsimd::batch<std::uint32_t, A>& hi,
                                  xsimd::batch<std::uint32_t, A>& lo) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (is_arch_v<A, xsimd::avx512f>) {
    const __m512i x = a;
    const __m512i mm = _mm512_set1_epi32(static_cast<int>(m));
    const __m512i even = _mm512_mul_epu32(x, mm);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), mm);
    hi = _mm512_mask_blend_epi32(__mmask16(0xAAAA), _mm512_srli_epi64(even, 32), odd);
    lo = _mm512_mask_blend_epi32(__mmask16(0xAAAA), even, _mm512_slli_epi64(odd, 32));
    return;
  } else
#endif
#if XSIMD_WITH_AVX2
      if constexpr (is_arch_v<A, xsimd::avx2>) {
    const __m256i x = a;
    const __m256i mm = _mm256_set1_epi32(static_cast<int>(m));
    const __m256i even = _mm256_mul_epu32(x, mm);
    const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), mm);
    hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
    lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    return;
  } else
#endif
  {
    hi = mulhi(a, m);
    lo = a * xsimd::batch<std::uint32_t, A>(m);
  }
}

/// Stores `v` at `p` with a non-temporal (streaming) store where the instruction set has one,
/// bypassing the caches: for outputs much larger than the caches, it saves the read-for-ownership
/// of every written line. @pre p is aligned to the batch size. Call store_fence() after a
/// sequence of streaming stores.
template <class T, class A>
REGULA_ALWAYS_INLINE void store_stream(T* p, const xsimd::batch<T, A>& v) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (is_arch_v<A, xsimd::avx512f>) {
    if constexpr (sizeof(T) == 4) {
      _mm512_stream_ps(p, v);
    } else {
      _mm512_stream_pd(p, v);
    }
    return;
  } else
#endif
#if XSIMD_WITH_AVX
      if constexpr (is_arch_v<A, xsimd::avx>) {
    if constexpr (sizeof(T) == 4) {
      _mm256_stream_ps(p, v);
    } else {
      _mm256_stream_pd(p, v);
    }
    return;
  } else
#endif
#if XSIMD_WITH_SSE2
      if constexpr (is_arch_v<A, xsimd::sse2>) {
    if constexpr (sizeof(T) == 4) {
      _mm_stream_ps(p, v);
    } else {
      _mm_stream_pd(p, v);
    }
    return;
  } else
#endif
  {
    v.store_aligned(p);
  }
}

/// Orders preceding streaming stores before any later store (sfence on x86).
REGULA_ALWAYS_INLINE void store_fence() noexcept {
#if XSIMD_WITH_SSE2
  _mm_sfence();
#endif
}

/// Bit i of the result is lane i of `b` (as `_mm_movemask_ps`); lanes are 32-bit.
template <class T, class A>
REGULA_ALWAYS_INLINE std::uint64_t to_bits(const xsimd::batch_bool<T, A>& b) noexcept {
  static_assert(sizeof(T) == 4, "to_bits: 32-bit lanes only");
#if XSIMD_WITH_AVX512F
  if constexpr (is_arch_v<A, xsimd::avx512f>) {
    return static_cast<std::uint64_t>(static_cast<__mmask16>(b));
  } else
#endif
#if XSIMD_WITH_AVX2
      if constexpr (is_arch_v<A, xsimd::avx2>) {
    const __m256i r = b;
    return static_cast<std::uint32_t>(_mm256_movemask_ps(_mm256_castsi256_ps(r)));
  } else
#endif
#if XSIMD_WITH_SSE2
      if constexpr (is_arch_v<A, xsimd::sse2>) {
    const __m128i r = b;
    return static_cast<std::uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(r)));
  } else
#endif
  {
    constexpr std::size_t W = xsimd::batch<T, A>::size;
    alignas(64) bool v[W];
    b.store_aligned(v);
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < W; ++i) bits |= std::uint64_t{v[i]} << i;
    return bits;
  }
}

/// Integer lanes of T's width, all ones where bit i of `bits` is set: broadcast the field, keep
/// lane i's bit, compare with zero (the usual mask expansion without a lookup table).
template <class T, class A>
REGULA_ALWAYS_INLINE auto expand_bits(std::uint64_t bits) noexcept {
  using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  using UB = xsimd::batch<U, A>;
  constexpr std::size_t W = UB::size;
  alignas(64) U lane_bit[W];
  for (std::size_t i = 0; i < W; ++i) lane_bit[i] = U{1} << i;
  const UB sel = UB(static_cast<U>(bits)) & UB::load_aligned(lane_bit);
  return static_cast<typename UB::register_type>(xsimd::bitwise_cast(sel != UB(U{0})));
}

/// The lane mask whose lane i is bit i of `bits` (the inverse of to_bits, for T's lanes).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> from_bits(std::uint64_t bits) noexcept {
#if XSIMD_WITH_AVX512F
  if constexpr (is_arch_v<A, xsimd::avx512f>) {
    using reg = typename xsimd::batch_bool<T, A>::register_type;
    return xsimd::batch_bool<T, A>(static_cast<reg>(bits));
  } else
#endif
#if XSIMD_WITH_AVX2
      if constexpr (is_arch_v<A, xsimd::avx2>) {
    const __m256i r = expand_bits<T, A>(bits);
    if constexpr (sizeof(T) == 4) {
      return xsimd::batch_bool<T, A>(_mm256_castsi256_ps(r));
    } else {
      return xsimd::batch_bool<T, A>(_mm256_castsi256_pd(r));
    }
  } else
#endif
#if XSIMD_WITH_SSE2
      if constexpr (is_arch_v<A, xsimd::sse2>) {
    const __m128i r = expand_bits<T, A>(bits);
    if constexpr (sizeof(T) == 4) {
      return xsimd::batch_bool<T, A>(_mm_castsi128_ps(r));
    } else {
      return xsimd::batch_bool<T, A>(_mm_castsi128_pd(r));
    }
  } else
#endif
  {
    constexpr std::size_t W = xsimd::batch<T, A>::size;
    alignas(64) bool v[W];
    for (std::size_t i = 0; i < W; ++i) v[i] = ((bits >> i) & 1U) != 0;
    return xsimd::batch_bool<T, A>::load_aligned(v);
  }
}

}  // namespace simd
}  // namespace regula

#endif  // REGULA_CORE_SIMD_HPP
