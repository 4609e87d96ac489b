#include <atomic>
#include <vector>

#include "regula/core/parallel.hpp"

#include "support/catch.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

TEST_CASE("parallel_for_chunks visits every item once, in fixed chunks, for any thread count",
          "[core][parallel]") {
  const int threads = GENERATE(1, 2, 4);
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
  const std::size_t n = 10007;
  const std::size_t chunk = 1000;
  std::vector<int> hits(n, 0);
  std::vector<std::size_t> begin_of(11, 0), end_of(11, 0);
  std::atomic<int> calls{0};
  regula::parallel_for_chunks(n, chunk, [&](std::size_t c, std::size_t b, std::size_t e) noexcept {
    begin_of[c] = b;
    end_of[c] = e;
    for (std::size_t i = b; i < e; ++i) ++hits[i];
    ++calls;
  });
  CHECK(calls == 11);
  for (std::size_t c = 0; c < 11; ++c) {
    CHECK(begin_of[c] == c * chunk);
    CHECK(end_of[c] == (c == 10 ? n : (c + 1) * chunk));
  }
  for (int h : hits) REQUIRE(h == 1);
  INFO("threads " << threads << ", max_threads " << regula::max_threads());
#if defined(_OPENMP)
  CHECK(regula::max_threads() == threads);
  omp_set_num_threads(1);
#endif
}

TEST_CASE("parallel_for_chunks does nothing on an empty range", "[core][parallel]") {
  bool called = false;
  regula::parallel_for_chunks(
      0, 16, [&](std::size_t, std::size_t, std::size_t) noexcept { called = true; });
  CHECK_FALSE(called);
}
