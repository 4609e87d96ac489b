// Softmax and log-softmax forward (per column of classes × batch logits) against the physical
// reference, one vectorized exp over the same number of elements. Names:
// softmax/<op>_<B>x<C>/<impl>; bench/anchors/softmax.py adds PyTorch's rows.
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/activations/softmax.hpp"
#include "regula/activations/stablemax.hpp"

#include "bench_support.hpp"

namespace {

using Map = Eigen::Map<regula::Matrix<float>>;

struct Shape {
  std::int64_t batch;
  std::int64_t classes;
};
constexpr Shape kShapes[] = {{512, 10}, {4096, 10}, {512, 1000}, {32, 32000}};

std::string case_name(const char* op, Shape s) {
  return std::string(op) + "_" + std::to_string(s.batch) + "x" + std::to_string(s.classes);
}

template <class F>
void run(benchmark::State& state, Shape s, F&& f) {
  const auto n = static_cast<std::size_t>(s.batch * s.classes);
  auto x = regula::bench::uniform_data<float>(n);
  for (float& v : x) v *= 4.0f;
  std::vector<float> y(n);
  const Map xm(x.data(), s.classes, s.batch);
  Map ym(y.data(), s.classes, s.batch);
  for (auto _ : state) {
    f(xm, ym);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

int register_all() {
  for (const Shape s : kShapes) {
    for (const char* op : {"softmax", "log_softmax", "stablemax"}) {
      const std::string name =
          std::string(op == std::string("stablemax") ? "stablemax/" : "softmax/") +
          case_name(op, s);
      benchmark::RegisterBenchmark((name + "/exp").c_str(), [s](benchmark::State& st) {
        regula::bench::exp_reference(st, static_cast<std::size_t>(s.batch * s.classes));
      })->UseRealTime();
    }
    benchmark::RegisterBenchmark(("softmax/" + case_name("softmax", s) + "/regula").c_str(),
                                 [s](benchmark::State& st) {
                                   run(st, s, [](const Map& x, Map& y) { regula::softmax(x, y); });
                                 })
        ->UseRealTime();
    benchmark::RegisterBenchmark(("softmax/" + case_name("log_softmax", s) + "/regula").c_str(),
                                 [s](benchmark::State& st) {
                                   run(st, s,
                                       [](const Map& x, Map& y) { regula::log_softmax(x, y); });
                                 })
        ->UseRealTime();
    benchmark::RegisterBenchmark(("stablemax/" + case_name("stablemax", s) + "/regula").c_str(),
                                 [s](benchmark::State& st) {
                                   run(st, s,
                                       [](const Map& x, Map& y) { regula::stablemax(x, y); });
                                 })
        ->UseRealTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
