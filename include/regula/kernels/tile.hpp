/// @file
/// The transposed column tile of the cross-column kernels: narrow heads (n ≤ tile_rows
/// classes) are shorter than a SIMD register, so a per-column kernel spends its time on partial
/// blocks and horizontal sums. A tile holds `count` ≤ W consecutive columns (W = the batch size)
/// with row r of every column in one batch, so that per-column reductions become vertical
/// operations, one column per lane, and lanes never mix: a column's result depends on its own
/// values only, not on its neighbours, the tile it falls in, or how many columns the tile holds.
///
/// The rows go in and out through a buffer with scalar moves: on the AVX-512 machine of
/// bench/RESULTS.md that costs less than a gather per row (1.0 against 1.8 µs for 512 columns of
/// 10) and much less than a scatter.
#ifndef REGULA_KERNELS_TILE_HPP
#define REGULA_KERNELS_TILE_HPP

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "regula/core/simd.hpp"

namespace regula::kernels {

/// The widest head the cross-column kernels take: the n rows of one tile stay in registers.
inline constexpr std::size_t tile_rows = 32;

/// Rows of `count` ≤ W consecutive columns (column k at z + k·zs, n ≤ tile_rows rows), row r as
/// rows[r]. Lanes past `count` repeat column 0, so they compute finite values that are dropped.
template <class T, class A = default_arch>
struct ColumnTile {
  /// The batch type of a row.
  using B = xsimd::batch<T, A>;
  /// Columns per tile, the batch size.
  static constexpr std::size_t W = B::size;
  /// rows[r][k] = row r of column k (initialised: GCC cannot see rows >= n unread).
  alignas(64) T rows[tile_rows][W] = {};

  /// Transposes `count` columns at z, z + zs, ... (n rows each) into rows.
  ColumnTile(const T* z, std::size_t zs, std::size_t n, std::size_t count) noexcept {
    for (std::size_t k = 0; k < W; ++k) {
      const T* col = z + (k < count ? k : 0) * zs;
      for (std::size_t r = 0; r < n; ++r) rows[r][k] = col[r];
    }
  }

  /// Row r as a batch.
  [[nodiscard]] REGULA_ALWAYS_INLINE B row(std::size_t r) const noexcept {
    return B::load_aligned(rows[r]);
  }
};

/// Writes the batches out[r], r < n (row r of a tile), to `count` columns at y + k·ys.
template <class T, class A>
REGULA_ALWAYS_INLINE void store_tile(const xsimd::batch<T, A>* out, std::size_t n,
                                     std::size_t count, T* y, std::size_t ys) noexcept {
  constexpr std::size_t W = xsimd::batch<T, A>::size;
  alignas(64) T buf[tile_rows][W];
  for (std::size_t r = 0; r < n; ++r) out[r].store_aligned(buf[r]);
  for (std::size_t k = 0; k < count; ++k) {
    for (std::size_t r = 0; r < n; ++r) y[k * ys + r] = buf[r][k];
  }
}

/// One double accumulator per lane of a batch of T (not a horizontal sum): for float the low
/// and high halves of the lanes are widened exactly into two double batches.
template <class T, class A = default_arch>
struct LaneSums {
  /// The batch type of the values added.
  using B = xsimd::batch<T, A>;
  /// The double batch type of the sums.
  using DB = xsimd::batch<double, A>;
  /// Lanes, the batch size of T.
  static constexpr std::size_t W = B::size;
  /// Double batches per batch of T: 2 for float, 1 for double.
  static constexpr std::size_t halves = std::is_same_v<T, float> ? 2 : 1;
  /// The sums: lanes [q·W/halves, (q + 1)·W/halves) in h[q].
  DB h[halves];

  /// All sums 0.
  LaneSums() noexcept {
    for (auto& x : h) x = DB(0.0);
  }

  /// Adds lane k of x to sum k, exactly widened.
  REGULA_ALWAYS_INLINE void add(const B& x) noexcept {
    if constexpr (std::is_same_v<T, float>) {
      simd::add_widened(x, h[0], h[1]);
    } else {
      h[0] += x;
    }
  }

  /// The W lane sums to d (64-byte aligned).
  REGULA_ALWAYS_INLINE void store(double* d) const noexcept {
    for (std::size_t q = 0; q < halves; ++q) h[q].store_aligned(d + q * DB::size);
  }
};

/// The W doubles at d (64-byte aligned), each rounded to T, as a batch.
template <class T, class A = default_arch>
REGULA_ALWAYS_INLINE xsimd::batch<T, A> narrow_lanes(const double* d) noexcept {
  using B = xsimd::batch<T, A>;
  alignas(64) T t[B::size];
  for (std::size_t k = 0; k < B::size; ++k) t[k] = static_cast<T>(d[k]);
  return B::load_aligned(t);
}

/// A batch of T widened to W doubles at d (64-byte aligned).
template <class T, class A>
REGULA_ALWAYS_INLINE void widen_lanes(const xsimd::batch<T, A>& x, double* d) noexcept {
  using B = xsimd::batch<T, A>;
  alignas(64) T t[B::size];
  x.store_aligned(t);
  for (std::size_t k = 0; k < B::size; ++k) d[k] = static_cast<double>(t[k]);
}

/// The end of a tile kernel whose loss is a per-lane sum: `acc` widened to the lanes' losses
/// d[0..W), then each lane c < count whose loss is not finite recomputed by `column(c)` (its
/// per-column kernel, whose wide fallback holds what the lanes' range cannot).
template <class T, class A, class Column>
REGULA_ALWAYS_INLINE void finish_lanes(const xsimd::batch<T, A>& acc, std::size_t count, double* d,
                                       Column&& column) noexcept {
  widen_lanes(acc, d);
  for (std::size_t c = 0; c < count; ++c) {
    if (!std::isfinite(d[c])) column(c);
  }
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_TILE_HPP
