// The quick-start demo: applies regula's Dropout to a large batch, checks what a user would
// check (the dropped fraction, E[y] = x, backward equals the forward mask), and prints the
// measured throughput as a ratio to memcpy of the same bytes.
//
//   dropout_demo [--quick]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <regula/regula.hpp>

namespace {

/// Best of `reps` wall-clock timings of f(), in seconds.
template <class F>
double best_time(int reps, F&& f) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const regula::Index features = 1024;
  const regula::Index batch = quick ? 256 : 16384;  // 16Mi floats: 64 MiB, far beyond the caches
  const auto n = static_cast<std::size_t>(features * batch);

  regula::Matrix<float> x(features, batch), y(features, batch), dx(features, batch);
  regula::Stream init(1);
  init.uniform(x.data(), n);
  const regula::Matrix<float> dy = regula::Matrix<float>::Ones(features, batch);

  const regula::Dropout<float> drop(regula::DropoutOptions{0.5});
  regula::Stream stream(42);
  regula::DropoutContext ctx;
  drop.forward(x, y, stream, ctx);
  drop.backward(dy, ctx, dx);

  const double zeroed = static_cast<double>((y.array() == 0.0F).count()) / static_cast<double>(n);
  const double mean_ratio = static_cast<double>(y.sum()) / static_cast<double>(x.sum());
  const bool same_mask = ((dx.array() == 0.0F) == (y.array() == 0.0F)).all();

  const int reps = quick ? 3 : 10;
  std::vector<float> copy(n);
  const double t_memcpy =
      best_time(reps, [&] { std::memcpy(copy.data(), x.data(), n * sizeof(float)); });
  const double t_forward = best_time(reps, [&] { drop.forward(x, y, stream, ctx); });
  const double t_backward = best_time(reps, [&] { drop.backward(dy, ctx, dx); });

  std::printf("regula %d.%d.%d Dropout(p = 0.5) on a %ld x %ld float batch (%s, %d thread%s)\n",
              REGULA_VERSION_MAJOR, REGULA_VERSION_MINOR, REGULA_VERSION_PATCH,
              static_cast<long>(features), static_cast<long>(batch), regula::default_arch::name(),
              regula::max_threads(), regula::max_threads() == 1 ? "" : "s");
  std::printf("  zeroed fraction        %.4f   (expected 0.5)\n", zeroed);
  std::printf("  sum(y) / sum(x)        %.4f   (expected 1: E[y] = x)\n", mean_ratio);
  std::printf("  backward mask = forward mask: %s (recomputed from the stream, 0 bytes stored)\n",
              same_mask ? "yes" : "NO");
  std::printf("  forward  %8.3f ms  = %.2f x memcpy throughput\n", t_forward * 1e3,
              t_memcpy / t_forward);
  std::printf("  backward %8.3f ms  = %.2f x memcpy throughput\n", t_backward * 1e3,
              t_memcpy / t_backward);
  std::printf("  memcpy   %8.3f ms  of the same %zu MiB\n", t_memcpy * 1e3,
              n * sizeof(float) >> 20);
  return same_mask ? 0 : 1;
}
