// SIMD-versus-scalar cases of the Sinkhorn KD kernels (kernels/sinkhorn.hpp), compiled once per
// instruction set (tests/kernels/test_isa.cpp) and in the default build
// (tests/kernels/test_sinkhorn.cpp). The kernels reorder sums across lanes and use xsimd's exp
// and log, so they agree with their twins to a few roundings, not bit for bit; min_sum_4x4's
// minima and sign_accumulate_4's signs are exact, their sums reordered.
#ifndef REGULA_TESTS_KERNELS_SINKHORN_CASES_HPP
#define REGULA_TESTS_KERNELS_SINKHORN_CASES_HPP

#include <cmath>
#include <cstddef>
#include <vector>

#include "regula/core/stream.hpp"
#include "regula/kernels/sinkhorn.hpp"

#include "support/catch.hpp"

namespace regula::test::sinkhorn {

template <class T>
std::vector<T> uniform(std::size_t n, std::uint64_t seed, double lo, double hi) {
  std::vector<double> u(n);
  regula::Stream s(seed);
  s.uniform(u.data(), n);
  std::vector<T> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<T>(lo + (hi - lo) * u[i]);
  return out;
}

/// |a − b| ≤ tol·(|b| + scale) elementwise.
template <class T>
bool close(const std::vector<T>& a, const std::vector<T>& b, double tol, double scale = 0.0) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    if (!(std::abs(x - y) <= tol * (std::abs(y) + scale))) return false;
  }
  return true;
}

template <class T>
constexpr double tol() {
  return std::is_same_v<T, float> ? 2e-6 : 4e-15;
}

inline const std::size_t sizes[] = {1, 2, 3, 7, 8, 15, 16, 17, 33, 64, 100};

}  // namespace regula::test::sinkhorn

TEMPLATE_TEST_CASE("Sinkhorn half-steps and log-sum-exp rows equal their scalar twins",
                   "[kernels][sinkhorn][simd]", float, double) {
  using T = TestType;
  namespace st = regula::test::sinkhorn;
  namespace kk = regula::kernels;
  for (const std::size_t n : st::sizes) {
    INFO("n = " << n);
    const auto k = st::uniform<T>(n * n, 1 + n, 0.05, 1.0);
    const auto pot = st::uniform<T>(n, 2 + n, -3.0, 3.0);
    const auto scal = st::uniform<T>(n, 4 + n, 0.1, 2.0);  // scalings are positive
    for (const bool potential : {true, false}) {
      const T* in = potential ? pot.data() : scal.data();
      std::vector<T> s1(n), o1(n), s2(n), o2(n);
      kk::sinkhorn_scaled_half<T>(k.data(), n, in, potential, s1.data(), o1.data());
      kk::sinkhorn_scaled_half_reference<T>(k.data(), n, in, potential, s2.data(), o2.data());
      CHECK(st::close(s1, s2, st::tol<T>() * static_cast<double>(n)));
      CHECK(st::close(o1, o2, st::tol<T>() * static_cast<double>(n), 1.0));
    }
    const auto w = st::uniform<T>(n * n, 3 + n, 0.0, 2.0);
    std::vector<T> a(n), b(n);
    kk::neg_lse_rows<T>(w.data(), n, n, pot.data(), n, T(10), a.data());
    kk::neg_lse_rows_reference<T>(w.data(), n, n, pot.data(), n, T(10), b.data());
    CHECK(st::close(a, b, st::tol<T>() * 4.0, 1.0));
    const T ls = kk::lane_sum<T>(pot.data(), n), lr = kk::lane_sum_reference<T>(pot.data(), n);
    CHECK(std::abs(static_cast<double>(ls - lr)) <= st::tol<T>() * static_cast<double>(n) * 3.0);
  }
}

TEMPLATE_TEST_CASE("Sinkhorn cost tiles and their sign sums equal their scalar twins",
                   "[kernels][sinkhorn][simd]", float, double) {
  using T = TestType;
  namespace st = regula::test::sinkhorn;
  namespace kk = regula::kernels;
  for (const std::size_t n : st::sizes) {
    INFO("n = " << n);
    std::vector<std::vector<T>> cols;
    for (std::uint64_t c = 0; c < 8; ++c)
      cols.push_back(st::uniform<T>(n, 10 + c + 100 * n, 0.0, 1.0));
    cols[5] = cols[1];  // a column against itself: Σ min(a, a) = Σ a
    const T* a[4] = {cols[0].data(), cols[1].data(), cols[2].data(), cols[3].data()};
    const T* b[4] = {cols[4].data(), cols[5].data(), cols[6].data(), cols[7].data()};
    std::vector<T> s1(16), s2(16);
    kk::min_sum_4x4<T>(a, b, n, s1.data());
    kk::min_sum_4x4_reference<T>(a, b, n, s2.data());
    CHECK(st::close(s1, s2, st::tol<T>() * static_cast<double>(n)));
    // The self pair gives the lane_sum of the column bit for bit (the cost's zero diagonal).
    CHECK(s1[4 * 1 + 1] == kk::lane_sum<T>(cols[1].data(), n));
    const std::size_t m = 5;
    std::vector<T> bm(m * n);
    for (std::size_t j = 0; j < m; ++j) {
      for (std::size_t c = 0; c < n; ++c) bm[j * n + c] = cols[(j + 2) % 8][c];
    }
    const auto wts = st::uniform<T>(4 * m, 7 + n, -1.0, 1.0);
    for (const std::size_t rows : {std::size_t{4}, std::size_t{3}, std::size_t{1}}) {
      std::vector<std::vector<T>> acc1(4, std::vector<T>(n, T(-7))), acc2 = acc1;
      T* p1[4] = {acc1[0].data(), acc1[1].data(), acc1[2].data(), acc1[3].data()};
      T* p2[4] = {acc2[0].data(), acc2[1].data(), acc2[2].data(), acc2[3].data()};
      kk::sign_accumulate_4<T>(a, rows, bm.data(), n, m, wts.data(), n, p1);
      kk::sign_accumulate_4_reference<T>(a, rows, bm.data(), n, m, wts.data(), n, p2);
      for (std::size_t r = 0; r < 4; ++r)
        CHECK(st::close(acc1[r], acc2[r], st::tol<T>() * 8.0, 1.0));
    }
  }
}

TEMPLATE_TEST_CASE("Sinkhorn plan and adjoint columns equal their scalar twins",
                   "[kernels][sinkhorn][simd]", float, double) {
  using T = TestType;
  namespace st = regula::test::sinkhorn;
  namespace kk = regula::kernels;
  for (const std::size_t n : st::sizes) {
    INFO("n = " << n);
    const auto w = st::uniform<T>(n, 20 + n, 0.0, 2.0);
    const auto f = st::uniform<T>(n, 21 + n, -2.0, 2.0);
    const auto fbar = st::uniform<T>(n, 22 + n, -1.0, 1.0);
    const T gj = T(0.25), ie = T(3), gb = T(-0.5);
    std::vector<T> p1(n), p2(n), r1(n, T(1)), r2(n, T(1));
    kk::sinkhorn_plan_column<T>(w.data(), f.data(), gj, ie, n, p1.data(), r1.data());
    kk::sinkhorn_plan_column_reference<T>(w.data(), f.data(), gj, ie, n, p2.data(), r2.data());
    CHECK(st::close(p1, p2, st::tol<T>() * 4.0));
    CHECK(st::close(r1, r2, st::tol<T>() * 4.0));
    std::vector<T> wb1(n, T(0.5)), wb2 = wb1, fb1(n, T(0.5)), fb2 = fb1;
    kk::sinkhorn_col_adjoint<T>(w.data(), f.data(), gj, ie, gb, n, wb1.data(), fb1.data());
    kk::sinkhorn_col_adjoint_reference<T>(w.data(), f.data(), gj, ie, gb, n, wb2.data(),
                                          fb2.data());
    CHECK(st::close(wb1, wb2, st::tol<T>() * 8.0, 1.0));
    CHECK(st::close(fb1, fb2, st::tol<T>() * 8.0, 1.0));
    std::vector<T> wc1(n, T(0.5)), wc2 = wc1;
    const T s1 =
        kk::sinkhorn_row_adjoint<T>(w.data(), f.data(), gj, ie, fbar.data(), n, wc1.data());
    const T s2 = kk::sinkhorn_row_adjoint_reference<T>(w.data(), f.data(), gj, ie, fbar.data(), n,
                                                       wc2.data());
    CHECK(st::close(wc1, wc2, st::tol<T>() * 8.0, 1.0));
    CHECK(std::abs(static_cast<double>(s1 - s2)) <= st::tol<T>() * 8.0 * static_cast<double>(n));
  }
}

#endif  // REGULA_TESTS_KERNELS_SINKHORN_CASES_HPP
