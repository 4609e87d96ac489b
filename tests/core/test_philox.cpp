#include <cstdint>
#include <vector>

#include <Random123/philox.h>

#include "regula/core/philox.hpp"
#include "regula/kernels/philox.hpp"

#include "support/catch.hpp"

using regula::PhiloxBlock;

// Known-answer vectors published with Random123 (kat_vectors: philox4x32 10).
TEST_CASE("Philox4x32-10 matches the published known-answer vectors", "[core][philox]") {
  CHECK(regula::philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
        PhiloxBlock{0x6627e8d5U, 0xe169c58dU, 0xbc57ac4cU, 0x9b00dbd8U});
  CHECK(regula::philox4x32_10({0xffffffffU, 0xffffffffU, 0xffffffffU, 0xffffffffU},
                              {0xffffffffU, 0xffffffffU}) ==
        PhiloxBlock{0x408f276dU, 0x41c83b0eU, 0xa20bc7c6U, 0x6d5451fdU});
  CHECK(regula::philox4x32_10({0x243f6a88U, 0x85a308d3U, 0x13198a2eU, 0x03707344U},
                              {0xa4093822U, 0x299f31d0U}) ==
        PhiloxBlock{0xd16cfe09U, 0x94fdccebU, 0x5001e420U, 0x24126ea1U});
}

TEST_CASE("Philox4x32-10 equals Random123's implementation on many counters and keys",
          "[core][philox]") {
  r123::Philox4x32_R<10> oracle;
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;
  auto next = [&state]() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<std::uint32_t>(state);
  };
  for (int trial = 0; trial < 2000; ++trial) {
    const regula::PhiloxCounter c{next(), next(), next(), next()};
    const regula::PhiloxKey k{next(), next()};
    const r123::Philox4x32_R<10>::ctr_type rc = {{c[0], c[1], c[2], c[3]}};
    const r123::Philox4x32_R<10>::key_type rk = {{k[0], k[1]}};
    const auto expected = oracle(rc, rk);
    const PhiloxBlock got = regula::philox4x32_10(c, k);
    for (std::size_t w = 0; w < 4; ++w) REQUIRE(got[w] == expected.v[w]);
  }
}

TEST_CASE("Philox counter layout: block number in words 0-1, subsequence in words 2-3",
          "[core][philox]") {
  CHECK(regula::philox_counter(0x0000000200000001ULL, 0x0000000400000003ULL) ==
        regula::PhiloxCounter{1, 2, 3, 4});
  CHECK(regula::philox_key(0x0000000600000005ULL) == regula::PhiloxKey{5, 6});
}

TEST_CASE("The SIMD block generator equals the scalar one, across the 32-bit carry",
          "[core][philox][simd]") {
  const std::size_t n = GENERATE(std::size_t{1}, std::size_t{3}, std::size_t{15}, std::size_t{16},
                                 std::size_t{17}, std::size_t{100});
  const std::uint64_t first =
      GENERATE(std::uint64_t{0}, std::uint64_t{0xFFFFFFF5ULL}, std::uint64_t{0x1234567890ULL});
  std::vector<std::uint32_t> scalar(4 * n), vectorized(4 * n);
  regula::kernels::philox_blocks_reference({11, 22}, 33, first, n, scalar.data());
  regula::kernels::philox_blocks({11, 22}, 33, first, n, vectorized.data());
  CHECK(scalar == vectorized);
}
