// Grokking at the edge of numerical stability (Prieto, Barsbey, Mediano, Birdal, ICLR 2025): on
// modular addition without weight decay, float32 softmax cross-entropy memorizes the training set
// and then stalls in Softmax Collapse (the non-maximal exponentials are absorbed, the gradient of
// most samples is exactly 0); StableMax cross-entropy avoids the collapse and eventually groks;
// ⊥Grad (the gradient's component along the weights removed, per tensor) generalizes early.
//
// Task: (a + b) mod p over all p² pairs, a seeded 40% training split, input the two one-hot
// operands (2p features). Model (algorithms.md §4.5): MLP 2p → 200 → 200 → p, ReLU, no biases,
// PyTorch's default initialization, float32. Full-batch AdamW (the batch freshly permuted every
// epoch, as the official loop), lr 0.01, betas (0.9, 0.999), eps 1e-25 (the official CLI
// default), weight decay 0. Runs from the same initialization:
//   softmax     float32 softmax cross-entropy
//   softmax64   softmax cross-entropy of the logits cast to double, the gradient rounded back to
//               float (the official --softmax_precision 64 arm; β₂ 0.99, the CLI default it runs
//               with)
//   stablemax   StableMax cross-entropy (regula::cross_entropy<Normalizer::stablemax>)
//   perp_grad   softmax cross-entropy, regula::perp_grad on every weight matrix before the step
//               (β₂ 0.999 and eps 1e-8: the official ⊥AdamW wrapper builds its AdamW without the
//               CLI's betas and eps, so AdamW's defaults are what that run used)
// --init FILE starts from the official loop's split and weights for a seed, written once by
// examples/grokking_torch_init.py (torch's random_split and nn.Linear draws); without it the split
// and weights come from regula::Stream (the same distributions, other draws).
// Every epoch (every --eval-every epochs): train accuracy, test accuracy, the softmax-collapse
// fraction of the training logits (regula::softmax_collapse_fraction, float32), the fraction
// of exactly-zero per-sample losses of the run's own loss, the fraction that PyTorch's float32
// cross-entropy would round to exactly 0 (the logger's "zero terms": collapsed and right), and
// the median training margin z_y − max_{j≠y} z_j, and the fraction of samples whose non-label mass
// Σ_{j≠y} s_j / S (s = exp or StableMax's s, in double) is below 2⁻²³ — where a float gradient
// formed as π_y − 1 would round to 0 — go to <out>/<run>.csv. For the StableMax run the
// collapse column says only that its logits are beyond what a float32 softmax could resolve.
//
// regula's softmax cross-entropy forms the label's gradient element as −Σ_{j≠y} p_j, so it does
// not round to 0 once p_y rounds to 1 (margin ≈ 17 in float), and its per-sample loss is
// log1p(Σ_{j≠y} e^{z_j − z_y}) rather than 0. --torch-float32 trains the softmax runs with
// PyTorch's float32 arithmetic instead (ℓ = log S − (z_y − m) and ∂ℓ/∂z = softmax − e_y, both in
// float), which is what the paper's float32 arm measured.
//
//   grokking [--p 113] [--epochs 1500] [--seed 42] [--torch-float32] [--smoke]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/data.hpp"
#include "common/mlp.hpp"
#include "common/report.hpp"
#include <regula/kernels/softmax.hpp>
#include <regula/regula.hpp>

namespace {

using ex::Index;
using ex::Mat;
using ex::Vec;

const char* const kUsage =
    "usage: grokking [options]\n"
    "  --p P           modulus (default 113, the paper's)\n"
    "  --epochs N      full-batch epochs per run (default 1500)\n"
    "  --runs LIST     comma-separated subset of softmax,softmax64,stablemax,perp_grad\n"
    "                  (default softmax,stablemax,perp_grad)\n"
    "  --train-frac F  training fraction of the p^2 pairs (default 0.4)\n"
    "  --width H       hidden width (default 200)\n"
    "  --lr LR         AdamW learning rate (default 0.01)\n"
    "  --eps E         AdamW eps of the softmax and StableMax runs (default 1e-25)\n"
    "  --beta2 B       AdamW beta2 of the softmax and StableMax runs (default 0.999; 0.99 for\n"
    "                  softmax64, the official arm's)\n"
    "  --init FILE     split and initial weights from examples/grokking_torch_init.py\n"
    "  --log-every K   print a progress line every K epochs (default 100)\n"
    "  --eval-every K  test accuracy and a CSV row every K epochs (default 1; long runs: 10)\n"
    "  --seed S        seed of the split and the initialization (default 42)\n"
    "  --torch-float32 softmax runs use PyTorch's float32 loss and gradient (p_y - 1 rounds to 0)\n"
    "  --threads N     (default 1); --out DIR (default grokking_out)\n"
    "  --smoke         p = 13, 30 epochs\n";

enum class Kind { softmax, softmax64, stablemax, perp_grad };

const char* name(Kind k) {
  switch (k) {
    case Kind::softmax:
      return "softmax";
    case Kind::softmax64:
      return "softmax64";
    case Kind::stablemax:
      return "stablemax";
    case Kind::perp_grad:
      return "perp_grad";
  }
  return "?";
}

struct Config {
  long p = 113, epochs = 1500, seed = 42, log_every = 100, eval_every = 1;
  Index width = 200;
  double train_frac = 0.4, lr = 0.01, eps = 1e-25, beta2 = 0.999;
  bool beta2_given = false;  // --beta2 overrides softmax64's own default too
  std::string out, init, runs = "softmax,stablemax,perp_grad";
  bool torch_float32 = false;
};

/// PyTorch's float32 cross-entropy (log_softmax then nll_loss, mean): per column m = max z,
/// S = Σ exp(z − m) in float, ℓ = log S − (z_y − m) and ∂ℓ/∂z = (exp(z − m)/S − e_y)/B, all in
/// float, so ℓ and the label's element are exactly 0 once S rounds to 1. Writes the per-sample
/// losses; returns the mean.
double torch_float32_cross_entropy(const Mat& z, const ex::Labels& y, Vec& losses, Mat* dz) {
  const Index C = z.rows();
  const Index B = z.cols();
  const float inv_b = 1.0F / static_cast<float>(B);
  double total = 0.0;
  for (Index j = 0; j < B; ++j) {
    const float* col = z.col(j).data();
    const float m = regula::kernels::column_max(col, static_cast<std::size_t>(C));
    const float S =
        regula::kernels::sum_exp(col, static_cast<std::size_t>(C), m, static_cast<float*>(nullptr));
    const float log_s = std::log(S);
    const Index yj = y(j);
    const float lsm_y = (col[yj] - m) - log_s;
    losses(j) = -lsm_y;
    total += static_cast<double>(-lsm_y);
    if (dz != nullptr) {
      for (Index i = 0; i < C; ++i) {
        const float p = std::exp((col[i] - m) - log_s);
        (*dz)(i, j) = (i == yj ? p - 1.0F : p) * inv_b;
      }
    }
  }
  return total / static_cast<double>(B);
}

/// The median over samples of z_y − max_{j≠y} z_j.
double median_margin(const Mat& z, const ex::Labels& y) {
  std::vector<float> m(static_cast<std::size_t>(z.cols()));
  for (Index j = 0; j < z.cols(); ++j) {
    float other = -INFINITY;
    for (Index i = 0; i < z.rows(); ++i) {
      if (i != y(j)) other = std::max(other, z(i, j));
    }
    m[static_cast<std::size_t>(j)] = z(y(j), j) - other;
  }
  const auto mid = m.begin() + static_cast<std::ptrdiff_t>(m.size() / 2);
  std::nth_element(m.begin(), mid, m.end());
  return static_cast<double>(*mid);
}

/// The fraction of samples whose non-label mass Σ_{j≠y} s_j / S is below 2⁻²³ (float's half ulp
/// of 1): s_j = exp(z_j − max z) for softmax, StableMax's s(z_j) otherwise, all in double. For
/// these samples a float gradient formed as π_y − 1 rounds to 0 (regula's is −Σ_{j≠y} π_j).
double tiny_rest_fraction(const Mat& z, const ex::Labels& y, bool stablemax) {
  Index count = 0;
  for (Index j = 0; j < z.cols(); ++j) {
    const double m = stablemax ? 0.0 : static_cast<double>(z.col(j).maxCoeff());
    double rest = 0.0, sy = 0.0;
    for (Index i = 0; i < z.rows(); ++i) {
      const double v = static_cast<double>(z(i, j));
      const double si = stablemax ? (v >= 0.0 ? v + 1.0 : 1.0 / (1.0 - v)) : std::exp(v - m);
      (i == y(j) ? sy : rest) += si;
    }
    count += rest / (rest + sy) < 0x1p-23 ? 1 : 0;
  }
  return static_cast<double>(count) / static_cast<double>(z.cols());
}

/// The official loop's split and initial weights for one seed, as examples/grokking_torch_init.py
/// writes them (little endian, as this example assumes of its host).
struct TorchInit {
  std::vector<Index> order;  // pair indices a·p + b, the n_train training pairs first
  Index n_train = 0;
  long seed = 0;             // the torch seed the file was drawn with
  std::vector<Mat> weights;  // the three layers, out × in
};

TorchInit load_torch_init(const std::string& path, long p, Index width) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("grokking: cannot open --init " + path);
  char magic[4] = {};
  std::int32_t head[6] = {};
  f.read(magic, sizeof magic);
  f.read(reinterpret_cast<char*>(head), sizeof head);
  if (!f || std::memcmp(magic, "RGKI", 4) != 0 || head[0] != 1) {
    throw std::runtime_error("grokking: " + path + " is not a grokking_torch_init.py file");
  }
  if (head[1] != p || head[3] != width) {
    throw std::runtime_error("grokking: " + path + " holds p = " + std::to_string(head[1]) +
                             ", width = " + std::to_string(head[3]) + ", the run asks for p = " +
                             std::to_string(p) + ", width = " + std::to_string(width));
  }
  const Index n = p * p;
  TorchInit t;
  t.n_train = head[2];
  t.seed = head[4];
  if (t.n_train <= 0 || t.n_train >= n)
    throw std::runtime_error("grokking: bad n_train in " + path);
  std::vector<std::int32_t> idx(static_cast<std::size_t>(n));
  f.read(reinterpret_cast<char*>(idx.data()), static_cast<std::streamsize>(idx.size() * 4));
  std::vector<bool> seen(static_cast<std::size_t>(n), false);
  for (const std::int32_t k : idx) {
    if (!f || k < 0 || k >= n || seen[static_cast<std::size_t>(k)]) {
      throw std::runtime_error("grokking: the pair order in " + path + " is not a permutation");
    }
    seen[static_cast<std::size_t>(k)] = true;
    t.order.push_back(k);
  }
  const Index shapes[3][2] = {{width, 2 * p}, {width, width}, {p, width}};
  for (const auto& sh : shapes) {
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> w(sh[0], sh[1]);
    f.read(reinterpret_cast<char*>(w.data()), w.size() * 4);
    if (!f) throw std::runtime_error("grokking: " + path + " ends inside the weights");
    t.weights.emplace_back(w);
  }
  if (f.peek() != std::char_traits<char>::eof()) {
    throw std::runtime_error("grokking: " + path + " has bytes past the weights");
  }
  return t;
}

struct Split {
  ex::SpMat x_test;  // two ones per column: the first layer is a gather
  ex::Labels y_train, y_test;
  std::vector<Index> a_train, b_train;  // the operands of each training pair
};

/// The one-hot batch of the pairs (a[i], b[i]), i = order[0], order[1], … (2p × n).
ex::SpMat one_hot_pairs(long p, const std::vector<Index>& a, const std::vector<Index>& b,
                        const std::vector<Index>& order) {
  ex::SpMat x(2 * p, static_cast<Index>(order.size()));
  x.reserve(Eigen::VectorXi::Constant(x.cols(), 2));
  for (std::size_t j = 0; j < order.size(); ++j) {
    const auto i = static_cast<std::size_t>(order[j]);
    x.insert(a[i], static_cast<Index>(j)) = 1.0F;
    x.insert(p + b[i], static_cast<Index>(j)) = 1.0F;
  }
  x.makeCompressed();
  return x;
}

/// All p² pairs (a, b), index a·p + b, with label (a + b) mod p, one-hot a in rows [0, p) and b in
/// [p, 2p); the first n_train of `order` are the training set.
Split make_split(long p, const std::vector<Index>& order, Index n_train) {
  const Index n = p * p;
  Split s;
  std::vector<Eigen::Triplet<float>> test;
  s.y_train.resize(n_train);
  s.y_test.resize(n - n_train);
  for (Index i = 0; i < n; ++i) {
    const Index k = order[static_cast<std::size_t>(i)];
    const Index a = k / p, b = k % p;
    const bool is_train = i < n_train;
    if (is_train) {
      s.y_train(i) = (a + b) % p;
      s.a_train.push_back(a);
      s.b_train.push_back(b);
    } else {
      test.emplace_back(a, i - n_train, 1.0F);
      test.emplace_back(p + b, i - n_train, 1.0F);
      s.y_test(i - n_train) = (a + b) % p;
    }
  }
  s.x_test.resize(2 * p, n - n_train);
  s.x_test.setFromTriplets(test.begin(), test.end());
  return s;
}

double accuracy(const Mat& logits, const ex::Labels& y) {
  std::vector<std::int64_t> pred;
  ex::argmax_columns(logits, pred);
  Index hits = 0;
  for (Index j = 0; j < y.size(); ++j) hits += pred[static_cast<std::size_t>(j)] == y(j) ? 1 : 0;
  return static_cast<double>(hits) / static_cast<double>(y.size());
}

struct Result {
  Kind kind{};
  double train_acc = 0.0, test_acc = 0.0, collapse = 0.0, best_test = 0.0, seconds = 0.0;
  long first_train_99 = -1, first_test_95 = -1, first_collapse_50 = -1;
};

Result run(const Config& c, const Split& s, const TorchInit* init, Kind kind) {
  ex::Mlp::Options o;
  o.in = 2 * c.p;
  o.hidden = {c.width, c.width};
  o.classes = c.p;
  o.bias = false;
  o.head_bias = false;
  o.seed = static_cast<std::uint64_t>(c.seed);  // the same initialization for every run
  ex::Mlp net(o);
  if (init != nullptr) {
    for (std::size_t l = 0; l < net.layers().size(); ++l) net.layers()[l].w = init->weights[l];
  }
  ex::OptimOptions oo;
  oo.kind = ex::OptimOptions::Kind::adam;
  oo.lr = c.lr;
  oo.beta1 = 0.9;
  // The official settings: β₂ 0.999 and eps 1e-25 for the StableMax run, the CLI default β₂ 0.99
  // for the float64 softmax arm; the ⊥AdamW wrapper constructs its AdamW from lr and weight decay
  // alone (it assigns the CLI's betas to a local it never passes, and load_state_dict replaces
  // the wrapper's groups, not the inner optimizer's), so that run has AdamW's defaults.
  oo.beta2 = kind == Kind::perp_grad                     ? 0.999
             : kind == Kind::softmax64 && !c.beta2_given ? 0.99
                                                         : c.beta2;
  oo.eps = kind == Kind::perp_grad ? 1e-8 : c.eps;
  oo.weight_decay = 0.0;
  ex::Optimizer opt(net, oo);

  ex::make_dirs(c.out);
  ex::Csv csv(c.out + "/" + name(kind) + ".csv",
              {"epoch", "loss", "train_acc", "test_acc", "softmax_collapse", "zero_loss",
               "zero_loss_torch32", "median_margin", "tiny_rest"});
  Mat z, dz, zt, dh;
  Eigen::MatrixXd zd, dzd;  // the float64 arm's logits and gradient
  Eigen::VectorXd losses64(s.y_train.size());
  Vec losses(s.y_train.size());
  Vec torch_losses(s.y_train.size());
  const bool torch32 = c.torch_float32 && kind != Kind::stablemax;
  ex::SpMat x;  // this epoch's order of the training set
  ex::Labels y(s.y_train.size());
  Result r;
  r.kind = kind;
  ex::Progress progress(name(kind), c.epochs);
  for (long epoch = 1; epoch <= c.epochs; ++epoch) {
    // A fresh permutation of the full batch every epoch, as the official loop does: it changes
    // only the order in which the gradient's float32 sums are taken, which the authors note
    // matters over tens of thousands of epochs.
    const std::vector<Index> order = ex::permutation(
        s.y_train.size(), static_cast<std::uint64_t>(c.seed), static_cast<std::uint64_t>(epoch));
    x = one_hot_pairs(c.p, s.a_train, s.b_train, order);
    for (Index j = 0; j < y.size(); ++j) y(j) = s.y_train(order[static_cast<std::size_t>(j)]);
    net.forward(x, z);
    // Metrics of the weights before this epoch's step, on the full training set (the logger's
    // order: evaluate, then step).
    r.train_acc = accuracy(z, y);
    if (kind == Kind::softmax64) zd = z.cast<double>();
    // The logger measures the collapse in the loss's own precision.
    r.collapse = kind == Kind::softmax64 ? regula::softmax_collapse_fraction(zd)
                                         : regula::softmax_collapse_fraction(z);
    // Exactly-zero per-sample losses of the run's own loss (softmax or StableMax).
    double zero_own = 0.0;
    if (kind == Kind::stablemax) {
      regula::cross_entropy_per_sample<regula::Normalizer::stablemax>(z, y, losses);
      zero_own = regula::zero_loss_fraction(losses);
    } else if (kind == Kind::softmax64) {
      regula::cross_entropy_per_sample(zd, y, losses64);
      zero_own = regula::zero_loss_fraction(losses64);
    } else {
      regula::cross_entropy_per_sample(z, y, losses);
      zero_own = regula::zero_loss_fraction(losses);
    }
    dz.resize(z.rows(), z.cols());
    // PyTorch's float32 losses, for the logger's zero-term count (and the gradient in that mode).
    const double torch_loss =
        torch_float32_cross_entropy(z, y, torch_losses, torch32 ? &dz : nullptr);
    const double zero_torch = regula::zero_loss_fraction(torch_losses);
    const double zero = torch32 ? zero_torch : zero_own;
    const double margin = median_margin(z, y);
    const double tiny_rest = tiny_rest_fraction(z, y, kind == Kind::stablemax);
    double loss = 0.0;
    if (kind == Kind::stablemax) {
      loss = static_cast<double>(regula::cross_entropy<regula::Normalizer::stablemax>(z, y, dz));
    } else if (kind == Kind::softmax64) {
      // As the official float64 arm: the loss in double, its gradient rounded to the model's float.
      dzd.resize(zd.rows(), zd.cols());
      loss = regula::cross_entropy(zd, y, dzd);
      dz = dzd.cast<float>();
    } else if (torch32) {
      loss = torch_loss;
    } else {
      loss = static_cast<double>(regula::cross_entropy(z, y, dz));
    }
    // Backward through the activations of this forward pass.
    net.zero_grad();
    net.backward_head(net.features(), dz, dh);
    net.backward_trunk(x, dh);
    if (r.first_train_99 < 0 && r.train_acc >= 0.99) r.first_train_99 = epoch;
    if (r.first_collapse_50 < 0 && r.collapse > 0.5) r.first_collapse_50 = epoch;
    const bool last = epoch == c.epochs;
    if (epoch % c.eval_every == 0 || last) {
      // Test accuracy of the same (pre-step) weights; this forward does not touch the gradients.
      net.forward(s.x_test, zt);
      r.test_acc = accuracy(zt, s.y_test);
      r.best_test = std::max(r.best_test, r.test_acc);
      if (r.first_test_95 < 0 && r.test_acc >= 0.95) r.first_test_95 = epoch;
      csv.row({static_cast<double>(epoch), loss, r.train_acc, r.test_acc, r.collapse, zero,
               zero_torch, margin, tiny_rest});
    }
    if (epoch % c.log_every == 0 || last) {
      progress.epoch(
          epoch, loss, r.train_acc, r.test_acc,
          ex::format("softmax collapse %.3f, zero loss %.3f (torch32 %.3f), margin %.1f, "
                     "rest<2^-23 %.3f",
                     r.collapse, zero, zero_torch, margin, tiny_rest));
    }
    if (kind == Kind::perp_grad) {
      for (ex::Linear& l : net.layers())
        (void)regula::perp_grad(l.w, regula::MatrixRef<float>(l.dw));
    }
    opt.step();
  }
  r.seconds = progress.elapsed();
  return r;
}

std::string epoch_or_never(long e) { return e < 0 ? std::string("never") : std::to_string(e); }

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv, kUsage);
  Config c;
  if (args.flag("smoke")) {
    c.p = 13;
    c.epochs = 30;
    c.log_every = 10;
  }
  c.p = args.integer("p", c.p);
  c.epochs = args.integer("epochs", c.epochs);
  c.runs = args.str("runs", c.runs);
  c.train_frac = args.num("train-frac", c.train_frac);
  c.width = args.integer("width", c.width);
  c.lr = args.num("lr", c.lr);
  c.eps = args.num("eps", c.eps);
  c.beta2_given = args.has("beta2");
  c.beta2 = args.num("beta2", c.beta2);
  c.init = args.str("init", "");
  c.log_every = args.integer("log-every", c.log_every);
  c.eval_every = args.integer("eval-every", c.eval_every);
  c.seed = args.integer("seed", c.seed);
  c.torch_float32 = args.flag("torch-float32");
  ex::set_threads(static_cast<int>(args.integer("threads", 1)));
  c.out = args.str("out", "grokking_out");
  args.finish();
  if (c.p < 2 || c.epochs < 1 || c.log_every < 1 || c.eval_every < 1 ||
      !(c.train_frac > 0.0 && c.train_frac < 1.0) || !(c.beta2 >= 0.0 && c.beta2 < 1.0) ||
      !(c.lr > 0.0)) {
    std::fprintf(
        stderr,
        "grokking: need p >= 2, epochs >= 1, log-every >= 1, eval-every >= 1, 0 < train-frac < 1, "
        "0 <= beta2 < 1, lr > 0\n%s",
        kUsage);
    return 2;
  }

  TorchInit init;
  if (!c.init.empty()) {
    try {
      init = load_torch_init(c.init, c.p, c.width);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
      return 2;
    }
  }
  std::vector<Index> order = init.order;
  // int(), as the official split: 5,107 of 12,769 pairs at p = 113.
  Index n_train = static_cast<Index>(c.train_frac * static_cast<double>(c.p * c.p));
  if (c.init.empty()) {
    order = ex::permutation(c.p * c.p, static_cast<std::uint64_t>(c.seed), 0);
  } else {
    n_train = init.n_train;
  }
  const Split s = make_split(c.p, order, n_train);
  // With --init the split and weights are torch's draws for the file's seed; --seed still orders
  // the epochs' permutations.
  const std::string seeds =
      c.init.empty() ? ex::format("seed %ld", c.seed)
                     : ex::format("torch init seed %ld, shuffle seed %ld", init.seed, c.seed);
  std::printf(
      "regula grokking: (a + b) mod %ld, %td train / %td test pairs, MLP %ld-%td-%td-%ld without "
      "biases, "
      "full-batch AdamW lr %g, weight decay 0, %ld epochs, %s%s%s\n",
      c.p, s.y_train.size(), s.y_test.size(), 2 * c.p, c.width, c.width, c.p, c.lr, c.epochs,
      seeds.c_str(), c.init.empty() ? "" : ", split and weights from ", c.init.c_str());
  std::vector<Result> results;
  for (Kind k : {Kind::softmax, Kind::softmax64, Kind::stablemax, Kind::perp_grad}) {
    if (("," + c.runs + ",").find(std::string(",") + name(k) + ",") == std::string::npos) continue;
    results.push_back(run(c, s, c.init.empty() ? nullptr : &init, k));
  }

  std::printf(
      "\n== results == (a + b) mod %ld, %ld epochs, %s (metrics of the last epoch's weights)\n",
      c.p, c.epochs, seeds.c_str());
  std::printf("  %-10s %10s %10s %10s %10s %14s %14s %14s %9s\n", "run", "train acc", "test acc",
              "best test", "collapse", "train>=99% at", "test>=95% at", "collapse>50%", "seconds");
  for (const Result& r : results) {
    std::printf("  %-10s %9.2f%% %9.2f%% %9.2f%% %10.3f %14s %14s %14s %9.1f\n", name(r.kind),
                100.0 * r.train_acc, 100.0 * r.test_acc, 100.0 * r.best_test, r.collapse,
                epoch_or_never(r.first_train_99).c_str(), epoch_or_never(r.first_test_95).c_str(),
                epoch_or_never(r.first_collapse_50).c_str(), r.seconds);
  }
  std::printf("  curves: %s/<run>.csv  (plot: examples/plot_csv.sh %s)\n", c.out.c_str(),
              c.out.c_str());
  return 0;
}
