#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/selection/label_noise.hpp"

#include "support/catch.hpp"

namespace {

std::vector<std::int64_t> clean_labels(std::size_t n, std::int64_t c) {
  std::vector<std::int64_t> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<std::int64_t>(i) % c;
  return y;
}

bool within_5_sigma(double observed, double p, std::size_t n) {
  return std::abs(observed - p) < 5.0 * std::sqrt(p * (1 - p) / static_cast<double>(n));
}

}  // namespace

TEST_CASE("Symmetric-exclusive noise: realized rate near the target, never the own class",
          "[selection][noise]") {
  const auto y = clean_labels(60000, 10);
  const auto out =
      regula::inject_label_noise(y, 10, {regula::LabelNoise::symmetric_exclusive, 0.5, 1});
  CHECK(within_5_sigma(out.realized_rate, 0.5, y.size()));
  std::vector<std::size_t> count(10, 0);
  for (std::size_t i = 0; i < y.size(); ++i) {
    REQUIRE((out.is_noisy[i] != 0) == (out.labels[i] != y[i]));
    if (y[i] == 3 && out.is_noisy[i] != 0) ++count[static_cast<std::size_t>(out.labels[i])];
  }
  CHECK(count[3] == 0);
  // Flips from class 3 spread evenly over the 9 others.
  std::size_t flipped = 0;
  for (auto k : count) flipped += k;
  for (std::size_t k = 0; k < 10; ++k) {
    if (k != 3)
      CHECK(within_5_sigma(static_cast<double>(count[k]) / static_cast<double>(flipped), 1.0 / 9,
                           flipped));
  }
}

TEST_CASE("Symmetric-inclusive noise may redraw the own class: rate·(C−1)/C changes",
          "[selection][noise]") {
  const auto y = clean_labels(60000, 10);
  const auto out =
      regula::inject_label_noise(y, 10, {regula::LabelNoise::symmetric_inclusive, 0.5, 2});
  CHECK(within_5_sigma(out.realized_rate, 0.45, y.size()));
}

TEST_CASE("Pair flips go only to (i + 1) mod C", "[selection][noise]") {
  const auto y = clean_labels(50000, 10);
  const auto out = regula::inject_label_noise(y, 10, {regula::LabelNoise::pair, 0.45, 3});
  CHECK(within_5_sigma(out.realized_rate, 0.45, y.size()));
  for (std::size_t i = 0; i < y.size(); ++i) {
    REQUIRE((out.labels[i] == y[i] || out.labels[i] == (y[i] + 1) % 10));
  }
}

TEST_CASE("A transition matrix sets the noisy-label distribution per class", "[selection][noise]") {
  regula::Matrix<double> t(3, 3);
  t << 0.7, 0.3, 0.0,  //
      0.0, 1.0, 0.0,   //
      0.2, 0.2, 0.6;
  const auto y = clean_labels(30000, 3);
  const auto out = regula::inject_label_noise(y, 3, {regula::LabelNoise::transition, 0.0, 4}, t);
  std::size_t from0 = 0, to1 = 0, from1_changed = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (y[i] == 0) {
      ++from0;
      to1 += out.labels[i] == 1 ? 1U : 0U;
      REQUIRE(out.labels[i] != 2);
    }
    if (y[i] == 1) from1_changed += out.is_noisy[i];
  }
  CHECK(within_5_sigma(static_cast<double>(to1) / static_cast<double>(from0), 0.3, from0));
  CHECK(from1_changed == 0);
  CHECK(within_5_sigma(out.realized_rate, (0.3 + 0.0 + 0.4) / 3, y.size()));
}

TEST_CASE("The same seed gives the same labels; another seed others", "[selection][noise]") {
  const auto y = clean_labels(1000, 10);
  const regula::LabelNoiseOptions o{regula::LabelNoise::symmetric_exclusive, 0.4, 99};
  CHECK(regula::inject_label_noise(y, 10, o).labels == regula::inject_label_noise(y, 10, o).labels);
  auto other = o;
  other.seed = 100;
  CHECK(regula::inject_label_noise(y, 10, o).labels !=
        regula::inject_label_noise(y, 10, other).labels);
}

TEST_CASE("Noise injection rejects bad input, naming the parameter", "[selection][noise][errors]") {
  const std::vector<std::int64_t> y{0, 1, 5};
  CHECK_THROWS_WITH(regula::inject_label_noise(y, 3, {}),
                    "regula::inject_label_noise: clean[2] must be in [0, 3), got 5");
  CHECK_THROWS_WITH(regula::inject_label_noise({0}, 3, {regula::LabelNoise::pair, 1.5, 0}),
                    "regula::inject_label_noise: rate must be in [0, 1], got 1.5");
  CHECK_THROWS_AS(regula::inject_label_noise({0}, 1, {}), regula::invalid_argument);
  regula::Matrix<double> bad(2, 2);
  bad << 0.5, 0.4, 0.0, 1.0;
  CHECK_THROWS_WITH(
      regula::inject_label_noise({0, 1}, 2, {regula::LabelNoise::transition, 0, 0}, bad),
      "regula::inject_label_noise: transition row 0 must sum to 1, got 0.9");
}
