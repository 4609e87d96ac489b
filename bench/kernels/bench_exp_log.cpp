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

// The functions as types with an always-inlined apply, so that each loop body is the function
// itself (a lambda called through a template parameter was left out of line for regula's,
// which timed the call instead of the exp).
struct ExpRegula {
  REGULA_ALWAYS_INLINE static B apply(const B& v) noexcept { return regula::kernels::exp_batch(v); }
};
struct ExpXsimd {
  REGULA_ALWAYS_INLINE static B apply(const B& v) noexcept { return xsimd::exp(v); }
};
struct LogRegula {
  REGULA_ALWAYS_INLINE static B apply(const B& v) noexcept { return regula::kernels::log_batch(v); }
};
struct LogXsimd {
  REGULA_ALWAYS_INLINE static B apply(const B& v) noexcept { return xsimd::log(v); }
};

template <class F, bool Log>
void run(benchmark::State& state) {
  auto x = regula::bench::uniform_data<float>(kN);  // [-1, 1)
  for (float& v : x) v = Log ? 4.0f * (v + 1.0f) + 1e-3f : 4.0f * v;
  std::vector<float> y(kN);
  for (auto _ : state) {
    for (std::size_t i = 0; i + B::size <= kN; i += B::size)
      F::apply(B::load_unaligned(x.data() + i)).store_unaligned(y.data() + i);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kN));
}

}  // namespace

BENCHMARK_TEMPLATE(run, ExpRegula, false)->Name("elementary/exp_64Ki/regula")->UseRealTime();
BENCHMARK_TEMPLATE(run, ExpXsimd, false)->Name("elementary/exp_64Ki/xsimd")->UseRealTime();
BENCHMARK_TEMPLATE(run, LogRegula, true)->Name("elementary/log_64Ki/regula")->UseRealTime();
BENCHMARK_TEMPLATE(run, LogXsimd, true)->Name("elementary/log_64Ki/xsimd")->UseRealTime();

BENCHMARK_MAIN();
