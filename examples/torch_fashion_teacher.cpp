// The convolutional teacher of the distillation reproduction: a small CNN trained on Fashion-MNIST
// through libtorch, with regula's ChannelDropout and Dropout as its regularizers and regula's
// cross-entropy as its loss (integrations/torch.hpp). It trains once, on the training images the
// students train on (the first 55,000; the last 5,000 of the training file are the students'
// validation split and are never seen by the teacher's optimizer), and writes its logits for all
// 60,000 training images to a small file that examples/distillation loads with
// --teacher-logits.
//
// Network: conv 3×3 1→32 (padding 1), ReLU, max-pool 2; conv 3×3 32→64, ReLU, max-pool 2;
// ChannelDropout 0.25; linear 3136→128, ReLU, Dropout 0.5; linear 128→10. Adam lr 1e-3 with a
// cosine decay to 0, batch 128, 15 epochs, one thread.
//
// File layout (little endian): b"RGKT", int32 version (1), n, classes, int32 0 (reserved), float64
// test accuracy, float64 validation accuracy; then n × classes float32 logits, sample-major, in the
// order of the training file.
//
//   torch_fashion_teacher [--epochs 15] [--seed 1] [--out FILE] [--smoke] [--data DIR]
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "regula/integrations/torch.hpp"

#include "common/data.hpp"
#include "common/report.hpp"
#include "common/torch_data.hpp"
#include <malloc.h>

namespace {

struct Teacher : torch::nn::Module {
  explicit Teacher(std::uint64_t seed)
      : conv1(register_module("conv1",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3).padding(1)))),
        conv2(register_module("conv2",
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(32, 64, 3).padding(1)))),
        fc1(register_module("fc1", torch::nn::Linear(64 * 7 * 7, 128))),
        fc2(register_module("fc2", torch::nn::Linear(128, 10))),
        channel_drop(register_module(
            "channel_drop", regula::libtorch::ChannelDropout(0.25, regula::Stream(seed, 1)))),
        drop(register_module("drop", regula::libtorch::Dropout(0.5, regula::Stream(seed, 2)))) {}

  at::Tensor forward(at::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = channel_drop->forward(x);
    x = drop->forward(torch::relu(fc1->forward(x.view({x.size(0), -1}))));
    return fc2->forward(x);
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
  regula::libtorch::ChannelDropout channel_drop;
  regula::libtorch::Dropout drop;
};

/// Eval-mode logits in chunks of 2,000 images.
at::Tensor logits_of(Teacher& net, const at::Tensor& x) {
  torch::NoGradGuard no_grad;
  net.eval();
  std::vector<at::Tensor> parts;
  for (long i = 0; i < x.size(0); i += 2000) {
    parts.push_back(net.forward(x.slice(0, i, std::min(i + 2000, x.size(0)))));
  }
  net.train();
  return torch::cat(parts, 0).contiguous();
}

double accuracy(const at::Tensor& logits, const at::Tensor& y) {
  return (logits.argmax(1) == y).to(at::kDouble).mean().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv,
                "torch_fashion_teacher [--epochs 15] [--seed 1] [--val 5000] [--out FILE] "
                "[--smoke] [--data DIR]");
  const bool smoke = args.flag("smoke");
  const long epochs = args.integer("epochs", smoke ? 1 : 15);
  const auto seed = static_cast<std::uint64_t>(args.integer("seed", 1));
  const long n_val = args.integer("val", smoke ? 256 : 5000);
  const std::string out = args.str("out", "fashion_teacher_logits.bin");
  const std::string dir = args.str("data", "");
  args.finish();
  torch::set_num_threads(1);
  // libtorch's CPU convolutions allocate and free their large work buffers on every call; with
  // glibc's defaults each one is a fresh mmap whose pages the kernel zeroes again. Keeping freed
  // memory in the heap halves this program's time on this machine.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 256 << 20);

  ex::TrainTest data = ex::load_fashion_mnist(dir, smoke ? 1024 : 60000, smoke ? 512 : 10000,
                                              smoke ? 1024 : 6000, smoke ? 512 : 2000, seed);
  const at::Tensor x_all = ex::as_images(data.train), xt = ex::as_images(data.test);
  const at::Tensor y_all = ex::as_labels(data.train.y), yt = ex::as_labels(data.test.y);
  const long n_all = x_all.size(0);
  if (n_val < 1 || n_val >= n_all) {
    std::fprintf(stderr, "torch_fashion_teacher: --val must be in [1, %ld), got %ld\n", n_all,
                 n_val);
    return 2;
  }
  const long n = n_all - n_val;  // the teacher trains on the students' training images only
  const at::Tensor x = x_all.slice(0, 0, n), y = y_all.slice(0, 0, n);
  const at::Tensor xv = x_all.slice(0, n, n_all), yv = y_all.slice(0, n, n_all);

  torch::manual_seed(seed);
  auto net = std::make_shared<Teacher>(seed);
  const double lr = 1e-3;
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(lr));
  const long batch = 128, steps = n / batch;
  const double total = static_cast<double>(steps * epochs);
  ex::Progress progress("teacher", epochs);
  long step = 0;
  for (long e = 0; e < epochs; ++e) {
    const std::vector<ex::Index> order =
        ex::permutation(n, seed, 100 + static_cast<std::uint64_t>(e));
    double loss_sum = 0.0;
    for (long s = 0; s < steps; ++s) {
      // Cosine decay of the learning rate to 0 over the run.
      const double pi = 3.14159265358979323846;
      const double lr_now = lr * 0.5 * (1.0 + std::cos(pi * static_cast<double>(step) / total));
      for (auto& g : opt.param_groups())
        static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr_now);
      const at::Tensor idx = ex::batch_indices(order, s, batch);
      opt.zero_grad();
      const at::Tensor loss = regula::libtorch::cross_entropy<>(
          net->forward(x.index_select(0, idx)), y.index_select(0, idx));
      loss.backward();
      opt.step();
      loss_sum += loss.item<double>();
      ++step;
      progress.tick(e + 1, static_cast<std::size_t>(s), static_cast<std::size_t>(steps),
                    loss_sum / static_cast<double>(s + 1));
    }
    progress.epoch(e + 1, loss_sum / static_cast<double>(steps), std::nan(""),
                   accuracy(logits_of(*net, xt), yt),
                   ex::format("validation %.2f%%", 100.0 * accuracy(logits_of(*net, xv), yv)));
  }
  const at::Tensor logits = logits_of(*net, x_all).to(at::kFloat).contiguous();
  const double test_acc = accuracy(logits_of(*net, xt), yt);
  const double val_acc = accuracy(logits.slice(0, n, n_all), yv);
  const double train_acc = accuracy(logits.slice(0, 0, n), y);

  std::FILE* f = std::fopen(out.c_str(), "wb");
  if (f == nullptr) {
    std::fprintf(stderr, "torch_fashion_teacher: cannot write %s\n", out.c_str());
    return 1;
  }
  const std::int32_t head[4] = {1, static_cast<std::int32_t>(n_all), 10, 0};
  const double accs[2] = {test_acc, val_acc};
  bool ok =
      std::fwrite("RGKT", 1, 4, f) == 4 && std::fwrite(head, sizeof head, 1, f) == 1 &&
      std::fwrite(accs, sizeof accs, 1, f) == 1 &&
      std::fwrite(logits.data_ptr<float>(), sizeof(float), static_cast<std::size_t>(logits.numel()),
                  f) == static_cast<std::size_t>(logits.numel());
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    std::fprintf(stderr, "torch_fashion_teacher: writing %s failed\n", out.c_str());
    return 1;
  }
  std::printf(
      "== results == %s teacher CNN, %ld train, %ld epochs: train %.2f%%, validation %.2f%%, test "
      "%.2f%%; logits of %ld images in %s (%.0f s)\n",
      data.synthetic ? "SYNTHETIC" : "Fashion-MNIST", n, epochs, 100.0 * train_acc, 100.0 * val_acc,
      100.0 * test_acc, n_all, out.c_str(), progress.elapsed());
  return 0;
}
