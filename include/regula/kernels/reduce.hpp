/// @file
/// Reductions over xsimd batches that xsimd 8.1 does not provide: the horizontal maximum, and
/// accumulation of float lanes in double (two double batches per float batch).
#ifndef REGULA_KERNELS_REDUCE_HPP
#define REGULA_KERNELS_REDUCE_HPP

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "regula/core/simd.hpp"

namespace regula::kernels {

/// Whether the n values at z and at v are all finite (scalar; the kernels' test before a
/// long-double recomputation of a column whose result is not finite).
template <class T>
bool all_finite(const T* z, const T* v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(z[i]) || !std::isfinite(v[i])) return false;
  }
  return true;
}

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

/// The sum of the lanes of `x`, pairwise through memory (xsimd::hadd's AVX-512 version trips a
/// false -Wuninitialized in GCC 12's avx512fintrin.h).
template <class T, class A>
REGULA_ALWAYS_INLINE T hsum(const xsimd::batch<T, A>& x) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  x.store_aligned(v);
  for (std::size_t w = W / 2; w > 0; w /= 2) {
    for (std::size_t i = 0; i < w; ++i) v[i] += v[i + w];
  }
  return v[0];
}

/// The first k < W lanes from p, the others `fill`: lets a column's last partial block run
/// through the same SIMD code (a scalar exp per tail element costs more than a whole batch).
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> load_tail(const T* p, std::size_t k, T fill) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  for (std::size_t i = 0; i < W; ++i) v[i] = i < k ? p[i] : fill;
  return xsimd::batch<T, A>::load_aligned(v);
}

/// Stores the first k < W lanes of x to p.
template <class T, class A>
REGULA_ALWAYS_INLINE void store_tail(const xsimd::batch<T, A>& x, T* p, std::size_t k) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T v[W];
  x.store_aligned(v);
  for (std::size_t i = 0; i < k; ++i) p[i] = v[i];
}

/// Lanes 0..k−1 true, the others false.
template <class T, class A>
REGULA_ALWAYS_INLINE xsimd::batch_bool<T, A> tail_mask(std::size_t k) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T idx[W];
  for (std::size_t i = 0; i < W; ++i) idx[i] = static_cast<T>(i);
  return xsimd::batch<T, A>::load_aligned(idx) < xsimd::batch<T, A>(static_cast<T>(k));
}

/// Sums batches of T in double lanes. For T = double this is a plain batch sum; for T = float
/// every float batch is widened into two double batches before it is added, so a column sum of
/// floats has the accuracy of a double sum (as the StableMax authors' float64 cast).
template <class T, class A = default_arch>
class DoubleAccumulator {
  using DB = xsimd::batch<double, A>;

 public:
  /// Adds a batch to the running sum.
  REGULA_ALWAYS_INLINE void add(const xsimd::batch<T, A>& x) noexcept {
    if constexpr (std::is_same_v<T, double>) {
      lo_ += x;
    } else {
      simd::add_widened(x, lo_, hi_);
    }
  }

  /// Adds the W values at p (just stored by the caller): for float, widening loads straight
  /// from memory, which saves the register shuffles of add().
  REGULA_ALWAYS_INLINE void add_stored(const T* p) noexcept {
    if constexpr (std::is_same_v<T, double>) {
      lo_ += DB::load_unaligned(p);
    } else {
      simd::add_widened_load(p, lo_, hi_);
    }
  }

  /// Adds the lane products x·y, formed in double (exact for float inputs).
  REGULA_ALWAYS_INLINE void add_product(const xsimd::batch<T, A>& x,
                                        const xsimd::batch<T, A>& y) noexcept {
    if constexpr (std::is_same_v<T, double>) {
      lo_ = xsimd::fma(x, y, lo_);
    } else {
      constexpr std::size_t W = xsimd::batch<T, A>::size;
      constexpr std::size_t WD = DB::size;
      alignas(64) T xv[W];
      alignas(64) T yv[W];
      alignas(64) double xd[W];
      alignas(64) double yd[W];
      x.store_aligned(xv);
      y.store_aligned(yv);
      for (std::size_t i = 0; i < W; ++i) {
        xd[i] = static_cast<double>(xv[i]);
        yd[i] = static_cast<double>(yv[i]);
      }
      for (std::size_t k = 0; k < W; k += 2 * WD) {
        lo_ = xsimd::fma(DB::load_aligned(xd + k), DB::load_aligned(yd + k), lo_);
        if (k + WD < W)
          hi_ = xsimd::fma(DB::load_aligned(xd + k + WD), DB::load_aligned(yd + k + WD), hi_);
      }
    }
  }

  /// Adds another accumulator's lanes into this one.
  REGULA_ALWAYS_INLINE void merge(const DoubleAccumulator& other) noexcept {
    lo_ += other.lo_;
    hi_ += other.hi_;
  }

  /// The sum of everything added so far (lanes added pairwise).
  [[nodiscard]] REGULA_ALWAYS_INLINE double sum() const noexcept { return hsum(lo_ + hi_); }

 private:
  DB lo_ = DB(0.0);
  DB hi_ = DB(0.0);
};

/// Sums batches of double with a running compensation per lane (Knuth's two-sum), so a long
/// column sum of doubles is accurate to about one rounding rather than n·ε: used where a
/// gradient element is a difference of terms built from that sum.
template <class A = default_arch>
class CompensatedAccumulator {
  using DB = xsimd::batch<double, A>;

 public:
  /// Adds a batch to the running sum.
  REGULA_ALWAYS_INLINE void add(const DB& x) noexcept {
    const DB t = s_ + x;
    const DB bp = t - s_;
    c_ += (s_ - (t - bp)) + (x - bp);
    s_ = t;
  }

  /// The compensated sum of everything added so far.
  [[nodiscard]] REGULA_ALWAYS_INLINE double sum() const noexcept {
    constexpr std::size_t W = DB::size;
    alignas(64) double v[W];
    alignas(64) double c[W];
    s_.store_aligned(v);
    c_.store_aligned(c);
    double hi = 0.0;
    double lo = 0.0;
    for (std::size_t i = 0; i < W; ++i) {
      const double t = hi + v[i];
      const double bp = t - hi;
      lo += (hi - (t - bp)) + (v[i] - bp) + c[i];
      hi = t;
    }
    // A sum past the largest double: the compensation is inf − inf there, so the plain sum is
    // the answer (inf, or NaN where a NaN was added).
    if (!std::isfinite(hi)) return hi;
    return hi + lo;
  }

 private:
  DB s_ = DB(0.0);
  DB c_ = DB(0.0);
};

/// Σ p[i] over n values, accumulated in double lanes: a column sum of floats with the accuracy of
/// a double sum (used where a complement Σ_{j≠k} must not be formed as a difference).
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE double sum_in_double(const T* p, std::size_t n) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  DoubleAccumulator<T, A> acc;
  std::size_t i = 0;
  for (; i + W <= n; i += W) acc.add_stored(p + i);
  double s = acc.sum();
  for (; i < n; ++i) s += static_cast<double>(p[i]);
  return s;
}

/// Σ_{i≠k} p[i] in double (k < n), the complement sum without the cancellation of Σ p − p[k].
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE double sum_in_double_except(const T* p, std::size_t n,
                                                 std::size_t k) noexcept {
  return sum_in_double<T, A>(p, k) + sum_in_double<T, A>(p + k + 1, n - k - 1);
}

/// Σ f(z[i]) over n values in double, for a lane-wise f of batches: the same blocks, lanes and
/// order as sum_in_double over the stored values f(z), so both give the same bits (the last
/// partial block is f of a padded batch, as the kernels compute and store it).
template <class T, class A, class F>
REGULA_ALWAYS_INLINE double sum_mapped_in_double(const T* z, std::size_t n, T fill,
                                                 F&& f) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  DoubleAccumulator<T, A> acc;
  std::size_t i = 0;
  for (; i + W <= n; i += W) acc.add(f(B::load_unaligned(z + i)));
  double s = acc.sum();
  if (i < n) {
    alignas(64) T v[W];
    f(load_tail<T, A>(z + i, n - i, fill)).store_aligned(v);
    for (std::size_t k = 0; k < n - i; ++k) s += static_cast<double>(v[k]);
  }
  return s;
}

/// Σ_{i≠k} f(z[i]) in double, bit for bit sum_in_double_except over the stored f(z).
template <class T, class A, class F>
REGULA_ALWAYS_INLINE double sum_mapped_in_double_except(const T* z, std::size_t n, std::size_t k,
                                                        T fill, F&& f) noexcept {
  return sum_mapped_in_double<T, A>(z, k, fill, f) +
         sum_mapped_in_double<T, A>(z + k + 1, n - k - 1, fill, f);
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_REDUCE_HPP
