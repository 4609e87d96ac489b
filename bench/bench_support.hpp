// Helpers shared by the benchmarks: deterministic inputs and the memcpy reference.
#ifndef REGULA_BENCH_SUPPORT_HPP
#define REGULA_BENCH_SUPPORT_HPP

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "regula/core/simd.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/exp_log.hpp"

namespace regula::bench {

/// n values drawn uniformly from [-1, 1), the same for every run.
template <class T>
std::vector<T> uniform_data(std::size_t n, std::uint64_t seed = 1) {
  std::vector<T> v(n);
  Stream s(seed);
  s.uniform(v.data(), n);
  for (T& x : v) x = T(2) * x - T(1);
  return v;
}

/// "64Ki", "1Mi", "16Mi" for powers of two, the number otherwise.
inline std::string size_name(std::size_t n) {
  if (n >= (1U << 20) && n % (1U << 20) == 0) return std::to_string(n >> 20) + "Mi";
  if (n >= (1U << 10) && n % (1U << 10) == 0) return std::to_string(n >> 10) + "Ki";
  return std::to_string(n);
}

/// The physical reference for streaming kernels: memcpy of `bytes` bytes, reporting bytes read
/// plus bytes written, as the kernels do.
inline void memcpy_reference(benchmark::State& state, std::size_t bytes) {
  std::vector<char> src(bytes, 1), dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * bytes));
}

/// The physical reference for exp-bound kernels: y = exp(x) over n floats with the vectorized
/// exp the kernels use (kernels::exp_batch: at least as fast as xsimd's, 1.06x in the run of
/// record, and within 1 ulp down to the subnormals; one load, one exp, one store per batch),
/// inputs in [-4, 4).
inline void exp_reference(benchmark::State& state, std::size_t n) {
  using B = xsimd::batch<float, regula::default_arch>;
  constexpr std::size_t W = B::size;
  auto x = uniform_data<float>(n);
  for (float& v : x) v *= 4.0f;
  std::vector<float> y(n);
  for (auto _ : state) {
    std::size_t i = 0;
    for (; i + W <= n; i += W)
      regula::kernels::exp_batch(B::load_unaligned(x.data() + i)).store_unaligned(y.data() + i);
    for (; i < n; ++i) y[i] = std::exp(x[i]);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(n));
}

}  // namespace regula::bench

#endif
