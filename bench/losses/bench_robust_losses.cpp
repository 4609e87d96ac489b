// The label-probability losses for noisy labels, forward+backward (fused loss and dL/dlogits,
// mean reduction), float, one thread: generalized cross-entropy (q = 0.7) and symmetric
// cross-entropy (α = 0.1, β = 1, A = log 1e-4). Names: robust/<loss>_fwd_bwd_<B>x<C>/<impl>, with
// one vectorized exp over the same elements ("exp") and regula's softmax cross-entropy
// ("regula_ce") as references; bench/anchors/robust.py adds the authors' formulas in PyTorch
// with autograd ("pytorch").
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/generalized_cross_entropy.hpp"
#include "regula/losses/symmetric_cross_entropy.hpp"

#include "bench_support.hpp"

namespace {

using Map = Eigen::Map<regula::Matrix<float>>;

struct Shape {
  std::int64_t batch;
  std::int64_t classes;
};
constexpr Shape kShapes[] = {{512, 10}, {512, 1000}};

// `loss(z, labels, dz)` over the shape's logits, as bench_cross_entropy's.
template <class Loss>
void fwd_bwd(benchmark::State& state, Shape s, Loss&& loss) {
  const auto n = static_cast<std::size_t>(s.batch * s.classes);
  auto x = regula::bench::uniform_data<float>(n);
  for (float& v : x) v *= 4.0f;
  std::vector<float> dz(n);
  regula::Labels labels(s.batch);
  for (std::int64_t i = 0; i < s.batch; ++i) labels[i] = (i * 7919) % s.classes;
  const Map xm(x.data(), s.classes, s.batch);
  Map dm(dz.data(), s.classes, s.batch);
  for (auto _ : state) {
    float l = loss(xm, labels, dm);
    benchmark::DoNotOptimize(l);
    benchmark::DoNotOptimize(dz.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

int register_all() {
  for (const Shape s : kShapes) {
    const std::string shape = std::to_string(s.batch) + "x" + std::to_string(s.classes);
    const auto n = static_cast<std::size_t>(s.batch * s.classes);
    for (const char* name : {"gce", "sce"}) {
      const std::string kase = std::string("robust/") + name + "_fwd_bwd_" + shape;
      const bool gce = name[0] == 'g';
      benchmark::RegisterBenchmark((kase + "/exp").c_str(), [n](benchmark::State& st) {
        regula::bench::exp_reference(st, n);
      })->UseRealTime();
      benchmark::RegisterBenchmark((kase + "/regula_ce").c_str(), [s](benchmark::State& st) {
        fwd_bwd(st, s, [](const Map& z, const regula::Labels& y, Map& d) {
          return regula::cross_entropy(z, y, d);
        });
      })->UseRealTime();
      benchmark::RegisterBenchmark((kase + "/regula").c_str(), [s, gce](benchmark::State& st) {
        fwd_bwd(st, s, [gce](const Map& z, const regula::Labels& y, Map& d) {
          return gce ? regula::generalized_cross_entropy(z, y, d)
                     : regula::symmetric_cross_entropy(z, y, d);
        });
      })->UseRealTime();
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
