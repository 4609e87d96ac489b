// Sinkhorn KD at B = 256, C = 1000, 20 iterations, float, one thread, end to end (softmax, the
// B x B L1 cost matrix, the iterations): forward (case forward_256x1000, against POT's ot.dist
// cityblock + ot.sinkhorn) and forward+backward (unrolled and envelope, against SinKD's loss.py
// under PyTorch autograd). bench/anchors/sinkhorn.py adds the "pot" and "pytorch" rows.
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/losses/sinkhorn_kd.hpp"

#include "bench_support.hpp"

namespace {

using Map = Eigen::Map<regula::Matrix<float>>;
constexpr std::int64_t kB = 256, kC = 1000;

void run(benchmark::State& state, bool backward, regula::SinkhornGradMode mode) {
  const auto n = static_cast<std::size_t>(kB * kC);
  auto z = regula::bench::uniform_data<float>(n, 1);
  auto v = regula::bench::uniform_data<float>(n, 2);
  for (float& x : z) x *= 4.0f;
  for (float& x : v) x *= 4.0f;
  std::vector<float> dz(n);
  const Map zm(z.data(), kC, kB), vm(v.data(), kC, kB);
  Map dm(dz.data(), kC, kB);
  regula::SinkhornKDWorkspace<float> ws;
  const auto opt = regula::SinkhornKDOptions{}.with_grad_mode(mode);
  for (auto _ : state) {
    float loss = backward ? regula::sinkhorn_kd<float>(zm, vm, dm, ws, opt)
                          : regula::sinkhorn_kd<float>(zm, vm, ws, opt);
    benchmark::DoNotOptimize(loss);
    benchmark::DoNotOptimize(dz.data());
    benchmark::ClobberMemory();
  }
}

int register_all() {
  using M = regula::SinkhornGradMode;
  benchmark::RegisterBenchmark("sinkhorn/forward_256x1000/regula",
                               [](benchmark::State& s) { run(s, false, M::unrolled); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("sinkhorn/fwd_bwd_unrolled_256x1000/regula",
                               [](benchmark::State& s) { run(s, true, M::unrolled); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  benchmark::RegisterBenchmark("sinkhorn/fwd_bwd_envelope_256x1000/regula",
                               [](benchmark::State& s) { run(s, true, M::envelope); })
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
