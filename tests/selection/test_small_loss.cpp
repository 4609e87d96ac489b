#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "regula/core/stream.hpp"
#include "regula/selection/small_loss.hpp"

#include "support/catch.hpp"

namespace {

/// The specification, written the slow and obvious way: stable sort by loss with NaN last.
template <class T>
std::vector<regula::Index> reference(const std::vector<T>& loss, std::size_t keep) {
  std::vector<regula::Index> idx(loss.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](regula::Index a, regula::Index b) {
    const T la = loss[static_cast<std::size_t>(a)], lb = loss[static_cast<std::size_t>(b)];
    if (std::isnan(la) || std::isnan(lb)) return !std::isnan(la) && std::isnan(lb);
    return la < lb;
  });
  idx.resize(keep);
  return idx;
}

/// Losses with many ties, a few NaNs, infinities and signed zeros.
template <class T>
std::vector<T> nasty_losses(std::size_t n, std::uint64_t seed) {
  regula::Stream s(seed);
  std::vector<double> u(n);
  s.uniform(u.data(), n);
  std::vector<T> loss(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double v = u[i];
    if (v < 0.05)
      loss[i] = std::numeric_limits<T>::quiet_NaN();
    else if (v < 0.07)
      loss[i] = std::numeric_limits<T>::infinity();
    else if (v < 0.09)
      loss[i] = T(-0.0);
    else if (v < 0.11)
      loss[i] = T(0.0);
    else
      loss[i] = static_cast<T>(std::floor(v * 20) / 4);  // many exact ties
  }
  return loss;
}

}  // namespace

TEMPLATE_TEST_CASE(
    "Selection equals a stable sort-based reference with ties, NaNs and signed zeros",
    "[selection][small_loss]", float, double) {
  regula::SmallLossSelector<TestType> sel;
  for (const std::size_t n : {1U, 2U, 7U, 64U, 129U, 1000U, 4099U}) {
    const auto loss = nasty_losses<TestType>(n, n);
    for (const double ratio : {0.0, 0.01, 0.3, 0.5, 0.77, 0.95, 1.0}) {
      const auto keep = static_cast<std::size_t>(ratio * static_cast<double>(n));
      const auto expected = reference(loss, keep);
      const auto by_loss = sel.select(loss.data(), n, keep, regula::SelectionOrder::by_loss);
      REQUIRE(by_loss == expected);
      auto sorted_expected = expected;
      std::sort(sorted_expected.begin(), sorted_expected.end());
      const auto by_index = sel.select(loss.data(), n, keep, regula::SelectionOrder::by_index);
      REQUIRE(by_index == sorted_expected);
    }
  }
}

TEST_CASE("NaN losses rank after +inf and ties keep the lower index", "[selection][small_loss]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> loss{nan, 1.0F, inf, 1.0F, -0.0F, 0.0F, nan};
  regula::SmallLossSelector<float> sel;
  using V = std::vector<regula::Index>;
  CHECK(sel.select(loss.data(), loss.size(), 2, regula::SelectionOrder::by_loss) == V{4, 5});
  CHECK(sel.select(loss.data(), loss.size(), 3, regula::SelectionOrder::by_loss) == V{4, 5, 1});
  CHECK(sel.select(loss.data(), loss.size(), 5, regula::SelectionOrder::by_loss) ==
        V{4, 5, 1, 3, 2});
  CHECK(sel.select(loss.data(), loss.size(), 6, regula::SelectionOrder::by_loss) ==
        V{4, 5, 1, 3, 2, 0});
  CHECK(sel.select(loss.data(), loss.size(), 3) == V{1, 4, 5});
}

TEST_CASE("keep_count floors (1 - r)·n but keeps at least one sample", "[selection][small_loss]") {
  CHECK(regula::keep_count(128, 0.5) == 64);
  CHECK(regula::keep_count(128, 0.2) == 102);
  CHECK(regula::keep_count(10, 0.99) == 1);
  CHECK(regula::keep_count(10, 1.0) == 1);
  CHECK(regula::keep_count(0, 0.5) == 0);
  CHECK(regula::keep_count(7, 0.0) == 7);
  CHECK_THROWS_WITH(regula::keep_count(10, 1.5),
                    "regula::keep_count: forget_rate must be in [0, 1], got 1.5");
}

TEST_CASE("Selection rejects keep larger than the batch", "[selection][small_loss][errors]") {
  regula::SmallLossSelector<double> sel;
  const std::vector<double> loss{1, 2, 3};
  CHECK_THROWS_WITH(sel.select(loss.data(), 3, 4),
                    "regula::SmallLossSelector::select: keep must be <= the batch size 3, got 4");
}

TEST_CASE("label_precision counts the clean fraction of a selection", "[selection][small_loss]") {
  const std::vector<std::uint8_t> noisy{0, 1, 0, 1, 0};
  CHECK(regula::label_precision({0, 2, 4}, noisy) == 1.0);
  CHECK(regula::label_precision({0, 1}, noisy) == 0.5);
  CHECK(regula::label_precision({}, noisy) == 1.0);
  CHECK_THROWS_AS(regula::label_precision({5}, noisy), regula::invalid_argument);
}
