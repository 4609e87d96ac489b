// The SIMD distillation kernels against their scalar reference twins on ragged sizes.
#include "regula/kernels/kd.hpp"

#include <cmath>
#include <vector>

#include "support/catch.hpp"

namespace {

template <class T>
std::vector<T> data(std::size_t n, unsigned salt, double scale) {
  std::vector<T> x(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double u = std::sin(1.3 * static_cast<double>(i) + salt) * 43758.5453;
    x[i] = static_cast<T>(scale * (2.0 * (u - std::floor(u)) - 1.0));
  }
  return x;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T>
double max_rel(const std::vector<T>& a, const std::vector<T>& b) {
  double w = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    w = std::max(w, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])) /
                        std::max(1e-3, std::abs(static_cast<double>(b[i]))));
  }
  return w;
}

TEMPLATE_TEST_CASE("KD kernels agree with their scalar references", "[kernels][kd]", float, double) {
  using T = TestType;
  namespace k = regula::kernels;
  constexpr std::size_t W = regula::simd::width<T>;
  for (std::size_t n : {std::size_t{2}, W - 1, W, W + 1, 2 * W + 3, std::size_t{100}, std::size_t{1000}}) {
    if (n < 2) continue;
    CAPTURE(n);
    const auto z = data<T>(n, 1, 6.0), v = data<T>(n, 2, 6.0);
    std::vector<T> a(n), b(n), sa(n), sb(n);
    const T kz = T(0.25), kv = T(0.5), gs = T(0.75);
    for (bool with_scratch : {true, false}) {
      const double la = k::kd_kl_column<T>(z.data(), v.data(), n, kz, kv, gs, a.data(), with_scratch ? sa.data() : nullptr);
      const double lb = k::kd_kl_column_reference<T>(z.data(), v.data(), n, kz, kv, gs, b.data(), with_scratch ? sb.data() : nullptr);
      CHECK(la == Approx(lb).epsilon(tol<T>()).margin(tol<T>()));
      CHECK(max_rel(a, b) < tol<T>());
      for (std::size_t t : {std::size_t{0}, n / 2, n - 1}) {
        const auto ra = k::dkd_column<T>(z.data(), v.data(), n, t, kz, T(1), T(8), gs, a.data(), with_scratch ? sa.data() : nullptr);
        const auto rb = k::dkd_column_reference<T>(z.data(), v.data(), n, t, kz, T(1), T(8), gs, b.data(), with_scratch ? sb.data() : nullptr);
        CHECK(ra.tckd == Approx(rb.tckd).epsilon(tol<T>()).margin(tol<T>()));
        CHECK(ra.nckd == Approx(rb.nckd).epsilon(tol<T>()).margin(tol<T>()));
        CHECK(max_rel(a, b) < tol<T>());
      }
    }
    const double ra = k::reverse_kl_column<T>(z.data(), v.data(), n, kz, gs, a.data());
    const double rb = k::reverse_kl_column_reference<T>(z.data(), v.data(), n, kz, gs, b.data());
    CHECK(ra == Approx(rb).epsilon(tol<T>()).margin(tol<T>()));
    CHECK(max_rel(a, b) < tol<T>());
    // Loss-only calls give the same value.
    const double lk = k::kd_kl_column<T>(z.data(), v.data(), n, kz, kv, gs, a.data(), sa.data());
    CHECK(k::kd_kl_column<T>(z.data(), v.data(), n, kz, kv, gs, nullptr, nullptr) == Approx(lk).epsilon(1e-12));
  }
}

}  // namespace
