// Dropout forward, backward (mask recomputed, and read from the 1-bit mask) against memcpy of
// the same bytes. Names: dropout/<case>/<impl>; bench/anchors/dropout.py adds PyTorch's rows.
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/kernels/dropout.hpp"
#include "regula/layers/dropout.hpp"

#include "bench_support.hpp"

namespace {

using regula::Dropout;
using regula::DropoutOptions;
using regula::Stream;
using Map = Eigen::Map<regula::Matrix<float>>;

constexpr double kP = 0.5;
constexpr std::int64_t kFeatures = 1024;  // a realistic features × batch shape

void set_bytes(benchmark::State& state, std::size_t n) {
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * n * sizeof(float)));
}

void forward(benchmark::State& state, std::size_t n) {
  auto x = regula::bench::uniform_data<float>(n);
  std::vector<float> y(n);
  const Dropout<float> drop(DropoutOptions{kP});
  Stream stream(1);
  regula::DropoutContext ctx;
  const Map xm(x.data(), kFeatures, static_cast<std::int64_t>(n) / kFeatures);
  Map ym(y.data(), kFeatures, static_cast<std::int64_t>(n) / kFeatures);
  for (auto _ : state) {
    drop.forward(xm, ym, stream, ctx);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

void backward(benchmark::State& state, std::size_t n, bool store_mask) {
  auto x = regula::bench::uniform_data<float>(n);
  auto dy = regula::bench::uniform_data<float>(n, 2);
  std::vector<float> y(n), dx(n);
  const Dropout<float> drop(DropoutOptions{kP, store_mask});
  Stream stream(1);
  const std::int64_t cols = static_cast<std::int64_t>(n) / kFeatures;
  const Map xm(x.data(), kFeatures, cols), dym(dy.data(), kFeatures, cols);
  Map ym(y.data(), kFeatures, cols), dxm(dx.data(), kFeatures, cols);
  const auto ctx = drop.forward(xm, ym, stream);
  for (auto _ : state) {
    drop.backward(dym, ctx, dxm);
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

// Where the forward's time goes: the keep masks alone (Philox4x32-10 and the compares, the
// tiles_per_step chains interleaved as the forward runs them), written to a 1-bit mask and not
// applied to any data. Its ratio to the forward's row is the share of the forward that is
// drawing; the rest is the masked scale, whose cost the backward_bitmask row shows alone.
void masks_only(benchmark::State& state, std::size_t n) {
  constexpr std::size_t K = regula::kernels::detail::tiles_per_step;
  const regula::kernels::DropoutDraw d{regula::philox_key(1), 0, 0, 1U << 15};
  std::vector<std::uint64_t> mask(regula::kernels::dropout_mask_words(n));
  const std::size_t tiles = n / regula::kernels::dropout_tile;
  for (auto _ : state) {
    for (std::size_t t = 0; t + K <= tiles; t += K) {
      std::uint64_t keep[K][2];
      regula::kernels::dropout_tiles_keep<K>(d, t, keep);
      for (std::size_t k = 0; k < K; ++k) {
        mask[2 * (t + k)] = keep[k][0];
        mask[2 * (t + k) + 1] = keep[k][1];
      }
    }
    benchmark::DoNotOptimize(mask.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, n);
}

int register_all() {
  for (const std::size_t n : {std::size_t{1} << 16, std::size_t{1} << 20, std::size_t{1} << 24}) {
    const std::string size = regula::bench::size_name(n);
    const std::size_t bytes = n * sizeof(float);
    for (const char* kase : {"forward", "backward_recompute", "backward_bitmask"}) {
      const std::string name = std::string("dropout/") + kase + "_" + size;
      benchmark::RegisterBenchmark((name + "/memcpy").c_str(), [bytes](benchmark::State& s) {
        regula::bench::memcpy_reference(s, bytes);
      })->UseRealTime();
    }
    benchmark::RegisterBenchmark(("dropout/forward_" + size + "/masks_only").c_str(),
                                 [n](benchmark::State& s) { masks_only(s, n); })
        ->UseRealTime();
    benchmark::RegisterBenchmark(("dropout/forward_" + size + "/regula").c_str(),
                                 [n](benchmark::State& s) { forward(s, n); })
        ->UseRealTime();
    benchmark::RegisterBenchmark(("dropout/backward_recompute_" + size + "/regula").c_str(),
                                 [n](benchmark::State& s) { backward(s, n, false); })
        ->UseRealTime();
    benchmark::RegisterBenchmark(("dropout/backward_bitmask_" + size + "/regula").c_str(),
                                 [n](benchmark::State& s) { backward(s, n, true); })
        ->UseRealTime();
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
