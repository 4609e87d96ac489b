// Small-loss selection against a full sort that gives the same indices. Group `coteaching`.
#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/selection/small_loss.hpp"

#include "bench_support.hpp"

namespace {

void regula_select(benchmark::State& state, std::size_t n) {
  const auto loss = regula::bench::uniform_data<float>(n);
  regula::SmallLossSelector<float> sel;
  const std::size_t keep = regula::keep_count(n, 0.5);
  for (auto _ : state) {
    benchmark::DoNotOptimize(sel.select(loss.data(), n, keep).data());
    benchmark::ClobberMemory();
  }
}

/// The obvious implementation: sort all indices by (loss, index), keep the first k.
void full_sort(benchmark::State& state, std::size_t n) {
  const auto loss = regula::bench::uniform_data<float>(n);
  std::vector<regula::Index> idx(n);
  const std::size_t keep = regula::keep_count(n, 0.5);
  for (auto _ : state) {
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](regula::Index a, regula::Index b) {
      const float la = loss[static_cast<std::size_t>(a)], lb = loss[static_cast<std::size_t>(b)];
      return la < lb || (la == lb && a < b);
    });
    benchmark::DoNotOptimize(idx.data() + keep);
    benchmark::ClobberMemory();
  }
}

int register_all() {
  for (const std::size_t n : {std::size_t{128}, std::size_t{4096}, std::size_t{65536}}) {
    const std::string kase = "coteaching/select_" + std::to_string(n);
    benchmark::RegisterBenchmark((kase + "/regula").c_str(), [n](benchmark::State& s) {
      regula_select(s, n);
    })->UseRealTime();
    benchmark::RegisterBenchmark((kase + "/std_sort").c_str(), [n](benchmark::State& s) {
      full_sort(s, n);
    })->UseRealTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
