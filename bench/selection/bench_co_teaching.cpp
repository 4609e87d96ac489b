// A whole Co-teaching step's loss-side work: two per-sample cross-entropies with gradients, two
// selections, two masked gradients. Group `coteaching`; bench/anchors/coteaching.py times the
// same steps in PyTorch.
#include <string>

#include <benchmark/benchmark.h>

#include "regula/losses/cross_entropy.hpp"
#include "regula/selection/co_teaching.hpp"

#include "bench_support.hpp"

namespace {

void step(benchmark::State& state, regula::Index batch) {
  const regula::Index classes = 10;
  auto d1 = regula::bench::uniform_data<float>(static_cast<std::size_t>(classes * batch), 1);
  auto d2 = regula::bench::uniform_data<float>(static_cast<std::size_t>(classes * batch), 2);
  const Eigen::Map<regula::Matrix<float>> z1(d1.data(), classes, batch),
      z2(d2.data(), classes, batch);
  regula::Labels y(batch);
  for (regula::Index i = 0; i < batch; ++i) y(i) = (i * 7) % classes;
  regula::Vector<float> l1(batch), l2(batch);
  regula::Matrix<float> g1(classes, batch), g2(classes, batch);
  regula::CoTeaching<float> ct;
  for (auto _ : state) {
    regula::cross_entropy_per_sample(z1, y, l1, g1);
    regula::cross_entropy_per_sample(z2, y, l2, g2);
    const auto r = ct.exchange(l1, l2, 0.5, g1, g2);
    benchmark::DoNotOptimize(r.loss1);
    benchmark::DoNotOptimize(g2.data());
    benchmark::ClobberMemory();
  }
}

int register_all() {
  for (const regula::Index b : {regula::Index{128}, regula::Index{4096}}) {
    benchmark::RegisterBenchmark(("coteaching/step_B" + std::to_string(b) + "_C10/regula").c_str(),
                                 [b](benchmark::State& s) { step(s, b); })
        ->UseRealTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
