// regula inside a libtorch training loop: a torch::nn MLP on Fashion-MNIST with noisy labels,
// trained with regula's nested dropout (a torch module) and Co-teaching selection through the
// zero-copy adapter, next to plain cross-entropy; prints the same kind of table as noisy_labels.
//
//   torch_noisy_labels [--epochs N] [--train N] [--rate R] [--noise symmetric|pair] [--seed S]
//                      [--val-labels clean|noisy] [--smoke] [--parity] [--data DIR]
//
// k* is chosen on the last tenth of the training images, with their clean labels by default (Chen
// et al.'s protocol) or with their noisy ones (--val-labels noisy, the ablation).
//
// --parity trains the same MLP with torch::nn::Dropout and with regula's Dropout module (same
// initialization, same data order, clean labels) and fails if their final test accuracies
// differ by more than one point.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "regula/integrations/torch.hpp"
#include "regula/selection/co_teaching.hpp"
#include "regula/selection/forget_rate.hpp"
#include "regula/selection/label_noise.hpp"

#include "common/data.hpp"
#include "common/report.hpp"
#include "common/torch_data.hpp"

namespace {

/// 784-256-256-10 with ReLU and an optional regularizer on the penultimate features.
template <class Reg>
struct Net : torch::nn::Module {
  Net(long width, Reg r)
      : fc1(register_module("fc1", torch::nn::Linear(784, width))),
        fc2(register_module("fc2", torch::nn::Linear(width, width))),
        fc3(register_module("fc3",
                            torch::nn::Linear(torch::nn::LinearOptions(width, 10).bias(false)))),
        reg(register_module("reg", r)) {}
  at::Tensor features(const at::Tensor& x) {
    return torch::relu(fc2->forward(torch::relu(fc1->forward(x))));
  }
  at::Tensor forward(const at::Tensor& x) { return fc3->forward(reg->forward(features(x))); }
  torch::nn::Linear fc1, fc2, fc3;
  Reg reg;
};

/// A (samples, 784) float tensor over the data set's memory (features × samples, column-major):
/// the same bytes, no copy.
at::Tensor as_tensor(ex::Dataset& d) {
  return torch::from_blob(d.x.data(), {d.size(), d.x.rows()});
}

template <class NetT>
double accuracy(NetT& net, const at::Tensor& x, const at::Tensor& y) {
  torch::NoGradGuard no_grad;
  net->eval();
  const double acc =
      (net->forward(x).argmax(1) == y).to(at::kDouble).mean().template item<double>();
  net->train();
  return acc;
}

/// Chen et al.'s budgeted inference: the test accuracy with only the first k* features kept, k*
/// chosen on the validation split as argmax_k (acc_k − 1e-5·k), k = 1..kmax.
template <class NetT>
std::pair<double, long> nested_accuracy(NetT& net, const at::Tensor& xv, const at::Tensor& yv,
                                        const at::Tensor& xt, const at::Tensor& yt, long kmax) {
  torch::NoGradGuard no_grad;
  net->eval();
  const at::Tensor hv = net->features(xv), ht = net->features(xt);
  const long width = hv.size(1);
  double best = -1;
  long best_k = width;
  for (long k = 1; k <= std::min(kmax, width); ++k) {
    const at::Tensor mask = (torch::arange(width) < k).to(at::kFloat);
    const double acc = (net->fc3->forward(hv * mask).argmax(1) == yv)
                           .to(at::kDouble)
                           .mean()
                           .template item<double>();
    if (acc - 1e-5 * static_cast<double>(k) > best) {
      best = acc - 1e-5 * static_cast<double>(k);
      best_k = k;
    }
  }
  const at::Tensor mask = (torch::arange(width) < best_k).to(at::kFloat);
  const double test =
      (net->fc3->forward(ht * mask).argmax(1) == yt).to(at::kDouble).mean().template item<double>();
  net->train();
  return {test, best_k};
}

struct Row {
  std::string name;
  double best = 0, last = 0, precision = -1;
};

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv,
                "torch_noisy_labels [--epochs N] [--train N] [--rate R] [--noise symmetric|pair] "
                "[--seed S] [--val-labels clean|noisy] [--smoke] [--parity] [--data DIR]");
  const bool smoke = args.flag("smoke");
  const bool parity = args.flag("parity");
  const long epochs = args.integer("epochs", smoke ? 1 : 10);
  const auto train_n = static_cast<std::size_t>(args.integer("train", smoke ? 512 : 20000));
  const double rate = args.num("rate", 0.5);
  const std::string noise = args.str("noise", "symmetric");
  const auto seed = static_cast<std::uint64_t>(args.integer("seed", 1));
  const std::string dir = args.str("data", "");
  const std::string val_labels = args.str("val-labels", "clean");
  args.finish();
  if (val_labels != "clean" && val_labels != "noisy") {
    std::fprintf(stderr, "torch_noisy_labels: --val-labels must be clean or noisy, got %s\n",
                 val_labels.c_str());
    return 2;
  }
  torch::set_num_threads(1);

  ex::TrainTest data = ex::load_fashion_mnist(dir, train_n, smoke ? 512 : 10000, smoke ? 512 : 6000,
                                              smoke ? 256 : 2000, seed);
  const at::Tensor x_train = as_tensor(data.train), x_test = as_tensor(data.test);
  const at::Tensor y_test = ex::as_labels(data.test.y);
  const long batch = 128;
  long n = data.train.size();
  long steps = n / batch;

  if (parity) {
    // Same MLP, same initialization and data order; only the dropout implementation differs.
    const at::Tensor y_clean = ex::as_labels(data.train.y);
    auto run = [&](auto dropout) {
      torch::manual_seed(static_cast<std::uint64_t>(seed));
      auto net = std::make_shared<Net<decltype(dropout)>>(256, dropout);
      torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
      const std::vector<ex::Index> order = ex::permutation(n, seed, 5);
      for (long e = 0; e < epochs; ++e) {
        for (long s = 0; s < steps; ++s) {
          const at::Tensor idx = ex::batch_indices(order, s, batch);
          opt.zero_grad();
          torch::nn::functional::cross_entropy(net->forward(x_train.index_select(0, idx)),
                                               y_clean.index_select(0, idx))
              .backward();
          opt.step();
        }
      }
      return accuracy(net, x_test, y_test);
    };
    const double a = run(torch::nn::Dropout(0.5));
    const double b = run(regula::libtorch::Dropout(0.5, regula::Stream(seed)));
    std::printf(
        "== parity == torch::nn::Dropout %.2f%%, regula::libtorch::Dropout %.2f%% (%ld epochs, %ld "
        "%s train)\n",
        100 * a, 100 * b, epochs, n, data.synthetic ? "SYNTHETIC" : "Fashion-MNIST");
    return std::abs(a - b) <= 0.01 ? 0 : 1;
  }

  // Noisy labels, injected by regula.
  const regula::LabelNoiseOptions lo{
      noise == "pair" ? regula::LabelNoise::pair : regula::LabelNoise::symmetric_exclusive, rate,
      seed};
  regula::NoisyLabels noisy = regula::inject_label_noise(data.train.y, 10, lo);
  const at::Tensor y_noisy_all = ex::as_labels(noisy.labels);
  // The last tenth of the training set is the validation split for k*: with its clean labels by
  // default (Chen et al. hold out 10% of the clean training set), or its noisy ones.
  const long n_val = n / 10;
  n -= n_val;
  steps = n / batch;
  const at::Tensor y_noisy = y_noisy_all.narrow(0, 0, n);
  const at::Tensor x_val = x_train.narrow(0, n, n_val);
  const at::Tensor y_val =
      (val_labels == "clean" ? ex::as_labels(data.train.y) : y_noisy_all).narrow(0, n, n_val);
  std::printf(
      "regula %d.%d.%d in libtorch: %s, %ld train + %ld validation with %s labels (%s %.0f%%, "
      "realized %.1f%%), %ld test, %ld epochs\n",
      REGULA_VERSION_MAJOR, REGULA_VERSION_MINOR, REGULA_VERSION_PATCH,
      data.synthetic ? "SYNTHETIC data" : "Fashion-MNIST", n, n_val, val_labels.c_str(),
      noise.c_str(), 100 * rate, 100 * noisy.realized_rate, data.test.size(), epochs);

  std::vector<Row> rows;
  const std::vector<ex::Index> order = ex::permutation(n, seed, 7);
  auto batch_index = [&](long s) { return ex::batch_indices(order, s, batch); };

  {  // Plain cross-entropy (regula's, through the adapter), no regularizer.
    torch::manual_seed(seed);
    auto net = std::make_shared<Net<torch::nn::Identity>>(256, torch::nn::Identity());
    torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(1e-3));
    Row r{"cross-entropy"};
    for (long e = 0; e < epochs; ++e) {
      for (long s = 0; s < steps; ++s) {
        const at::Tensor idx = batch_index(s);
        opt.zero_grad();
        regula::libtorch::cross_entropy(net->forward(x_train.index_select(0, idx)),
                                        y_noisy.index_select(0, idx))
            .backward();
        opt.step();
      }
      r.last = accuracy(net, x_test, y_test);
      r.best = std::max(r.best, r.last);
      std::printf("  cross-entropy          epoch %2ld  test %.2f%%\n", e + 1, 100 * r.last);
    }
    rows.push_back(r);
  }

  {  // Nested dropout (Chen et al.'s prior, one index per batch) + Co-teaching.
    regula::NestedDropoutOptions no;
    no.units = 256;
    no.prior = regula::NestedPrior::half_gaussian(10.0);
    no.mode = regula::NestedIndexMode::per_batch;
    using NetN = Net<regula::libtorch::NestedDropout>;
    torch::manual_seed(seed);
    auto net1 =
        std::make_shared<NetN>(256, regula::libtorch::NestedDropout(no, regula::Stream(seed, 1)));
    auto net2 =
        std::make_shared<NetN>(256, regula::libtorch::NestedDropout(no, regula::Stream(seed, 2)));
    torch::optim::Adam opt1(net1->parameters(), torch::optim::AdamOptions(1e-3));
    torch::optim::Adam opt2(net2->parameters(), torch::optim::AdamOptions(1e-3));
    regula::CoTeaching<float> ct;
    regula::Vector<float> l1(batch), l2(batch);
    regula::Matrix<float> g1(10, batch), g2(10, batch);
    Row r{"nested + Co-teaching"};
    double precision_sum = 0;
    long precision_count = 0;
    for (long e = 0; e < epochs; ++e) {
      const double forget = regula::forget_rate({rate, 10, 1}, static_cast<double>(e));
      for (long s = 0; s < steps; ++s) {
        const at::Tensor idx = batch_index(s);
        const at::Tensor xb = x_train.index_select(0, idx), yb = y_noisy.index_select(0, idx);
        opt1.zero_grad();
        opt2.zero_grad();
        at::Tensor z1 = net1->forward(xb), z2 = net2->forward(xb);
        {  // Per-sample losses and gradients on the logits' memory, then the exchange.
          at::Tensor z1d = z1.detach(), z2d = z2.detach();
          const auto y = regula::libtorch::labels_view(yb);
          regula::cross_entropy_per_sample(regula::libtorch::view<float>(z1d), y, l1, g1);
          regula::cross_entropy_per_sample(regula::libtorch::view<float>(z2d), y, l2, g2);
          (void)ct.exchange(l1, l2, forget, g1, g2);
        }
        // g (10 × B, column-major) is the (B, 10) row-major gradient of the logits.
        torch::autograd::backward({z1, z2}, {torch::from_blob(g1.data(), {batch, 10}).clone(),
                                             torch::from_blob(g2.data(), {batch, 10}).clone()});
        opt1.step();
        opt2.step();
        std::vector<regula::Index> picked;
        for (const regula::Index j : ct.selected_by_second())
          picked.push_back(order[static_cast<std::size_t>(s * batch + j)]);
        precision_sum += regula::label_precision(picked, noisy.is_noisy);
        ++precision_count;
      }
      const auto [acc, k] = nested_accuracy(net1, x_val, y_val, x_test, y_test, 64);
      r.last = acc;
      r.best = std::max(r.best, r.last);
      std::printf(
          "  nested + Co-teaching   epoch %2ld  test %.2f%% (first %ld features)  label precision "
          "%.1f%%\n",
          e + 1, 100 * r.last, k, 100 * precision_sum / static_cast<double>(precision_count));
    }
    r.precision = precision_sum / static_cast<double>(precision_count);
    rows.push_back(r);
  }

  std::printf("\n== results == %s, %s %.0f%% noise, seed %llu\n",
              data.synthetic ? "SYNTHETIC" : "Fashion-MNIST", noise.c_str(), 100 * rate,
              static_cast<unsigned long long>(seed));
  std::printf("  %-22s %9s %9s %16s\n", "method", "best test", "last test", "label precision");
  for (const Row& r : rows) {
    std::printf("  %-22s %8.2f%% %8.2f%% %15s\n", r.name.c_str(), 100 * r.best, 100 * r.last,
                r.precision < 0 ? "-" : ex::format("%.1f%%", 100 * r.precision).c_str());
  }
  return 0;
}
