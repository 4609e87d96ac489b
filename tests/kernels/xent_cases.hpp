// The cross-column softmax cross-entropy kernel (softmax_xent_hard_tile) against the per-column
// kernel and a long-double reference, per element, for every head width it takes and ragged
// tiles, in the random, confident and collapsed regimes. Compiled for each instruction set by
// test_isa.cpp and for the default one by test_cross_entropy.cpp.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "regula/kernels/cross_entropy.hpp"

#include "support/catch.hpp"

namespace xent_cases {

// Column k's logits: regime 0 random in [-4, 4), 1 confident (the label 30 above the rest),
// 2 collapsed (all equal), 3 large (±1e4 spread, label on top).
template <class T>
std::vector<T> logits(std::size_t n, std::size_t cols, int regime,
                      const std::vector<std::int64_t>& y) {
  std::vector<T> z(n * cols);
  std::uint64_t s =
      0x9E3779B97F4A7C15ULL * (n + 7 * cols + 31 * static_cast<std::uint64_t>(regime));
  for (std::size_t k = 0; k < cols; ++k) {
    for (std::size_t r = 0; r < n; ++r) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      const double u = static_cast<double>(s >> 11) * 0x1.0p-53;  // [0, 1)
      double v = 8.0 * u - 4.0;
      if (regime == 2) v = 0.5;
      if (regime == 3) v = 2e4 * u - 1e4;
      if (static_cast<std::int64_t>(r) == y[k]) {
        if (regime == 1) v = 30.0;
        if (regime == 3) v = 1.5e4;
      }
      z[k * n + r] = static_cast<T>(v);
    }
  }
  return z;
}

}  // namespace xent_cases

TEMPLATE_TEST_CASE(
    "The cross-column softmax cross-entropy kernel matches the per-column one and a "
    "long-double reference per element",
    "[kernels][cross_entropy][simd]", float, double) {
  using T = TestType;
  constexpr std::size_t W = xsimd::batch<T, regula::default_arch>::size;
  const T eps = std::numeric_limits<T>::epsilon();
  const T g = T(1) / T(3);
  const T gamma = T(1);
  constexpr std::size_t widths[] = {1, 2, 3, 5, 10, 16, 17, 31, 32};
  for (const std::size_t n : widths) {
    for (const std::size_t count : {std::size_t{1}, std::size_t{3}, W}) {
      if (count > W) continue;
      for (const int regime : {0, 1, 2, 3}) {
        INFO("n " << n << ", count " << count << ", regime " << regime << ", W " << W);
        std::vector<std::int64_t> y(count);
        for (std::size_t k = 0; k < count; ++k) y[k] = static_cast<std::int64_t>((k * 7 + 3) % n);
        const auto z = xent_cases::logits<T>(n, count, regime, y);
        // One column past the tile holds a sentinel: the kernel writes `count` columns only.
        std::vector<T> dz(n * (count + 1), T(-7)), dz_col(n * count);
        regula::kernels::XentTerms terms[16];
        regula::kernels::softmax_xent_hard_tile<T>(z.data(), n, n, count, y.data(), gamma, g,
                                                   dz.data(), n, terms);
        regula::kernels::XentTerms no_dz[16];
        regula::kernels::softmax_xent_hard_tile<T>(z.data(), n, n, count, y.data(), gamma, g,
                                                   static_cast<T*>(nullptr), n, no_dz);
        for (std::size_t r = 0; r < n; ++r) CHECK(dz[count * n + r] == T(-7));
        for (std::size_t k = 0; k < count; ++k) {
          const T* zk = z.data() + k * n;
          const auto yk = static_cast<std::size_t>(y[k]);
          const regula::kernels::XentTerms col = regula::kernels::softmax_xent_hard_terms<T>(
              zk, n, yk, T(0), gamma, g, dz_col.data() + k * n);
          // Long-double reference: ℓ = log(S/e_y), dz_j = g·e_j/S, dz_y = −g·R/S.
          long double m = static_cast<long double>(zk[0]);
          for (std::size_t r = 1; r < n; ++r) m = std::max(m, static_cast<long double>(zk[r]));
          long double S = 0, R = 0;
          for (std::size_t r = 0; r < n; ++r) {
            const long double e = std::exp(static_cast<long double>(zk[r]) - m);
            S += e;
            if (r != yk) R += e;
          }
          const long double ey = std::exp(static_cast<long double>(zk[yk]) - m);
          const long double loss_ref = std::log1p(R / ey);
          const double loss = regula::kernels::xent_finish(terms[k]);
          CHECK(loss == regula::kernels::xent_finish(no_dz[k]));  // the same with or without dz
          CHECK(terms[k].kind == col.kind);
          // exp(z − m) has condition number |z − m|: the rounding of z − m alone moves each e_j by
          // |z_j − m|·ε relative, in every implementation.
          long double span = 0;
          for (std::size_t r = 0; r < n; ++r)
            span = std::max(span, m - static_cast<long double>(zk[r]));
          const double tol_loss =
              8.0 * (static_cast<double>(n) + static_cast<double>(span)) * static_cast<double>(eps);
          CHECK(std::abs(static_cast<long double>(loss) - loss_ref) <=
                static_cast<long double>(tol_loss) * loss_ref + 1e-300L);
          CHECK(std::abs(loss - regula::kernels::xent_finish(col)) <=
                tol_loss * std::abs(loss) + 1e-300);
          for (std::size_t r = 0; r < n; ++r) {
            const long double ref = r == yk ? -static_cast<long double>(g) * R / S
                                            : static_cast<long double>(g) *
                                                  std::exp(static_cast<long double>(zk[r]) - m) / S;
            const T d = dz[k * n + r];
            const long double floor = static_cast<long double>(std::numeric_limits<T>::min());
            INFO("column " << k << ", class " << r << ": " << d << " vs "
                           << static_cast<double>(ref));
            const long double cond = 1 + m - static_cast<long double>(zk[r]);
            CHECK(std::abs(static_cast<long double>(d) - ref) <=
                  16 * static_cast<long double>(eps) * cond * std::abs(ref) + floor);
            const T dc = dz_col[k * n + r];
            CHECK(std::abs(d - dc) <= T(32) * eps * std::abs(dc) + std::numeric_limits<T>::min());
          }
        }
      }
    }
  }
}
