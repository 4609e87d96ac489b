// NestedDropout as Chen et al. use it: half-Gaussian prior (σ = 10), one index per batch, on a
// 512-d penultimate feature; then budgeted inference with the first k units.
#include "regula/layers/nested_dropout.hpp"

#include <cstdio>

int main() {
  regula::NestedDropout<float> nd(
      {512, regula::NestedPrior::half_gaussian(10.0), regula::NestedIndexMode::per_batch});
  regula::Matrix<float> h = regula::Matrix<float>::Random(512, 32), h_tilde(512, 32), dh(512, 32);
  regula::Stream stream(42);
  const auto ctx = nd.forward(h, h_tilde, stream);  // keeps units 1..b
  nd.backward(h_tilde, ctx, dh);                    // the same prefix mask
  nd.truncate(h, 13, h_tilde);                      // inference with 13 units
  std::printf("kept %lld units; mean kept under the prior %.3f\n",
              static_cast<long long>(ctx.kept(0)), nd.mean_kept());
  return 0;
}
