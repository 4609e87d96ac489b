// The structured dropout variants: Gaussian, alpha, channel, DropPath and DropConnect.
#include <cstdio>

#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_connect.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/gaussian_dropout.hpp"

int main() {
  using M = regula::Matrix<float>;
  regula::Stream stream(1);
  const M x = M::Random(24, 8);  // 24 features = 4 channels × 6 positions, 8 samples
  M y(24, 8), dx(24, 8);

  const regula::GaussianDropout<float> gauss({0.2});  // y = x ⊙ N(1, 0.25)
  auto c1 = gauss.forward(x, y, stream);
  gauss.backward(y, c1, dx);

  const regula::AlphaDropout<float> alpha({0.1});  // for SELU networks
  auto c2 = alpha.forward(x, y, stream);
  alpha.backward(y, c2, dx);

  const regula::ChannelDropout<float> channel({0.3, 4, regula::ChannelLayout::channel_last});
  auto c3 = channel.forward(x, y, stream);
  channel.backward(y, c3, dx);

  const regula::DropPath<float> path({0.1, regula::DropPathMode::row});
  regula::RandomContext c4;
  M out(24, 8);
  path.forward_residual(x, /*branch=*/x, out, stream, c4);  // out = x + f ⊙ m/(1 − p)
  path.backward(out, c4, dx);                               // ∂L/∂f

  const regula::DropConnect<float> connect({0.5});
  const M W = M::Random(5, 24);
  const regula::Vector<float> b = regula::Vector<float>::Zero(5);
  M z(5, 8), dW(5, 24);
  regula::Vector<float> db(5);
  regula::DropConnect<float>::Context c5;
  connect.forward(x, W, b, z, stream, c5);
  connect.backward(x, W, z, c5, dx, dW, db);
  std::printf("stream offset after five layers: %llu\n",
              static_cast<unsigned long long>(stream.offset()));
  return 0;
}
