// Distillation losses, forward+backward (loss and dL/dstudent in one call, batchmean), float,
// one thread, T = 4 (logit_std_kd: T = 2, the paper's default). Names: kd/<loss>_<B>x<C>/regula;
// bench/anchors/kd.py adds the same losses written in PyTorch with autograd (impl "pytorch").
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/losses/binary_kl.hpp"
#include "regula/losses/dkd.hpp"
#include "regula/losses/js.hpp"
#include "regula/losses/kd_kl.hpp"
#include "regula/losses/logit_mse.hpp"
#include "regula/losses/reverse_kl.hpp"
#include "regula/losses/total_variation.hpp"

#include "bench_support.hpp"

namespace {

using Map = Eigen::Map<regula::Matrix<float>>;
using CMap = Eigen::Map<const regula::Matrix<float>>;
using Fn = std::function<float(const CMap&, const CMap&, const regula::Labels&, Map&)>;

struct Shape {
  std::int64_t batch;
  std::int64_t classes;
};
constexpr Shape kShapes[] = {{512, 10}, {512, 100}, {512, 1000}};

void run(benchmark::State& state, Shape s, const Fn& fn) {
  const auto n = static_cast<std::size_t>(s.batch * s.classes);
  auto z = regula::bench::uniform_data<float>(n, 1);
  auto v = regula::bench::uniform_data<float>(n, 2);
  for (float& x : z) x *= 4.0f;
  for (float& x : v) x *= 4.0f;
  std::vector<float> dz(n);
  regula::Labels labels(s.batch);
  for (std::int64_t i = 0; i < s.batch; ++i) labels[i] = (i * 7919) % s.classes;
  const CMap zm(z.data(), s.classes, s.batch), vm(v.data(), s.classes, s.batch);
  Map dm(dz.data(), s.classes, s.batch);
  for (auto _ : state) {
    float loss = fn(zm, vm, labels, dm);
    benchmark::DoNotOptimize(loss);
    benchmark::DoNotOptimize(dz.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

int register_all() {
  const auto kd = regula::KDLossOptions{}.with_temperature(4.0);
  const std::vector<std::pair<std::string, Fn>> losses = {
      {"kd_kl", [kd](const CMap& z, const CMap& v, const regula::Labels&,
                     Map& d) { return regula::kd_kl(z, v, d, kd); }},
      {"dkd", [](const CMap& z, const CMap& v, const regula::Labels& y,
                 Map& d) { return regula::dkd(z, v, y, d); }},
      {"reverse_kl", [kd](const CMap& z, const CMap& v, const regula::Labels&,
                          Map& d) { return regula::reverse_kl(z, v, d, kd); }},
      {"js", [kd](const CMap& z, const CMap& v, const regula::Labels&,
                  Map& d) { return regula::js(z, v, d, kd); }},
      {"total_variation", [kd](const CMap& z, const CMap& v, const regula::Labels&,
                               Map& d) { return regula::total_variation(z, v, d, kd); }},
      {"logit_mse", [](const CMap& z, const CMap& v, const regula::Labels&,
                       Map& d) { return regula::logit_mse(z, v, d); }},
      {"binary_kl", [kd](const CMap& z, const CMap& v, const regula::Labels&,
                         Map& d) { return regula::binary_kl(z, v, d, kd); }},
      {"binary_kl_norm", [kd](const CMap& z, const CMap& v, const regula::Labels&,
                              Map& d) { return regula::binary_kl_norm(z, v, d, kd); }},
      // The paper's default base temperature, 2.
      {"logit_std_kd",
       [](const CMap& z, const CMap& v, const regula::Labels&, Map& d) {
         return regula::logit_std_kd(z, v, d, regula::KDLossOptions{}.with_temperature(2.0));
       }},
  };
  for (const Shape s : kShapes) {
    for (const auto& [name, fn] : losses) {
      const std::string kase =
          "kd/" + name + "_" + std::to_string(s.batch) + "x" + std::to_string(s.classes);
      benchmark::RegisterBenchmark((kase + "/regula").c_str(),
                                   [s, fn = fn](benchmark::State& st) { run(st, s, fn); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
