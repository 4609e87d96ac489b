// MultiSampleDropout with regula's per-sample softmax cross-entropy as its loss (any functor
// of the same signature works): M = 8 masks, one shared linear head, mean of the 8 losses.
#include "regula/layers/multi_sample_dropout.hpp"

#include <cstdint>
#include <cstdio>

#include "regula/losses/cross_entropy.hpp"

using SoftmaxCE = regula::PerSampleCrossEntropy<>;  // Normalizer::stablemax for StableMax

int main() {
  const Eigen::Index K = 64, B = 16, C = 10;
  regula::MultiSampleDropoutOptions options;
  options.samples = 8;
  options.p = 0.5;
  const regula::MultiSampleDropout<float, SoftmaxCE> msd(options);
  regula::Matrix<float> h = regula::Matrix<float>::Random(K, B),
                        W = regula::Matrix<float>::Random(C, K) * 0.1F;
  regula::Vector<float> b = regula::Vector<float>::Zero(C), db(C);
  Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1> y(B);
  for (Eigen::Index n = 0; n < B; ++n) y(n) = n % C;
  regula::Matrix<float> dh(K, B), dW(C, K);
  regula::MultiSampleDropout<float, SoftmaxCE>::Context ctx;  // reuse it every step
  regula::Stream stream(7);
  const float loss = msd.forward(h, W, b, y, stream, ctx);
  msd.backward(W, ctx, dh, dW, db);
  std::printf("loss %.4f\n", static_cast<double>(loss));
  return 0;
}
