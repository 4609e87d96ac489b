// Two threads against one, in one run: every kernel whose one-thread time exceeds 0.5 ms, timed
// with 2 OpenMP threads (impl "regula") and with 1 (impl "one_thread"), so that the ratio
// compare.py prints, one_thread / regula, is the speed-up. The memory-bound reference is the
// case memcpy_64MiB: one memcpy against two threads copying a half each.
//
// Before timing, each kernel runs once with 1 thread and once with 2 from the same state (the
// stream rewound) and its outputs are compared byte for byte; a difference skips the benchmark
// with an error, so a row in the table is also a passed bitwise check. The one exception is
// multi-sample dropout's stacked path, whose products are Eigen's OpenMP GEMM: its blocking
// depends on the thread count, so its values are promised only to the product bound of
// docs/random.md (its masks are bitwise, as tests/layers check); there the check is normwise,
// max |a − b| ≤ 1e-5 · max |a|. Names: threads/<case>/<impl>.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/activations/softmax.hpp"
#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"
#include "regula/losses/cross_entropy.hpp"
#include "regula/losses/dkd.hpp"
#include "regula/losses/kd_kl.hpp"
#include "regula/losses/sinkhorn_kd.hpp"

#include "bench_support.hpp"
#include "msd_softmax_ce.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace {

using regula::Index;
using regula::Stream;
using Mat = regula::Matrix<float>;
using Vec = regula::Vector<float>;
using Map = Eigen::Map<Mat>;
using CMap = Eigen::Map<const Mat>;

void set_threads(int t) {
#if defined(_OPENMP)
  omp_set_num_threads(t);
#else
  (void)t;
#endif
}

// One kernel: run() does one call from the current state; rewind() restores the state a call
// depends on (the stream position); outputs() is every byte the call wrote (losses included).
struct Kernel {
  std::function<void()> run;
  std::function<void()> rewind = [] {};
  std::function<std::string()> outputs;
  bool bitwise = true;  // false: the normwise check above
};

// max |a − b| ≤ tol · max |a| over the floats of two outputs of the same size.
bool normwise_equal(const std::string& a, const std::string& b, float tol) {
  if (a.size() != b.size()) return false;
  const std::size_t n = a.size() / sizeof(float);
  std::vector<float> x(n), y(n);
  std::memcpy(x.data(), a.data(), n * sizeof(float));
  std::memcpy(y.data(), b.data(), n * sizeof(float));
  float diff = 0.0f, scale = 0.0f;
  for (std::size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(x[i]));
  }
  return diff <= tol * scale;
}

std::string bytes_of(const float* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n * sizeof(float)};
}

void timed(benchmark::State& state, const std::function<Kernel()>& make, int threads) {
#if !defined(_OPENMP)
  state.SkipWithError("built without OpenMP");
  return;
#endif
  Kernel k = make();
  set_threads(1);
  k.rewind();
  k.run();
  const std::string one = k.outputs();
  set_threads(2);
  k.rewind();
  k.run();
  const std::string two = k.outputs();
  if (k.bitwise ? one != two : !normwise_equal(one, two, 1e-5f)) {
    set_threads(1);
    state.SkipWithError(k.bitwise ? "outputs differ between 1 and 2 threads"
                                  : "outputs beyond 1e-5 of each other at 1 and 2 threads");
    return;
  }
  set_threads(threads);
  for (auto _ : state) {
    k.run();
    benchmark::ClobberMemory();
  }
  set_threads(1);
}

// The memory-bound reference: 64 MiB copied by one memcpy, or by `threads` threads a part each.
void memcpy_threads(benchmark::State& state, int threads) {
  const std::size_t bytes = std::size_t{64} << 20;
  std::vector<char> src(bytes, 1), dst(bytes);
  for (auto _ : state) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
      const std::size_t part = bytes / static_cast<std::size_t>(threads);
      const std::size_t begin = static_cast<std::size_t>(t) * part;
      std::memcpy(dst.data() + begin, src.data() + begin, t + 1 == threads ? bytes - begin : part);
    }
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * bytes));
}

constexpr std::size_t kN = std::size_t{1} << 24;  // 16Mi floats, as the dropout group
constexpr Index kRows = 1024;

// A stream-driven layer over 16Mi floats: forward (or forward then backward on dy).
template <class Layer>
std::function<Kernel()> stream_layer(Layer layer, bool backward) {
  return [layer, backward] {
    struct State {
      std::vector<float> x = regula::bench::uniform_data<float>(kN, 1);
      std::vector<float> dy = regula::bench::uniform_data<float>(kN, 2);
      std::vector<float> y = std::vector<float>(kN), dx = std::vector<float>(kN);
      Stream stream{1};
      typename Layer::Context ctx;
    };
    auto s = std::make_shared<State>();
    const Index cols = static_cast<Index>(kN) / kRows;
    Kernel k;
    const auto forward = [s, layer, cols] {
      Map y(s->y.data(), kRows, cols);
      layer.forward(CMap(s->x.data(), kRows, cols), y, s->stream, s->ctx);
    };
    if (backward) {
      forward();
      k.run = [s, layer, cols] {
        Map dx(s->dx.data(), kRows, cols);
        layer.backward(CMap(s->dy.data(), kRows, cols), s->ctx, dx);
      };
      k.outputs = [s] { return bytes_of(s->dx.data(), kN); };
    } else {
      k.run = forward;
      k.rewind = [s] { s->stream = Stream(1); };
      k.outputs = [s] { return bytes_of(s->y.data(), kN); };
    }
    return k;
  };
}

std::function<Kernel()> nested_forward() {
  return [] {
    constexpr Index K = 512;
    struct State {
      std::vector<float> x = regula::bench::uniform_data<float>(kN, 1);
      std::vector<float> y = std::vector<float>(kN);
      regula::NestedDropout<float> nd{
          {K, regula::NestedPrior::half_gaussian(100.0), regula::NestedIndexMode::per_sample}};
      regula::NestedDropoutContext ctx;
      Stream stream{1};
    };
    auto s = std::make_shared<State>();
    const Index cols = static_cast<Index>(kN) / K;
    Kernel k;
    k.run = [s, cols] {
      Map y(s->y.data(), K, cols);
      s->nd.forward(CMap(s->x.data(), K, cols), y, s->stream, s->ctx);
    };
    k.rewind = [s] { s->stream = Stream(1); };
    k.outputs = [s] { return bytes_of(s->y.data(), kN); };
    return k;
  };
}

// A (logits[, teacher]) → (loss, gradient) function over a batch × classes problem.
using LossFn = std::function<float(const CMap&, const CMap&, const regula::Labels&, Map&)>;

std::function<Kernel()> loss_kernel(Index batch, Index classes, LossFn fn) {
  return [batch, classes, fn] {
    struct State {
      std::vector<float> z, v, dz, loss = std::vector<float>(1);
      regula::Labels labels;
    };
    auto s = std::make_shared<State>();
    const auto n = static_cast<std::size_t>(batch * classes);
    s->z = regula::bench::uniform_data<float>(n, 1);
    s->v = regula::bench::uniform_data<float>(n, 2);
    for (float& x : s->z) x *= 4.0f;
    for (float& x : s->v) x *= 4.0f;
    s->dz.resize(n);
    s->labels.resize(batch);
    for (Index i = 0; i < batch; ++i) s->labels[i] = (i * 7919) % classes;
    Kernel k;
    k.run = [s, batch, classes, fn] {
      Map d(s->dz.data(), classes, batch);
      s->loss[0] =
          fn(CMap(s->z.data(), classes, batch), CMap(s->v.data(), classes, batch), s->labels, d);
    };
    k.outputs = [s] { return bytes_of(s->loss.data(), 1) + bytes_of(s->dz.data(), s->dz.size()); };
    return k;
  };
}

std::function<Kernel()> softmax_kernel(Index batch, Index classes) {
  return [batch, classes] {
    const auto n = static_cast<std::size_t>(batch * classes);
    auto x = std::make_shared<std::vector<float>>(regula::bench::uniform_data<float>(n));
    for (float& v : *x) v *= 4.0f;
    auto y = std::make_shared<std::vector<float>>(n);
    Kernel k;
    k.run = [x, y, batch, classes] {
      Map ym(y->data(), classes, batch);
      regula::softmax(CMap(x->data(), classes, batch), ym);
    };
    k.outputs = [y] { return bytes_of(y->data(), y->size()); };
    return k;
  };
}

// Sinkhorn KD at B = 256, C = 1000, forward and backward (unrolled), as the sinkhorn group.
std::function<Kernel()> sinkhorn_kernel() {
  return [] {
    constexpr Index B = 256, C = 1000;
    struct State {
      std::vector<float> z = regula::bench::uniform_data<float>(B * C, 1);
      std::vector<float> v = regula::bench::uniform_data<float>(B * C, 2);
      std::vector<float> dz = std::vector<float>(B * C), loss = std::vector<float>(1);
      regula::SinkhornKDWorkspace<float> ws;
    };
    auto s = std::make_shared<State>();
    for (float& x : s->z) x *= 4.0f;
    for (float& x : s->v) x *= 4.0f;
    Kernel k;
    k.run = [s] {
      Map d(s->dz.data(), C, B);
      s->loss[0] = regula::sinkhorn_kd<float>(CMap(s->z.data(), C, B), CMap(s->v.data(), C, B), d,
                                              s->ws, regula::SinkhornKDOptions{});
    };
    k.outputs = [s] { return bytes_of(s->loss.data(), 1) + bytes_of(s->dz.data(), s->dz.size()); };
    return k;
  };
}

using regula::bench::SoftmaxCE;

constexpr Index kMsM = 8, kMsB = 256, kMsK = 512;

// C ≥ 64 takes the stacked path (Eigen's GEMM, parallel); C < 64 the tiled narrow-head path,
// which runs on the calling thread and is bitwise across thread counts.
std::function<Kernel()> multisample_kernel(Index C) {
  return [C] {
    constexpr Index M = kMsM, B = kMsB, K = kMsK;
    using Layer = regula::MultiSampleDropout<float, SoftmaxCE>;
    struct State {
      Mat h, W, dh = Mat(kMsK, kMsB), dW;
      Vec b, db;
      Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1> y;
      Layer::Context ctx;
      Stream stream{1};
      float loss = 0;
    };
    auto s = std::make_shared<State>();
    s->dW.resize(C, K);
    s->b = Vec::Zero(C);
    s->db.resize(C);
    s->h = CMap(regula::bench::uniform_data<float>(K * B, 1).data(), K, B);
    s->W =
        CMap(regula::bench::uniform_data<float>(static_cast<std::size_t>(C * K), 2).data(), C, K) *
        0.05F;
    s->y.resize(B);
    for (Index n = 0; n < B; ++n) s->y(n) = (n * 7919) % C;
    regula::MultiSampleDropoutOptions o;
    o.samples = M;
    o.p = 0.5;
    const Layer layer(o);
    Kernel k;
    k.run = [s, layer] {
      s->loss = layer.forward(s->h, s->W, s->b, s->y, s->stream, s->ctx);
      layer.backward(s->W, s->ctx, s->dh, s->dW, s->db);
    };
    k.rewind = [s] { s->stream = Stream(1); };
    k.outputs = [s] {
      const auto size = [](const auto& m) { return static_cast<std::size_t>(m.size()); };
      return bytes_of(&s->loss, 1) + bytes_of(s->dh.data(), size(s->dh)) +
             bytes_of(s->dW.data(), size(s->dW)) + bytes_of(s->db.data(), size(s->db));
    };
    k.bitwise = C < 64;
    return k;
  };
}

void add(const std::string& kase, const std::function<Kernel()>& make) {
  for (const auto& [impl, threads] : {std::pair{"regula", 2}, std::pair{"one_thread", 1}}) {
    const int t = threads;
    benchmark::RegisterBenchmark(("threads/" + kase + "/" + impl).c_str(),
                                 [make, t](benchmark::State& st) { timed(st, make, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
}

int register_all() {
  for (const auto& [impl, threads] : {std::pair{"regula", 2}, std::pair{"one_thread", 1}}) {
    const int t = threads;
    benchmark::RegisterBenchmark((std::string("threads/memcpy_64MiB/") + impl).c_str(),
                                 [t](benchmark::State& st) { memcpy_threads(st, t); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
  }
  const regula::Dropout<float> dropout(regula::DropoutOptions{0.5});
  add("dropout_forward_16Mi", stream_layer(dropout, false));
  add("dropout_backward_recompute_16Mi", stream_layer(dropout, true));
  add("dropout_backward_bitmask_16Mi",
      stream_layer(regula::Dropout<float>(regula::DropoutOptions{0.5, true}), true));
  add("gaussian_dropout_forward_16Mi",
      stream_layer(regula::GaussianDropout<float>(regula::GaussianDropoutOptions{0.5}), false));
  add("alpha_dropout_forward_16Mi",
      stream_layer(regula::AlphaDropout<float>(regula::AlphaDropoutOptions{0.5}), false));
  add("nested_forward_16Mi", nested_forward());
  add("softmax_4096x1000", softmax_kernel(4096, 1000));
  add("softmax_ce_fwd_bwd_4096x1000",
      loss_kernel(4096, 1000, [](const CMap& z, const CMap&, const regula::Labels& y, Map& d) {
        return regula::cross_entropy<regula::Normalizer::softmax>(z, y, d);
      }));
  add("stablemax_ce_fwd_bwd_4096x1000",
      loss_kernel(4096, 1000, [](const CMap& z, const CMap&, const regula::Labels& y, Map& d) {
        return regula::cross_entropy<regula::Normalizer::stablemax>(z, y, d);
      }));
  const auto kd = regula::KDLossOptions{}.with_temperature(4.0);
  add("kd_kl_4096x1000",
      loss_kernel(4096, 1000, [kd](const CMap& z, const CMap& v, const regula::Labels&, Map& d) {
        return regula::kd_kl(z, v, d, kd);
      }));
  add("dkd_4096x1000",
      loss_kernel(4096, 1000, [](const CMap& z, const CMap& v, const regula::Labels& y, Map& d) {
        return regula::dkd(z, v, y, d);
      }));
  add("sinkhorn_fwd_bwd_256x1000", sinkhorn_kernel());
  add("multisample_M8_B256_K512_C10_fwd_bwd", multisample_kernel(10));
  add("multisample_M8_B256_K512_C1000_fwd_bwd", multisample_kernel(1000));
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
