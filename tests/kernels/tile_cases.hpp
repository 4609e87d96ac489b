// The cross-column kernels of the activations (softmax_tile, log_softmax_tile, stablemax_tile,
// log_stablemax_tile and their backward twins) against the per-column kernels, per element, and
// the forward ones against long double, for every head width they take, ragged tiles, strided
// and in-place layouts, in the random, confident, collapsed and large regimes. Compiled for each
// instruction set by test_isa.cpp and for the default one by test_tile.cpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "regula/kernels/softmax.hpp"
#include "regula/kernels/stablemax.hpp"

#include "support/catch.hpp"

namespace tile_cases {

// `cols` columns of n values at stride n + 2 (the two extra rows hold a sentinel): regime 0
// random in [-4, 4), 1 one class 30 above the rest, 2 all equal, 3 ±1e4.
template <class T>
std::vector<T> columns(std::size_t n, std::size_t cols, int regime, std::uint64_t seed) {
  const std::size_t stride = n + 2;
  std::vector<T> z(stride * cols, T(-7));
  std::uint64_t s =
      0x9E3779B97F4A7C15ULL * (n + 7 * cols + 31 * static_cast<std::uint64_t>(regime)) + seed;
  for (std::size_t k = 0; k < cols; ++k) {
    for (std::size_t r = 0; r < n; ++r) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      const double u = static_cast<double>(s >> 11) * 0x1.0p-53;
      double v = 8.0 * u - 4.0;
      if (regime == 1 && r == (k * 5 + 1) % n) v = 30.0;
      if (regime == 2) v = 0.5;
      if (regime == 3) v = 2e4 * u - 1e4;
      z[k * stride + r] = static_cast<T>(v);
    }
  }
  return z;
}

// The forward reference in long double: softmax or StableMax of the column, or its log.
template <bool Stable, bool Log, class T>
long double forward_reference(const T* z, std::size_t n, std::size_t r) {
  using L = long double;
  auto s_of = [](L x) { return x >= 0 ? 1 + x : 1 / (1 - x); };
  L m = static_cast<L>(z[0]);
  for (std::size_t k = 1; k < n; ++k) m = std::max(m, static_cast<L>(z[k]));
  L S = 0;
  for (std::size_t k = 0; k < n; ++k) {
    const L x = static_cast<L>(z[k]);
    S += Stable ? s_of(x) : std::exp(x - m);
  }
  const L x = static_cast<L>(z[r]);
  if constexpr (Log) {
    return Stable ? (x >= 0 ? std::log1p(x) : -std::log1p(-x)) - std::log(S)
                  : (x - m) - std::log(S);
  } else {
    return (Stable ? s_of(x) : std::exp(x - m)) / S;
  }
}

// Runs kernel `Kind` (0 softmax, 1 log-softmax, 2 StableMax, 3 log-StableMax) forward and backward
// on tiles and on columns and compares element by element.
template <int Kind, class T>
void check_kind() {
  constexpr bool stable = Kind >= 2;
  constexpr bool log = Kind % 2 == 1;
  constexpr std::size_t W = xsimd::batch<T, regula::default_arch>::size;
  const long double eps = static_cast<long double>(std::numeric_limits<T>::epsilon());
  const long double tiny = static_cast<long double>(std::numeric_limits<T>::min());
  constexpr std::size_t widths[] = {1, 2, 3, 5, 10, 16, 17, 31, 32};
  auto fwd_tile = [](const T* z, std::size_t zs, std::size_t n, std::size_t count, T* y,
                     std::size_t ys) {
    if constexpr (Kind == 0) regula::kernels::softmax_tile<T>(z, zs, n, count, y, ys);
    if constexpr (Kind == 1) regula::kernels::log_softmax_tile<T>(z, zs, n, count, y, ys);
    if constexpr (Kind == 2) regula::kernels::stablemax_tile<T>(z, zs, n, count, y, ys);
    if constexpr (Kind == 3) regula::kernels::log_stablemax_tile<T>(z, zs, n, count, y, ys);
  };
  auto fwd_col = [](const T* z, std::size_t n, T* y) {
    if constexpr (Kind == 0) regula::kernels::softmax_column<T>(z, n, y);
    if constexpr (Kind == 1) regula::kernels::log_softmax_column<T>(z, n, y);
    if constexpr (Kind == 2) regula::kernels::stablemax_column<T>(z, n, y);
    if constexpr (Kind == 3) regula::kernels::log_stablemax_column<T>(z, n, y);
  };
  auto bwd_tile = [](const T* z, const T* y, const T* dy, std::size_t s, std::size_t n,
                     std::size_t count, T* dz) {
    if constexpr (Kind == 0)
      regula::kernels::softmax_backward_tile<T>(y, s, dy, s, n, count, dz, s);
    if constexpr (Kind == 1)
      regula::kernels::log_softmax_backward_tile<T>(y, s, dy, s, n, count, dz, s);
    if constexpr (Kind == 2)
      regula::kernels::stablemax_backward_tile<T>(z, s, y, s, dy, s, n, count, dz, s);
    if constexpr (Kind == 3)
      regula::kernels::log_stablemax_backward_tile<T>(z, s, y, s, dy, s, n, count, dz, s);
  };
  auto bwd_col = [](const T* z, const T* y, const T* dy, std::size_t n, T* dz) {
    if constexpr (Kind == 0) regula::kernels::softmax_backward_column<T>(y, dy, n, dz);
    if constexpr (Kind == 1) regula::kernels::log_softmax_backward_column<T>(y, dy, n, dz);
    if constexpr (Kind == 2) regula::kernels::stablemax_backward_column<T>(z, y, dy, n, dz);
    if constexpr (Kind == 3) regula::kernels::log_stablemax_backward_column<T>(z, y, dy, n, dz);
  };
  for (const std::size_t n : widths) {
    const std::size_t s = n + 2;
    for (const std::size_t count : {std::size_t{1}, std::size_t{3}, W}) {
      if (count > W) continue;
      for (const int regime : {0, 1, 2, 3}) {
        INFO("kind " << Kind << ", n " << n << ", count " << count << ", regime " << regime
                     << ", W " << W);
        const auto z = columns<T>(n, count, regime, 1);
        const auto dy = columns<T>(n, count, 0, 2);
        std::vector<T> y(z.size(), T(-7)), y_col(z.size(), T(-7)), in_place = z;
        fwd_tile(z.data(), s, n, count, y.data(), s);
        fwd_tile(in_place.data(), s, n, count, in_place.data(), s);
        for (std::size_t k = 0; k < count; ++k) fwd_col(z.data() + k * s, n, y_col.data() + k * s);
        CHECK(in_place == y);  // in place gives the same bits
        // The forward element's condition: |z − m| for exp(z − m), |log s − log S| for the
        // logs' subtraction; StableMax's s has condition ≤ 1.
        for (std::size_t k = 0; k < count; ++k) {
          const T* zk = z.data() + k * s;
          for (std::size_t r = 0; r < n + 2; ++r) {
            const std::size_t i = k * s + r;
            if (r >= n) {
              CHECK(y[i] == T(-7));  // the rows past n are not written
              continue;
            }
            const long double ref = forward_reference<stable, log>(zk, n, r);
            long double cond = 4 * static_cast<long double>(n);
            if (!stable) {
              long double m = static_cast<long double>(zk[0]);
              for (std::size_t q = 1; q < n; ++q) m = std::max(m, static_cast<long double>(zk[q]));
              cond += m - static_cast<long double>(zk[r]);
            }
            const long double scale = log ? 1 + std::abs(ref) : std::abs(ref);
            INFO("column " << k << ", row " << r << ": " << y[i] << " vs "
                           << static_cast<double>(ref));
            CHECK(std::abs(static_cast<long double>(y[i]) - ref) <= 4 * eps * cond * scale + tiny);
            CHECK(std::abs(static_cast<long double>(y[i] - y_col[i])) <=
                  4 * eps * cond * scale + tiny);
          }
        }
        // Backward at the column kernel's output, so that both see the same y.
        std::vector<T> dz(z.size(), T(-7)), dz_col(z.size(), T(-7)), dz_in_place = dy;
        bwd_tile(z.data(), y_col.data(), dy.data(), s, n, count, dz.data());
        bwd_tile(z.data(), y_col.data(), dz_in_place.data(), s, n, count, dz_in_place.data());
        for (std::size_t k = 0; k < count; ++k) {
          bwd_col(z.data() + k * s, y_col.data() + k * s, dy.data() + k * s, n,
                  dz_col.data() + k * s);
        }
        CHECK(dz_in_place == dz);
        for (std::size_t k = 0; k < count; ++k) {
          // The backward elements are differences y·(dy − ⟨dy, y⟩) or dy − e^y·Σdy: compare them
          // on the scale of their terms, |y|·(|dy| + Σ|y·dy|) or |dy| + e^y·Σ|dy|.
          long double mag = 0;
          for (std::size_t r = 0; r < n; ++r) {
            const std::size_t i = k * s + r;
            const long double yi = static_cast<long double>(y_col[i]);
            mag += std::abs(static_cast<long double>(dy[i]) * (log ? 1 : yi));
          }
          for (std::size_t r = 0; r < n + 2; ++r) {
            const std::size_t i = k * s + r;
            if (r >= n) {
              CHECK(dz[i] == T(-7));
              continue;
            }
            const long double yi = static_cast<long double>(y_col[i]);
            const long double term =
                log ? std::abs(static_cast<long double>(dy[i])) + std::exp(yi) * mag
                    : std::abs(yi) * (std::abs(static_cast<long double>(dy[i])) + mag);
            INFO("backward column " << k << ", row " << r << ": " << dz[i] << " vs " << dz_col[i]);
            CHECK(std::abs(static_cast<long double>(dz[i] - dz_col[i])) <=
                  8 * eps * static_cast<long double>(n) * term + tiny);
          }
        }
      }
    }
  }
}

}  // namespace tile_cases

TEMPLATE_TEST_CASE(
    "The cross-column softmax, log-softmax, StableMax and log-StableMax kernels match the "
    "per-column ones per element, forward and backward",
    "[kernels][softmax][stablemax][simd]", float, double) {
  tile_cases::check_kind<0, TestType>();
  tile_cases::check_kind<1, TestType>();
  tile_cases::check_kind<2, TestType>();
  tile_cases::check_kind<3, TestType>();
}
