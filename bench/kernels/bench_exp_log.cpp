// regula's own float exp and log (kernels/exp_log.hpp) against xsimd's, over 64Ki floats that
// stay in L1/L2: exp over [-4, 4) (the exp row of the exp-bound kernels), log over (0, 8].
// Names: elementary/exp_64Ki/{regula,xsimd} and elementary/log_64Ki/{regula,xsimd}; the ratio is
// xsimd's time over regula's.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/kernels/exp_log.hpp"

#include "bench_support.hpp"

namespace {

using B = xsimd::batch<float, regula::default_arch>;
constexpr std::size_t kN = 65536;

template <class F>
void run(benchmark::State& state, bool log, F&& f) {
  auto x = regula::bench::uniform_data<float>(kN);  // [-1, 1)
  for (float& v : x) v = log ? 4.0f * (v + 1.0f) + 1e-3f : 4.0f * v;
  std::vector<float> y(kN);
  for (auto _ : state) {
    for (std::size_t i = 0; i + B::size <= kN; i += B::size)
      f(B::load_unaligned(x.data() + i)).store_unaligned(y.data() + i);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kN));
}

void exp_regula(benchmark::State& s) {
  run(s, false, [](const B& v) noexcept { return regula::kernels::exp_batch(v); });
}
void exp_xsimd(benchmark::State& s) {
  run(s, false, [](const B& v) noexcept { return xsimd::exp(v); });
}
void log_regula(benchmark::State& s) {
  run(s, true, [](const B& v) noexcept { return regula::kernels::log_batch(v); });
}
void log_xsimd(benchmark::State& s) {
  run(s, true, [](const B& v) noexcept { return xsimd::log(v); });
}

}  // namespace

BENCHMARK(exp_regula)->Name("elementary/exp_64Ki/regula")->UseRealTime();
BENCHMARK(exp_xsimd)->Name("elementary/exp_64Ki/xsimd")->UseRealTime();
BENCHMARK(log_regula)->Name("elementary/log_64Ki/regula")->UseRealTime();
BENCHMARK(log_xsimd)->Name("elementary/log_64Ki/xsimd")->UseRealTime();

BENCHMARK_MAIN();
