/// @file
/// Column-wise work on `features × batch` matrices: the checks every per-sample function makes
/// on its outputs, and a deterministic parallel loop over samples.
#ifndef REGULA_CORE_COLUMNS_HPP
#define REGULA_CORE_COLUMNS_HPP

#include <cstddef>
#include <tuple>

#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/simd.hpp"

namespace regula::detail {

/// Throws unless `out` has the shape of `in` and is either `in` itself (same data and layout)
/// or does not overlap it.
template <class In, class Out>
void check_output(const char* who, const char* in_name, const In& in, const char* out_name,
                  const Out& out) {
  check_same_shape(who, out_name, out, in_name, in);
  REGULA_EXPECTS(!overlaps_partially(in.data(), extent(in), out.data(), extent(out)), who, out_name,
                 " must be ", in_name, " itself or not overlap it; it overlaps partly");
  REGULA_EXPECTS(in.data() != out.data() || in.size() == 0 || in.outerStride() == out.outerStride(),
                 who, out_name, " aliases ", in_name, " with another layout");
}

/// Throws if `out` and `in` share any memory (for outputs that may not alias an input).
template <class In, class Out>
void check_disjoint(const char* who, const char* in_name, const In& in, const char* out_name,
                    const Out& out) {
  check_no_overlap(who, {region(in_name, in)}, {region(out_name, out)});
}

/// Columns per parallel chunk: about 32 Ki elements, at least one column. Depends only on the
/// shape, so results do not depend on the thread count.
[[nodiscard]] inline std::size_t column_chunk(Index rows) noexcept {
  const auto r = static_cast<std::size_t>(rows > 0 ? rows : 1);
  return r >= 32768 ? 1 : 32768 / r;
}

/// Calls f(col) for every column, in parallel chunks of column_chunk(rows) columns.
template <class F>
void for_each_column(Index rows, Index cols, F&& f) noexcept {
  parallel_for_chunks(static_cast<std::size_t>(cols), column_chunk(rows),
                      [&](std::size_t, std::size_t begin, std::size_t end) noexcept {
                        for (std::size_t c = begin; c < end; ++c) f(c);
                      });
}

/// The loop of for_each_column for kernels with a cross-column twin (kernels/tile.hpp): when
/// the columns have 1 to `narrow` rows, calls tile(col, count) on runs of count ≤ width
/// consecutive columns of a chunk, else column(col) for every column. The cross-column kernels'
/// lanes are independent, so a column's result does not depend on the run it falls in.
template <class Tile, class Column>
void for_each_column_tile(Index rows, Index cols, std::size_t width, std::size_t narrow,
                          Tile&& tile, Column&& column) noexcept {
  const bool tiled = rows >= 1 && static_cast<std::size_t>(rows) <= narrow;
  parallel_for_chunks(static_cast<std::size_t>(cols), column_chunk(rows),
                      [&](std::size_t, std::size_t begin, std::size_t end) noexcept {
                        for (std::size_t c = begin; c < end;) {
                          if (!tiled) {
                            column(c++);
                            continue;
                          }
                          const std::size_t count = end - c < width ? end - c : width;
                          tile(c, count);
                          c += count;
                        }
                      });
}

/// out = f(in...) column by column for a kernel with a cross-column twin: on heads of 1 to
/// `narrow` rows, tile(in_0, in_0 stride, ..., n, count, out, out stride) on runs of up to W =
/// simd::width<T> consecutive columns (for_each_column_tile), else column(in_0, ..., n, out) per
/// column; every pointer is the run's first column. The kernels of the activations have these
/// argument orders (kernels/softmax.hpp, kernels/stablemax.hpp).
template <class T, class Tile, class Column, class... In>
void map_columns(std::size_t narrow, Tile&& tile, Column&& column, MatrixRef<T>& out,
                 const In&... in) noexcept {
  const auto n = static_cast<std::size_t>(out.rows());
  const auto os = static_cast<std::size_t>(out.outerStride());
  for_each_column_tile(
      out.rows(), out.cols(), simd::width<T>, narrow,
      [&](std::size_t c, std::size_t count) noexcept {
        const auto j = static_cast<Index>(c);
        std::apply([&](auto... a) noexcept { tile(a..., n, count, out.col(j).data(), os); },
                   std::tuple_cat(std::make_tuple(in.col(j).data(),
                                                  static_cast<std::size_t>(in.outerStride()))...));
      },
      [&](std::size_t c) noexcept {
        const auto j = static_cast<Index>(c);
        column(in.col(j).data()..., n, out.col(j).data());
      });
}

/// Walks the n elements of a column-major pair x, y (`rows` per column, outer strides xs, ys)
/// in fixed parallel chunks of `chunk` elements, calling seg(i, len, x_offset, y_offset) for
/// each run of consecutive elements [i, i + len) of one column within a chunk (x_offset and
/// y_offset: where element i lies in x and in y); when `flat` (both contiguous) a chunk is one
/// run. The chunking depends only on n and chunk, so results do not depend on the thread count.
template <class F>
void parallel_column_segments(std::size_t n, std::size_t chunk, std::size_t rows, std::size_t xs,
                              std::size_t ys, bool flat, F&& seg) noexcept {
  parallel_for_chunks(n, chunk, [&](std::size_t, std::size_t begin, std::size_t end) noexcept {
    if (flat) {
      seg(begin, end - begin, begin, begin);
      return;
    }
    std::size_t i = begin;
    while (i < end) {
      const std::size_t col = i / rows;
      const std::size_t row = i % rows;
      const std::size_t len = (rows - row) < (end - i) ? rows - row : end - i;
      seg(i, len, col * xs + row, col * ys + row);
      i += len;
    }
  });
}

}  // namespace regula::detail

#endif  // REGULA_CORE_COLUMNS_HPP
