#include <cmath>
#include <cstdint>
#include <vector>

#include "regula/core/stream.hpp"

#include "support/catch.hpp"

TEST_CASE("Stream blocks are Philox blocks at (offset, subsequence) under the seed",
          "[core][stream]") {
  const regula::Stream s(0x0000000600000005ULL, 0x0000000400000003ULL, 0x0000000200000001ULL);
  CHECK(s.block() == regula::philox4x32_10({1, 2, 3, 4}, {5, 6}));
  CHECK(s.block(1) == regula::philox4x32_10({2, 2, 3, 4}, {5, 6}));
  CHECK(s.substream(9) == regula::Stream(s.seed(), 9, 0));
}

TEST_CASE("take and skip advance by whole blocks", "[core][stream]") {
  regula::Stream s(1);
  CHECK(s.take(5) == 0);
  CHECK(s.offset() == 5);
  s.skip(3);
  CHECK(s.offset() == 8);
}

TEMPLATE_TEST_CASE("uniform draws follow the documented bit layout and advance exactly",
                   "[core][stream]", float, double) {
  regula::Stream s(42, 7);
  const regula::Stream start = s;
  std::vector<TestType> u(9);
  s.uniform(u.data(), u.size());
  constexpr std::size_t per_block = std::is_same_v<TestType, float> ? 4 : 2;
  CHECK(s.offset() == (9 + per_block - 1) / per_block);
  for (std::size_t i = 0; i < u.size(); ++i) {
    const regula::PhiloxBlock w = start.block(i / per_block);
    TestType expected;
    if constexpr (std::is_same_v<TestType, float>) {
      expected = static_cast<float>(w[i % 4] >> 8) * 0x1.0p-24F;
    } else {
      const std::size_t j = i % 2;
      expected =
          static_cast<double>((std::uint64_t{w[2 * j + 1]} << 21) | (w[2 * j] >> 11)) * 0x1.0p-53;
    }
    CHECK(u[i] == expected);
  }
  // Drawing in two calls gives the same numbers when the first call ends on a block boundary.
  regula::Stream a(42, 7);
  std::vector<TestType> v(2 * per_block);
  a.uniform(v.data(), per_block);
  a.uniform(v.data() + per_block, per_block);
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == u[i]);
}

TEMPLATE_TEST_CASE("uniforms lie in [0, 1) with mean 1/2 and variance 1/12",
                   "[core][stream][stats]", float, double) {
  regula::Stream s(3);
  const std::size_t n = std::size_t{1} << 20;
  std::vector<TestType> u(n);
  s.uniform(u.data(), n);
  double sum = 0, sum2 = 0;
  for (TestType v : u) {
    REQUIRE(v >= TestType(0));
    REQUIRE(v < TestType(1));
    sum += static_cast<double>(v);
    sum2 += static_cast<double>(v) * static_cast<double>(v);
  }
  const double mean = sum / n;
  const double var = sum2 / n - mean * mean;
  CHECK(std::abs(mean - 0.5) < 5 * std::sqrt(1.0 / 12.0 / n));
  CHECK(std::abs(var - 1.0 / 12.0) < 5 * std::sqrt(1.0 / 180.0 / n));
}

TEMPLATE_TEST_CASE("normals have mean 0, variance 1 and normal tails", "[core][stream][stats]",
                   float, double) {
  regula::Stream s(5);
  const std::size_t n = std::size_t{1} << 20;
  std::vector<TestType> z(n);
  s.normal(z.data(), n);
  CHECK(s.offset() == n / 4);
  double sum = 0, sum2 = 0, sum4 = 0;
  std::size_t beyond2 = 0;
  for (TestType v : z) {
    const double d = static_cast<double>(v);
    sum += d;
    sum2 += d * d;
    sum4 += d * d * d * d;
    beyond2 += std::abs(d) > 2.0 ? 1U : 0U;
  }
  CHECK(std::abs(sum / n) < 5 / std::sqrt(double(n)));
  CHECK(std::abs(sum2 / n - 1.0) < 5 * std::sqrt(2.0 / n));
  CHECK(std::abs(sum4 / n - 3.0) < 5 * std::sqrt(96.0 / n));
  const double p2 = 0.04550026389635842;  // P(|Z| > 2)
  CHECK(std::abs(double(beyond2) / n - p2) < 5 * std::sqrt(p2 * (1 - p2) / n));
}

TEST_CASE("different subsequences and seeds give different blocks", "[core][stream]") {
  const regula::Stream a(1, 0), b(1, 1), c(2, 0);
  CHECK(a.block() != b.block());
  CHECK(a.block() != c.block());
  CHECK(a.block(1) != a.block());
}
