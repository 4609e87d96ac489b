#include <cstdint>
#include <vector>

#include "regula/core/stream.hpp"

#include "kernels/layer_isa_cases.hpp"
#include "kernels/simd_cases.hpp"

TEST_CASE("Element i takes the documented 16 bits of the documented block", "[kernels][dropout]") {
  // The layout promised in kernels/dropout.hpp, restated independently of the kernel.
  const regula::Stream s(2024, 3, 1000);
  const std::uint32_t threshold = 30000;
  const regula::kernels::DropoutDraw d{s.key(), s.subsequence(), s.offset(), threshold};
  for (std::size_t i = 0; i < 1024; ++i) {
    const regula::PhiloxBlock block = s.block(16 * (i / 128) + i % 16);
    const std::uint32_t word = block[(i / 16) % 4];
    const std::uint32_t u = ((i / 64) % 2 == 0) ? (word & 0xFFFFU) : (word >> 16);
    std::uint64_t keep[2];
    regula::kernels::dropout_tile_keep_reference(d, i / 128, keep);
    const bool kept = ((keep[(i % 128) / 64] >> (i % 64)) & 1U) != 0;
    REQUIRE(kept == (u < threshold));
  }
}

TEST_CASE("Blocks used by a call: 16 per started tile", "[kernels][dropout]") {
  CHECK(regula::kernels::dropout_blocks(0) == 0);
  CHECK(regula::kernels::dropout_blocks(1) == 16);
  CHECK(regula::kernels::dropout_blocks(128) == 16);
  CHECK(regula::kernels::dropout_blocks(129) == 32);
  CHECK(regula::kernels::dropout_mask_words(129) == 4);
}
