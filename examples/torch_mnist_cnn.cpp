// The convolutional network of pytorch/examples' C++ MNIST program (cpp/mnist), converted to
// regula: its two regularizers and its loss are swapped for regula's libtorch modules, the rest
// (layers, SGD with momentum 0.5, learning rate 0.01, batch 64) is as there. Trained once with
// the torch modules and once with regula's, from the same initialization and data order, on
// Fashion-MNIST (Debian's dataset-fashion-mnist: MNIST's file format; MNIST itself is not
// packaged), and both test accuracies and epoch times are printed.
//
//   torch_mnist_cnn [--epochs N] [--train N] [--seed S] [--smoke] [--data DIR]
//
// The conversion, line by line (docs/integrations.md has the whole table):
//
//   torch::nn::Dropout2d conv2_drop                →  regula::libtorch::ChannelDropout conv2_drop
//   torch::dropout(x, 0.5, is_training())          →  regula::libtorch::Dropout drop(0.5, stream)
//   torch::nll_loss(torch::log_softmax(x, 1), y)   →  regula::libtorch::cross_entropy(x, y)
//
// regula's ChannelDropout(p) takes the channel count from size(1) of the N × C × H × W input, as
// Dropout2d; its masks come from a regula::Stream, so a run is reproducible from its seed, and
// backward recomputes them instead of saving them. cross_entropy takes the logits (it fuses
// log-softmax, the loss and the gradient) and averages over the batch, as nll_loss.
#include <chrono>
#include <cstdio>
#include <vector>

#include <torch/torch.h>

#include "regula/integrations/torch.hpp"

#include "common/data.hpp"
#include "common/report.hpp"
#include "common/torch_data.hpp"

namespace {

/// The network of pytorch/examples' mnist.cpp, with its two dropout layers and its loss the torch
/// originals (Regula = false) or regula's modules (true).
template <bool Regula>
struct Net : torch::nn::Module {
  explicit Net(std::uint64_t seed)
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 10, 5)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(10, 20, 5)))),
        fc1(register_module("fc1", torch::nn::Linear(320, 50))),
        fc2(register_module("fc2", torch::nn::Linear(50, 10))) {
    if constexpr (Regula) {
      conv2_drop = register_module("conv2_drop",
                                   regula::libtorch::ChannelDropout(0.5, regula::Stream(seed, 1)));
      drop = register_module("drop", regula::libtorch::Dropout(0.5, regula::Stream(seed, 2)));
    } else {
      conv2_drop = register_module("conv2_drop", torch::nn::Dropout2d());
    }
  }

  /// The logits (the original returns log-softmax; regula's loss takes logits).
  at::Tensor forward(at::Tensor x) {
    x = torch::relu(torch::max_pool2d(conv1->forward(x), 2));
    x = torch::relu(torch::max_pool2d(conv2_drop->forward(conv2->forward(x)), 2));
    x = torch::relu(fc1->forward(x.view({-1, 320})));
    if constexpr (Regula) {
      x = drop->forward(x);
    } else {
      x = torch::dropout(x, 0.5, is_training());
    }
    return fc2->forward(x);
  }

  /// The training loss of the logits: mean negative log-likelihood over the batch.
  static at::Tensor loss(const at::Tensor& logits, const at::Tensor& y) {
    if constexpr (Regula) {
      return regula::libtorch::cross_entropy<>(logits, y);
    } else {
      return torch::nll_loss(torch::log_softmax(logits, 1), y);
    }
  }

  torch::nn::Conv2d conv1, conv2;
  std::conditional_t<Regula, regula::libtorch::ChannelDropout, torch::nn::Dropout2d> conv2_drop{
      nullptr};
  regula::libtorch::Dropout drop{nullptr};
  torch::nn::Linear fc1, fc2;
};

struct Result {
  double accuracy = 0, seconds_per_epoch = 0;
};

template <bool Regula>
Result train(const at::Tensor& x, const at::Tensor& y, const at::Tensor& xt, const at::Tensor& yt,
             long epochs, std::uint64_t seed) {
  torch::manual_seed(seed);  // the same initialization for both runs
  auto net = std::make_shared<Net<Regula>>(seed);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.5));
  const long batch = 64, n = x.size(0), steps = n / batch;
  const std::vector<ex::Index> order = ex::permutation(n, seed, 7);  // the same data order
  const auto start = std::chrono::steady_clock::now();
  for (long e = 0; e < epochs; ++e) {
    net->train();
    for (long s = 0; s < steps; ++s) {
      const at::Tensor idx = ex::batch_indices(order, s, batch);
      opt.zero_grad();
      Net<Regula>::loss(net->forward(x.index_select(0, idx)), y.index_select(0, idx)).backward();
      opt.step();
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  torch::NoGradGuard no_grad;
  net->eval();
  const double acc =
      (net->forward(xt).argmax(1) == yt).to(at::kDouble).mean().template item<double>();
  return {acc, seconds / static_cast<double>(epochs)};
}

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv,
                "torch_mnist_cnn [--epochs N] [--train N] [--seed S] [--smoke] [--data DIR]");
  const bool smoke = args.flag("smoke");
  const long epochs = args.integer("epochs", smoke ? 1 : 3);
  const auto train_n = static_cast<std::size_t>(args.integer("train", smoke ? 1024 : 60000));
  const auto seed = static_cast<std::uint64_t>(args.integer("seed", 1));
  const std::string dir = args.str("data", "");
  args.finish();
  torch::set_num_threads(1);

  ex::TrainTest data = ex::load_fashion_mnist(dir, train_n, smoke ? 512 : 10000,
                                              smoke ? 1024 : 6000, smoke ? 512 : 2000, seed);
  const at::Tensor x = ex::as_images(data.train), xt = ex::as_images(data.test);
  const at::Tensor y = ex::as_labels(data.train.y), yt = ex::as_labels(data.test.y);
  const Result t = train<false>(x, y, xt, yt, epochs, seed);
  const Result r = train<true>(x, y, xt, yt, epochs, seed);
  std::printf("== results == %s, %ld train, %ld epochs, one thread\n",
              data.synthetic ? "SYNTHETIC" : "Fashion-MNIST", x.size(0), epochs);
  std::printf(
      "torch  (Dropout2d, dropout, nll_loss)            test accuracy %.2f%%, %.2f s/epoch\n",
      100 * t.accuracy, t.seconds_per_epoch);
  std::printf(
      "regula (ChannelDropout, Dropout, cross_entropy)  test accuracy %.2f%%, %.2f s/epoch\n",
      100 * r.accuracy, r.seconds_per_epoch);
  return 0;
}
