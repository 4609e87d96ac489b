// Multi-sample dropout, forward + backward, M = 8, B = 256, K = 512, C ∈ {10, 1000}: the fused
// path (one K × M·B GEMM, or cache-sized blocks of it for narrow heads) against a loop of M
// dropout + head + loss passes, both in regula, and against the bare products of the same shapes.
// Names: multisample/<case>/<impl>; bench/anchors/multisample.py adds PyTorch's row.
// Also nested/forward_16Mi: NestedDropout forward against memcpy of the same bytes.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/layers/dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"

#include "bench_support.hpp"
#include "msd_softmax_ce.hpp"
#include <immintrin.h>

namespace {

using regula::Index;
using regula::Stream;
using LabelVec = Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>;
using Mat = regula::Matrix<float>;
using Vec = regula::Vector<float>;

using regula::bench::SoftmaxCE;

constexpr Index kM = 8, kB = 256, kK = 512;
constexpr double kP = 0.5;

struct Data {
  Mat h, W;
  Vec b;
  LabelVec y;
  explicit Data(Index C) {
    const auto hv = regula::bench::uniform_data<float>(static_cast<std::size_t>(kK * kB), 1);
    const auto wv = regula::bench::uniform_data<float>(static_cast<std::size_t>(C * kK), 2);
    h = Eigen::Map<const Mat>(hv.data(), kK, kB);
    W = Eigen::Map<const Mat>(wv.data(), C, kK) * 0.05F;
    b = Vec::Zero(C);
    y.resize(kB);
    for (Index n = 0; n < kB; ++n) y(n) = (n * 7919) % C;
  }
};

void fused(benchmark::State& state, Index C) {
  const Data d(C);
  regula::MultiSampleDropoutOptions o;
  o.samples = kM;
  o.p = kP;
  const regula::MultiSampleDropout<float, SoftmaxCE> msd(o);
  regula::MultiSampleDropout<float, SoftmaxCE>::Context ctx;
  Mat dh(kK, kB), dW(C, kK);
  Vec db(C);
  Stream s(1);
  for (auto _ : state) {
    benchmark::DoNotOptimize(msd.forward(d.h, d.W, d.b, d.y, s, ctx));
    msd.backward(d.W, ctx, dh, dW, db);
    benchmark::DoNotOptimize(dh.data());
    benchmark::ClobberMemory();
  }
}

// The loop of M passes with preallocated buffers: dropout, head, loss, backward, accumulate.
void naive(benchmark::State& state, Index C) {
  const Data d(C);
  const regula::Dropout<float> drop(regula::DropoutOptions{kP});
  const SoftmaxCE ce;
  regula::DropoutContext dctx;
  Mat hm(kK, kB), z(C, kB), dz(C, kB), g(kK, kB), dh(kK, kB), dW(C, kK);
  Vec l(kB), db(C);
  Stream s(1);
  for (auto _ : state) {
    dh.setZero();
    dW.setZero();
    db.setZero();
    double L = 0;
    for (Index m = 0; m < kM; ++m) {
      drop.forward(d.h, hm, s, dctx);
      z.noalias() = d.W * hm;
      z.colwise() += d.b;
      ce(z, d.y, l, dz);
      L += static_cast<double>(l.sum());
      dz *= 1.0F / static_cast<float>(kM * kB);
      dW.noalias() += dz * hm.transpose();
      db += dz.rowwise().sum();
      g.noalias() = d.W.transpose() * dz;
      drop.backward(g, dctx, g);
      dh += g;
    }
    benchmark::DoNotOptimize(L);
    benchmark::DoNotOptimize(dh.data());
    benchmark::ClobberMemory();
  }
}

// The floor under any implementation built on the same GEMM: the three products of the fused
// shapes alone (logits, ∂L/∂W, WᵀG over all M·B columns), no dropout, no loss. Heads with few
// classes run them transposed, as the library does.
void gemm_floor(benchmark::State& state, Index C) {
  const Data d(C);
  const Mat x = d.h.replicate(1, kM);
  const Mat dz = Mat::Constant(C, kM * kB, 1e-3F);
  Mat z(C, kM * kB), zt(kM * kB, C), dW(C, kK), dwt(kK, C), g(kK, kM * kB);
  const bool narrow = C < 64;
  for (auto _ : state) {
    if (narrow) {
      zt.noalias() = x.transpose() * d.W.transpose();
      dwt.noalias() = x * dz.transpose();
    } else {
      z.noalias() = d.W * x;
      dW.noalias() = dz * x.transpose();
    }
    g.noalias() = d.W.transpose() * dz;
    benchmark::DoNotOptimize(zt.data());
    benchmark::DoNotOptimize(z.data());
    benchmark::DoNotOptimize(g.data());
    benchmark::ClobberMemory();
  }
}

// The time the case's multiply-adds (3 products × C·K·M·B) take at this core's peak: chains of
// independent fused multiply-adds at the widest vector width the build targets, so that
// gemm_floor and the fused path can be read as a fraction of the arithmetic limit.
void fma_peak(benchmark::State& state, Index C) {
  const double fmas = 3.0 * static_cast<double>(C * kK * kM * kB);
#if defined(__AVX512F__)
  using V = __m512;
  constexpr int lanes = 16;
  auto fma = [](V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); };
  const V one = _mm512_set1_ps(0.999999F), eps = _mm512_set1_ps(1e-7F);
#elif defined(__AVX2__) && defined(__FMA__)
  using V = __m256;
  constexpr int lanes = 8;
  auto fma = [](V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); };
  const V one = _mm256_set1_ps(0.999999F), eps = _mm256_set1_ps(1e-7F);
#else
  using V = float;
  constexpr int lanes = 1;
  auto fma = [](V a, V b, V c) { return std::fma(a, b, c); };
  const V one = 0.999999F, eps = 1e-7F;
#endif
  const auto steps = static_cast<std::int64_t>(fmas / (12.0 * lanes));
  for (auto _ : state) {
    V a0 = one, a1 = one, a2 = one, a3 = one, a4 = one, a5 = one, a6 = one, a7 = one, a8 = one,
      a9 = one, a10 = one, a11 = one;
    for (std::int64_t i = 0; i < steps; ++i) {
      // Twelve independent chains cover the FMA latency; the empty asm keeps them in registers.
      // clang-format off
#define REGULA_BENCH_FMA(x) x = fma(x, one, eps); __asm__("" : "+v"(x));
      REGULA_BENCH_FMA(a0) REGULA_BENCH_FMA(a1) REGULA_BENCH_FMA(a2) REGULA_BENCH_FMA(a3)
      REGULA_BENCH_FMA(a4) REGULA_BENCH_FMA(a5) REGULA_BENCH_FMA(a6) REGULA_BENCH_FMA(a7)
      REGULA_BENCH_FMA(a8) REGULA_BENCH_FMA(a9) REGULA_BENCH_FMA(a10) REGULA_BENCH_FMA(a11)
      // clang-format on
#undef REGULA_BENCH_FMA
    }
    // One use of every chain, outside the loop (taking their addresses would keep them in memory).
    V sum = fma(a0, a1, a2);
    sum = fma(sum, a3, a4);
    sum = fma(sum, a5, a6);
    sum = fma(sum, a7, a8);
    sum = fma(sum, a9, a10);
    sum = fma(sum, a11, eps);
    benchmark::DoNotOptimize(sum);
  }
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * fmas, benchmark::Counter::kIsIterationInvariantRate);
}

void nested_forward(benchmark::State& state, std::size_t n) {
  constexpr Index K = 512;
  auto x = regula::bench::uniform_data<float>(n);
  std::vector<float> y(n);
  const regula::NestedDropout<float> nd(
      {K, regula::NestedPrior::half_gaussian(100.0), regula::NestedIndexMode::per_sample});
  const Eigen::Map<const Mat> xm(x.data(), K, static_cast<Index>(n) / K);
  Eigen::Map<Mat> ym(y.data(), K, static_cast<Index>(n) / K);
  regula::NestedDropoutContext ctx;
  Stream s(1);
  for (auto _ : state) {
    nd.forward(xm, ym, s, ctx);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * n * sizeof(float)));
}

int register_all() {
  for (const Index C : {Index{10}, Index{1000}}) {
    const std::string kase = "multisample/M8_B256_K512_C" + std::to_string(C) + "_fwd_bwd/";
    benchmark::RegisterBenchmark((kase + "regula").c_str(),
                                 [C](benchmark::State& s) { fused(s, C); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((kase + "naive").c_str(),
                                 [C](benchmark::State& s) { naive(s, C); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((kase + "gemm_floor").c_str(),
                                 [C](benchmark::State& s) { gemm_floor(s, C); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((kase + "fma_peak").c_str(),
                                 [C](benchmark::State& s) { fma_peak(s, C); })
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
  }
  const std::size_t n = std::size_t{1} << 24;
  benchmark::RegisterBenchmark("nested/forward_16Mi/regula", [n](benchmark::State& s) {
    nested_forward(s, n);
  })->UseRealTime();
  benchmark::RegisterBenchmark("nested/forward_16Mi/memcpy", [n](benchmark::State& s) {
    regula::bench::memcpy_reference(s, n * sizeof(float));
  })->UseRealTime();
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
