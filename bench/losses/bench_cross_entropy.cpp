// Cross-entropy forward+backward (fused loss and dL/dlogits, mean reduction) over softmax and
// StableMax, against one vectorized exp over the same number of elements. Names:
// softmax/ce_fwd_bwd_<B>x<C>/<impl> and stablemax/ce_fwd_bwd_<B>x<C>/<impl>; the stablemax case
// also carries regula's softmax cross-entropy as impl "regula_softmax", so its ratio is the
// speed-up of StableMax over softmax. softmax/ce_smooth_fwd_bwd_<B>x<C> is softmax cross-entropy
// with label smoothing 0.1. bench/anchors/{softmax,stablemax}.py add PyTorch's rows.
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/losses/cross_entropy.hpp"

#include "bench_support.hpp"

namespace {

using Map = Eigen::Map<regula::Matrix<float>>;

struct Shape {
  std::int64_t batch;
  std::int64_t classes;
};
constexpr Shape kShapes[] = {{512, 10}, {4096, 10}, {512, 1000}, {32, 32000}};

template <regula::Normalizer Norm>
void ce_fwd_bwd(benchmark::State& state, Shape s, double smoothing = 0.0) {
  const auto n = static_cast<std::size_t>(s.batch * s.classes);
  auto x = regula::bench::uniform_data<float>(n);
  for (float& v : x) v *= 4.0f;
  std::vector<float> dz(n);
  regula::Labels labels(s.batch);
  for (std::int64_t i = 0; i < s.batch; ++i) labels[i] = (i * 7919) % s.classes;
  const Map xm(x.data(), s.classes, s.batch);
  Map dm(dz.data(), s.classes, s.batch);
  const auto opt = regula::CrossEntropyOptions{}.with_label_smoothing(smoothing);
  for (auto _ : state) {
    float loss = regula::cross_entropy<Norm>(xm, labels, dm, opt);
    benchmark::DoNotOptimize(loss);
    benchmark::DoNotOptimize(dz.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

int register_all() {
  for (const Shape s : kShapes) {
    const std::string kase =
        "ce_fwd_bwd_" + std::to_string(s.batch) + "x" + std::to_string(s.classes);
    const auto n = static_cast<std::size_t>(s.batch * s.classes);
    for (const char* group : {"softmax/", "stablemax/"}) {
      benchmark::RegisterBenchmark((group + kase + "/exp").c_str(), [n](benchmark::State& st) {
        regula::bench::exp_reference(st, n);
      })->UseRealTime();
    }
    benchmark::RegisterBenchmark(
        ("softmax/" + kase + "/regula").c_str(),
        [s](benchmark::State& st) { ce_fwd_bwd<regula::Normalizer::softmax>(st, s); })
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        ("stablemax/" + kase + "/regula").c_str(),
        [s](benchmark::State& st) { ce_fwd_bwd<regula::Normalizer::stablemax>(st, s); })
        ->UseRealTime();
    benchmark::RegisterBenchmark(
        ("stablemax/" + kase + "/regula_softmax").c_str(),
        [s](benchmark::State& st) { ce_fwd_bwd<regula::Normalizer::softmax>(st, s); })
        ->UseRealTime();
    if (s.batch == 512) {
      const std::string smooth =
          "softmax/ce_smooth_fwd_bwd_" + std::to_string(s.batch) + "x" + std::to_string(s.classes);
      benchmark::RegisterBenchmark((smooth + "/exp").c_str(), [n](benchmark::State& st) {
        regula::bench::exp_reference(st, n);
      })->UseRealTime();
      benchmark::RegisterBenchmark((smooth + "/regula").c_str(), [s](benchmark::State& st) {
        ce_fwd_bwd<regula::Normalizer::softmax>(st, s, 0.1);
      })->UseRealTime();
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
