// Learning with noisy labels on Fashion-MNIST: an MLP trained five ways on labels corrupted by
// regula::inject_label_noise, tested on the clean test set.
//
//   1. plain cross-entropy                       (the baseline that memorizes the noise)
//   2. dropout on the penultimate features       (regula::Dropout)
//   3. nested dropout on the penultimate features (Chen et al.'s half-Gaussian prefix prior)
//   4. Co-teaching (Han et al., NeurIPS 2018)    (regula::CoTeaching, regula::forget_rate)
//   5. nested dropout + Co-teaching               (Chen et al., "Boosting Co-teaching with
//      Compression Regularization", 2021: two nested-dropout nets, then a Co-teaching fine-tune)
//
// Model selection (the epoch, and nested dropout's truncation k*) uses a validation split of the
// training set with its clean labels, as Chen et al. (10% of the clean training set held out,
// noise applied to the rest); --val-labels noisy keeps the same split with noisy labels (an
// ablation: what a practitioner without any clean label has). Prints best, last-epoch and
// last-10-epoch-mean clean test accuracy (the Co-teaching paper's figure) and the label precision
// of the samples the Co-teaching methods select, and writes every curve as CSV under --out.
//
//   noisy_labels [--epochs 30] [--noise symmetric|pair] [--rate 0.5] [--seed 1] [--width 256]
//                [--train 54000] [--smoke] [--data DIR] [--out DIR] [--methods ce,dropout,...]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common/data.hpp"
#include "common/losses.hpp"
#include "common/mlp.hpp"
#include "common/report.hpp"
#include <regula/regula.hpp>

namespace {

using ex::Index;
using ex::Mat;
using ex::Vec;

const char* const kUsage =
    "usage: noisy_labels [options]\n"
    "  --epochs N        training epochs of methods 1-4 and of stage 1 of method 5 (default 30)\n"
    "  --stage2-epochs N Co-teaching fine-tune epochs of method 5 (default epochs/2)\n"
    "  --noise KIND      symmetric (to one of the other classes) or pair (i -> i+1) (default "
    "symmetric)\n"
    "  --rate R          noise rate (default 0.5 symmetric, 0.45 pair)\n"
    "  --forget R        Co-teaching forget rate tau (default: the noise rate)\n"
    "  --seed S          seed of everything: noise, initialization, shuffles, masks (default 1)\n"
    "  --width H         hidden width; the MLP is 784-H-H-10 (default 256)\n"
    "  --train N         training samples (default and at most 54000); N/9 more (6000) are held\n"
    "                    out for model selection\n"
    "  --val-labels L    clean (default, Chen et al.'s protocol) or noisy labels on that split\n"
    "  --test N          test samples (default 10000)\n"
    "  --batch B         mini-batch size (default 128)\n"
    "  --lr LR           Adam learning rate (default 1e-3)\n"
    "  --dropout P       dropout probability of method 2 (default 0.5)\n"
    "  --sigma S         nested-dropout prior width (default 10, Chen et al.'s CIFAR-10 value)\n"
    "  --methods LIST    comma list of ce,dropout,nested,coteaching,nested+coteaching (default "
    "all)\n"
    "  --data DIR        Fashion-MNIST directory (default $REGULA_FASHION_MNIST_DIR or\n"
    "                    /usr/share/datasets/fashion-mnist)\n"
    "  --out DIR         where the CSV files go (default noisy_labels_out)\n"
    "  --threads N       threads for Eigen and OpenMP (default 1: results are bitwise "
    "reproducible\n"
    "                    for a given thread count, and 2 threads gain little on small GEMMs)\n"
    "  --smoke           a few hundred samples and 2 epochs: checks that everything runs\n";

struct Config {
  long epochs = 30, stage2_epochs = 15, seed = 1, batch = 128;
  Index width = 256, train = 54000, val = 6000, test = 10000;
  regula::LabelNoise noise = regula::LabelNoise::symmetric_exclusive;
  std::string noise_name = "symmetric";
  double rate = 0.5, forget = 0.5, lr = 1e-3, dropout = 0.5, sigma = 10.0, ramp = 10.0;
  std::vector<std::string> methods;
  bool clean_val = true;
  std::string data, out;
};

/// Everything the five runs share: the data with clean and noisy labels.
struct Data {
  ex::Dataset train, val, test;  // train's labels are the noisy ones; val's per --val-labels
  std::vector<std::int64_t> train_clean;
  std::vector<std::uint8_t> train_noisy;  // 1 where the label was corrupted
  double realized_rate = 0.0;
  std::string source;
};

/// One epoch of one method.
struct EpochStats {
  double loss = 0, train_acc_noisy = 0, train_acc_clean = 0, val_acc = 0, test_acc = 0;
  double precision = std::nan("");  // label precision of the selected samples (Co-teaching)
  Index k = 0;                      // features kept at test time
};

struct RunResult {
  std::string name;
  long epoch_offset = 0;  // method 5's curve starts after stage 1
  std::vector<EpochStats> epochs;
  std::vector<double> test_by_k;  // nested methods: test accuracy with the first k features
};

/// The Co-teaching code's learning-rate plan: constant, then from 40% of the run a linear decay
/// towards 0 with Adam's beta1 switched from 0.9 to 0.1 (epoch 80 of 200 in the paper).
void schedule(ex::Optimizer& opt, const Config& c, long epoch, long epochs) {
  const double decay_start = std::floor(0.4 * static_cast<double>(epochs));
  if (static_cast<double>(epoch) < decay_start) {
    opt.options().lr = c.lr;
    opt.options().beta1 = 0.9;
  } else {
    opt.options().lr =
        c.lr * static_cast<double>(epochs - epoch) / (static_cast<double>(epochs) - decay_start);
    opt.options().beta1 = 0.1;
  }
}

ex::Mlp make_net(const Config& c, std::uint64_t seed) {
  ex::Mlp::Options o;
  o.hidden = {c.width, c.width};
  o.head_bias =
      false;  // Chen et al.'s bias-free classifier, kept for all five for a fair comparison
  o.seed = seed;
  return ex::Mlp(o);
}

/// Chen et al.'s nested dropout: one index per mini-batch, P(keep the first b units) ∝
/// exp(−((b − μ)/σ)²), b = 1..K, μ = 0 (their GaussianDist evaluates the weight at i = 1..K and
/// the index drawn from it keeps i units), which is regula's half_gaussian(σ) as it is.
regula::NestedDropoutOptions chen_nested(const Config& c) {
  return {c.width, regula::NestedPrior::half_gaussian(c.sigma), regula::NestedIndexMode::per_batch};
}

ex::OptimOptions adam(const Config& c) {
  ex::OptimOptions o;
  o.kind = ex::OptimOptions::Kind::adam;
  o.lr = c.lr;
  return o;
}

/// The number of kept features k* that maximizes accuracy on the validation split (ties and
/// a 1e-5-per-feature penalty favour smaller k, as Chen et al.).
Index best_k(const std::vector<double>& val_by_k) {
  Index best = 0;
  for (Index k = 1; k < static_cast<Index>(val_by_k.size()); ++k) {
    const auto score = [&](Index i) {
      return val_by_k[static_cast<std::size_t>(i)] - 1e-5 * static_cast<double>(i);
    };
    if (score(k) > score(best)) best = k;
  }
  return best + 1;
}

/// Counts argmax hits of a batch's logits against noisy and clean labels.
void count_hits(const Mat& logits, const ex::Labels& noisy, const std::vector<Index>& batch_idx,
                std::size_t first, const std::vector<std::int64_t>& clean, double& hit_noisy,
                double& hit_clean) {
  for (Index j = 0; j < logits.cols(); ++j) {
    Index best = 0;
    logits.col(j).maxCoeff(&best);
    hit_noisy += best == noisy(j) ? 1.0 : 0.0;
    hit_clean +=
        best == clean[static_cast<std::size_t>(batch_idx[first + static_cast<std::size_t>(j)])]
            ? 1.0
            : 0.0;
  }
}

enum class Reg { none, dropout, nested };

/// Methods 1-3, and stage 1 of method 5: one network, plain cross-entropy on the noisy labels,
/// with nothing, dropout or nested dropout on the penultimate features. Keeps the parameters of
/// the epoch with the best validation accuracy in `best_net` when given.
RunResult train_single(const Config& c, const Data& d, Reg reg, const std::string& name,
                       std::uint64_t seed, ex::Mlp* best_net = nullptr) {
  RunResult r;
  r.name = name;
  ex::Mlp net = make_net(c, seed);
  ex::Optimizer opt(net, adam(c));
  const regula::Dropout<float> drop(regula::DropoutOptions{c.dropout});
  regula::DropoutContext drop_ctx;
  const regula::NestedDropout<float> nested(chen_nested(c));
  regula::NestedDropoutContext nested_ctx;
  regula::Stream masks(seed, 7);  // the regularizers' random stream
  Mat x, logits, dlogits, dh;
  Vec losses;
  ex::Labels y;
  ex::Progress progress(name, c.epochs);
  const auto n = static_cast<std::size_t>(d.train.size());
  const auto b = static_cast<std::size_t>(c.batch);
  double best_val = -1.0;
  for (long epoch = 0; epoch < c.epochs; ++epoch) {
    schedule(opt, c, epoch, c.epochs);
    const std::vector<Index> order =
        ex::permutation(d.train.size(), seed, 100 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0, hit_noisy = 0.0, hit_clean = 0.0;
    std::size_t steps = n / b;  // drop_last, as the reference code
    for (std::size_t s = 0; s < steps; ++s) {
      ex::gather(d.train.x, d.train.y, order, s * b, b, x, y);
      net.forward_trunk(x);
      Mat& h = net.features();
      if (reg == Reg::dropout) drop.forward(h, h, masks, drop_ctx);
      if (reg == Reg::nested) nested.forward(h, h, masks, nested_ctx);
      net.forward_head(h, logits);
      ex::cross_entropy_per_sample(logits, y, losses, dlogits);
      dlogits /= static_cast<float>(b);
      net.zero_grad();
      net.backward_head(h, dlogits, dh);
      if (reg == Reg::dropout) drop.backward(dh, drop_ctx, dh);
      if (reg == Reg::nested) nested.backward(dh, nested_ctx, dh);
      net.backward_trunk(x, dh);
      opt.step();
      loss_sum += static_cast<double>(losses.sum());
      count_hits(logits, y, order, s * b, d.train_clean, hit_noisy, hit_clean);
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>((s + 1) * b));
    }
    EpochStats e;
    const double seen = static_cast<double>(steps * b);
    e.loss = loss_sum / seen;
    e.train_acc_noisy = hit_noisy / seen;
    e.train_acc_clean = hit_clean / seen;
    std::vector<ex::Mlp*> nets{&net};
    if (reg == Reg::nested) {
      const std::vector<double> val_k = ex::accuracy_by_prefix(nets, d.val, true);
      e.k = best_k(val_k);
      e.val_acc = val_k[static_cast<std::size_t>(e.k - 1)];
      r.test_by_k = ex::accuracy_by_prefix(nets, d.test, true);
      e.test_acc = r.test_by_k[static_cast<std::size_t>(e.k - 1)];
    } else {
      e.k = c.width;
      e.val_acc = ex::accuracy_by_prefix(nets, d.val, false).front();
      e.test_acc = ex::accuracy_by_prefix(nets, d.test, false).front();
    }
    if (best_net != nullptr && e.val_acc > best_val) {
      best_val = e.val_acc;
      ex::copy_parameters(net, *best_net);
    }
    r.epochs.push_back(e);
    progress.epoch(
        epoch + 1, e.loss, e.train_acc_noisy, e.test_acc,
        ex::format("clean-train %.2f%%  val %.2f%%%s", 100.0 * e.train_acc_clean, 100.0 * e.val_acc,
                   reg == Reg::nested ? ex::format("  k*=%td", e.k).c_str() : ""));
  }
  return r;
}

/// Method 4: Co-teaching. Both networks see the same mini-batch; each picks its small-loss
/// samples for the other (regula::CoTeaching), with the forget rate ramping to tau over 10 epochs.
RunResult train_coteaching(const Config& c, const Data& d, std::uint64_t seed) {
  RunResult r;
  r.name = "Co-teaching";
  ex::Mlp net1 = make_net(c, seed), net2 = make_net(c, seed + 1000);
  ex::Optimizer opt1(net1, adam(c)), opt2(net2, adam(c));
  regula::CoTeaching<float> ct;
  Mat x, z1, z2, g1, g2, dh;
  Vec l1, l2;
  ex::Labels y;
  std::vector<std::uint8_t> batch_noisy;
  ex::Progress progress(r.name, c.epochs);
  const auto n = static_cast<std::size_t>(d.train.size());
  const auto b = static_cast<std::size_t>(c.batch);
  for (long epoch = 0; epoch < c.epochs; ++epoch) {
    schedule(opt1, c, epoch, c.epochs);
    schedule(opt2, c, epoch, c.epochs);
    // The official loop counts epochs from 1: the first epoch already forgets tau/T_k.
    const double rate =
        regula::forget_rate({c.forget, c.ramp, 1.0}, static_cast<double>(epoch + 1));
    const std::vector<Index> order =
        ex::permutation(d.train.size(), seed, 100 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0, hit_noisy = 0.0, hit_clean = 0.0, sel_clean = 0.0, sel_total = 0.0;
    const std::size_t steps = n / b;
    for (std::size_t s = 0; s < steps; ++s) {
      ex::gather(d.train.x, d.train.y, order, s * b, b, x, y);
      batch_noisy.resize(b);
      for (std::size_t j = 0; j < b; ++j)
        batch_noisy[j] = d.train_noisy[static_cast<std::size_t>(order[s * b + j])];
      net1.forward(x, z1);
      ex::cross_entropy_per_sample(z1, y, l1, g1);
      net2.forward(x, z2);
      ex::cross_entropy_per_sample(z2, y, l2, g2);
      const regula::CoTeachingResult<float> res = ct.exchange(l1, l2, rate, g1, g2);
      for (const auto* sel : {&ct.selected_by_first(), &ct.selected_by_second()}) {
        sel_clean += regula::label_precision(*sel, batch_noisy) * static_cast<double>(sel->size());
        sel_total += static_cast<double>(sel->size());
      }
      net1.zero_grad();
      net1.backward_head(net1.features(), g1, dh);
      net1.backward_trunk(x, dh);
      opt1.step();
      net2.zero_grad();
      net2.backward_head(net2.features(), g2, dh);
      net2.backward_trunk(x, dh);
      opt2.step();
      loss_sum += static_cast<double>(res.loss1);
      count_hits(z1, y, order, s * b, d.train_clean, hit_noisy, hit_clean);
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>(s + 1));
    }
    EpochStats e;
    e.loss = loss_sum / static_cast<double>(steps);
    e.train_acc_noisy = hit_noisy / static_cast<double>(steps * b);
    e.train_acc_clean = hit_clean / static_cast<double>(steps * b);
    e.precision = sel_clean / sel_total;
    e.k = c.width;
    std::vector<ex::Mlp*> nets{&net1};  // the paper reports each network; we report network 1
    e.val_acc = ex::accuracy_by_prefix(nets, d.val, false).front();
    e.test_acc = ex::accuracy_by_prefix(nets, d.test, false).front();
    r.epochs.push_back(e);
    progress.epoch(epoch + 1, e.loss, e.train_acc_noisy, e.test_acc,
                   ex::format("forget %.3f  label precision %.2f%%", rate, 100.0 * e.precision));
  }
  return r;
}

/// Stage 2 of method 5 (Chen et al.): the two nested-dropout nets of stage 1 fine-tuned by
/// Co-teaching at a tenth of the learning rate, forget rate tau from the first epoch. Each step
/// splits the batch in halves; net 1 ranks its half, net 2 the other, both in eval mode with the
/// features truncated to the current k*; each net then trains on the samples its peer kept, with
/// one random nested mask shared by both. Test: logits of the two nets averaged, at k*.
RunResult train_nested_coteaching(const Config& c, const Data& d, ex::Mlp& net1, ex::Mlp& net2,
                                  std::uint64_t seed) {
  RunResult r;
  r.name = "nested + Co-teaching";
  r.epoch_offset = c.epochs;
  ex::OptimOptions o = adam(c);
  o.lr = c.lr * 0.1;
  ex::Optimizer opt1(net1, o), opt2(net2, o);
  const regula::NestedDropout<float> nested(chen_nested(c));
  regula::NestedDropoutContext nested_ctx;
  regula::Stream masks(seed, 9);
  regula::SmallLossSelector<float> sel1, sel2;
  std::vector<ex::Mlp*> both{&net1, &net2};
  Index k_star = best_k(ex::accuracy_by_prefix(both, d.val, true));
  Mat xa, xb, z, g, dh, xs;
  Vec loss;
  ex::Labels ya, yb, ys;
  std::vector<std::uint8_t> half_noisy;
  std::vector<Index> picked;
  ex::Progress progress(r.name, c.stage2_epochs);
  const auto n = static_cast<std::size_t>(d.train.size());
  const auto half = static_cast<std::size_t>(c.batch) / 2;
  const std::size_t keep = regula::keep_count(half, c.forget);
  // Ranks one half with `ranker` (features truncated to k*) and returns the kept columns.
  auto rank = [&](ex::Mlp& ranker, const Mat& xh, const ex::Labels& yh,
                  regula::SmallLossSelector<float>& sel) {
    ranker.forward_trunk(xh);
    Mat& h = ranker.features();
    if (k_star < h.rows()) h.bottomRows(h.rows() - k_star).setZero();
    ranker.forward_head(h, z);
    ex::cross_entropy_per_sample(z, yh, loss);
    return sel.select(loss, keep);
  };
  // One step of `net` on columns `cols` of (xh, yh), its features under nested dropout drawn from
  // `stream` (a copy of the same position for both nets: one shared prefix per step).
  auto learn = [&](ex::Mlp& net, ex::Optimizer& opt, const Mat& xh, const ex::Labels& yh,
                   const std::vector<Index>& cols, regula::Stream stream) {
    xs.resize(xh.rows(), static_cast<Index>(cols.size()));
    ys.resize(static_cast<Index>(cols.size()));
    for (std::size_t j = 0; j < cols.size(); ++j) {
      xs.col(static_cast<Index>(j)) = xh.col(cols[j]);
      ys(static_cast<Index>(j)) = yh(cols[j]);
    }
    net.forward_trunk(xs);
    Mat& h = net.features();
    nested.forward(h, h, stream, nested_ctx);
    net.forward_head(h, z);
    ex::cross_entropy_per_sample(z, ys, loss, g);
    g /= static_cast<float>(cols.size());
    net.zero_grad();
    net.backward_head(h, g, dh);
    nested.backward(dh, nested_ctx, dh);
    net.backward_trunk(xs, dh);
    opt.step();
    return static_cast<double>(loss.mean());
  };
  for (long epoch = 0; epoch < c.stage2_epochs; ++epoch) {
    const double lr = epoch >= c.stage2_epochs / 2 ? c.lr * 0.01 : c.lr * 0.1;  // x0.1 halfway
    opt1.options().lr = opt2.options().lr = lr;
    const std::vector<Index> order =
        ex::permutation(d.train.size(), seed, 500 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0, sel_clean = 0.0, sel_total = 0.0;
    const std::size_t steps = n / (2 * half);
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t first = s * 2 * half;
      ex::gather(d.train.x, d.train.y, order, first, half, xa, ya);
      ex::gather(d.train.x, d.train.y, order, first + half, half, xb, yb);
      const std::vector<Index> by1 = rank(net1, xa, ya, sel1);  // net 1 ranks half A
      const std::vector<Index> by2 = rank(net2, xb, yb, sel2);  // net 2 ranks half B
      for (int which = 0; which < 2; ++which) {
        const std::vector<Index>& sel = which == 0 ? by1 : by2;
        half_noisy.resize(half);
        for (std::size_t j = 0; j < half; ++j) {
          half_noisy[j] =
              d.train_noisy[static_cast<std::size_t>(order[first + (which == 0 ? 0 : half) + j])];
        }
        sel_clean += regula::label_precision(sel, half_noisy) * static_cast<double>(sel.size());
        sel_total += static_cast<double>(sel.size());
      }
      const regula::Stream step_masks = masks;                 // one random prefix for both nets
      masks.skip(1);                                           // a per-batch index uses one block
      loss_sum += learn(net1, opt1, xb, yb, by2, step_masks);  // net 1 learns what net 2 kept
      learn(net2, opt2, xa, ya, by1, step_masks);              // and vice versa
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>(s + 1));
    }
    EpochStats e;
    e.loss = loss_sum / static_cast<double>(steps);
    e.precision = sel_clean / sel_total;
    const std::vector<double> val_k = ex::accuracy_by_prefix(both, d.val, true);
    k_star = best_k(val_k);
    e.k = k_star;
    e.val_acc = val_k[static_cast<std::size_t>(k_star - 1)];
    r.test_by_k = ex::accuracy_by_prefix(both, d.test, true);
    e.test_acc = r.test_by_k[static_cast<std::size_t>(k_star - 1)];
    // Training accuracy of the ensemble at k* against noisy and clean labels.
    e.train_acc_noisy = ex::accuracy_at(both, d.train, k_star, &d.train_clean, &e.train_acc_clean);
    r.epochs.push_back(e);
    progress.epoch(epoch + 1, e.loss, e.train_acc_noisy, e.test_acc,
                   ex::format("val %.2f%%  k*=%td  label precision %.2f%%", 100.0 * e.val_acc,
                              k_star, 100.0 * e.precision));
  }
  return r;
}

bool wanted(const Config& c, const std::string& m) {
  return c.methods.empty() || std::find(c.methods.begin(), c.methods.end(), m) != c.methods.end();
}

void write_csvs(const Config& c, const std::vector<RunResult>& runs) {
  ex::make_dirs(c.out);
  std::map<std::string, std::string> file_names = {{"cross-entropy", "ce"},
                                                   {"dropout", "dropout"},
                                                   {"nested dropout", "nested"},
                                                   {"Co-teaching", "coteaching"},
                                                   {"nested + Co-teaching", "nested_coteaching"}};
  long last_epoch = 0;
  for (const RunResult& r : runs) {
    const std::string stem = file_names.count(r.name) ? file_names[r.name] : r.name;
    ex::Csv csv(c.out + "/run_" + stem + ".csv",
                {"epoch", "loss", "train_acc_noisy", "train_acc_clean", "val_acc", "test_acc",
                 "label_precision", "k"});
    for (std::size_t i = 0; i < r.epochs.size(); ++i) {
      const EpochStats& e = r.epochs[i];
      csv.row({static_cast<double>(r.epoch_offset + static_cast<long>(i) + 1), e.loss,
               e.train_acc_noisy, e.train_acc_clean, e.val_acc, e.test_acc, e.precision,
               static_cast<double>(e.k)});
    }
    last_epoch = std::max(last_epoch, r.epoch_offset + static_cast<long>(r.epochs.size()));
  }
  // Wide tables, one column per method, for plotting.
  for (const std::string& what :
       {std::string("test_acc"), std::string("label_precision"), std::string("train_acc_noisy")}) {
    std::vector<std::string> header{"epoch"};
    for (const RunResult& r : runs) header.push_back(r.name);
    ex::Csv csv(c.out + "/" + what + ".csv", header);
    for (long ep = 1; ep <= last_epoch; ++ep) {
      std::vector<double> row{static_cast<double>(ep)};
      for (const RunResult& r : runs) {
        const long i = ep - 1 - r.epoch_offset;
        double v = std::nan("");
        if (i >= 0 && i < static_cast<long>(r.epochs.size())) {
          const EpochStats& e = r.epochs[static_cast<std::size_t>(i)];
          v = what == "test_acc"          ? e.test_acc
              : what == "label_precision" ? e.precision
                                          : e.train_acc_noisy;
        }
        row.push_back(v);
      }
      csv.row(row);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv, kUsage);
  Config c;
  const bool smoke = args.flag("smoke");
  if (smoke) {
    c.epochs = 2;
    c.train = 512;
    c.val = 128;
    c.test = 256;
    c.width = 64;
  }
  c.epochs = args.integer("epochs", c.epochs);
  c.stage2_epochs = args.integer("stage2-epochs", std::max(1L, c.epochs / 2));
  c.noise_name = args.str("noise", "symmetric");
  if (c.noise_name == "pair") {
    c.noise = regula::LabelNoise::pair;
    c.rate = 0.45;
  } else if (c.noise_name != "symmetric") {
    std::fprintf(stderr, "--noise must be symmetric or pair, got '%s'\n", c.noise_name.c_str());
    return 2;
  }
  c.rate = args.num("rate", c.rate);
  c.forget = args.num("forget", c.rate);
  c.seed = args.integer("seed", c.seed);
  c.width = args.integer("width", c.width);
  c.train = args.integer("train", c.train);
  if (c.train <= 0 || c.train > 54000) c.train = 54000;
  c.val = std::max<Index>(c.train / 9, 64);
  ex::set_threads(static_cast<int>(args.integer("threads", 1)));
  c.test = args.integer("test", c.test);
  c.batch = args.integer("batch", c.batch);
  c.lr = args.num("lr", c.lr);
  c.dropout = args.num("dropout", c.dropout);
  c.sigma = args.num("sigma", c.sigma);
  c.data = args.str("data", "");
  c.out = args.str("out", "noisy_labels_out");
  {
    const std::string v = args.str("val-labels", "clean");
    if (v != "clean" && v != "noisy") {
      std::fprintf(stderr, "--val-labels must be clean or noisy, got '%s'\n", v.c_str());
      return 2;
    }
    c.clean_val = v == "clean";
  }
  {
    std::stringstream ss(args.str("methods", ""));
    for (std::string m; std::getline(ss, m, ',');) {
      if (!m.empty()) c.methods.push_back(m);
    }
  }
  args.finish();

  // Data: the first train + val samples of the training set. The noise is drawn for both with its
  // own seed (so the training labels are the same with either --val-labels); with clean
  // validation labels the split's draws are then discarded.
  ex::TrainTest tt = ex::load_fashion_mnist(c.data, static_cast<std::size_t>(c.train + c.val),
                                            static_cast<std::size_t>(c.test));
  Data d;
  d.source = tt.source;
  c.val = std::min<Index>(c.val, tt.train.size() / 5);
  c.train = tt.train.size() - c.val;
  const regula::NoisyLabels noisy = regula::inject_label_noise(
      tt.train.y, tt.train.classes, {c.noise, c.rate, static_cast<std::uint64_t>(c.seed)});
  d.train = ex::slice(tt.train, 0, c.train);
  d.train_clean = d.train.y;
  d.train.y.assign(noisy.labels.begin(), noisy.labels.begin() + c.train);
  d.train_noisy.assign(noisy.is_noisy.begin(), noisy.is_noisy.begin() + c.train);
  d.val = ex::slice(tt.train, c.train, c.val);
  if (!c.clean_val) d.val.y.assign(noisy.labels.begin() + c.train, noisy.labels.end());
  d.test = tt.test;
  d.realized_rate =
      static_cast<double>(std::accumulate(d.train_noisy.begin(), d.train_noisy.end(), 0)) /
      static_cast<double>(c.train);

  std::printf("regula %d.%d.%d noisy-label training on %s\n", REGULA_VERSION_MAJOR,
              REGULA_VERSION_MINOR, REGULA_VERSION_PATCH,
              tt.synthetic ? "a SYNTHETIC task (Fashion-MNIST not found)" : "Fashion-MNIST");
  std::printf(
      "  data %s: %td train (%s noise %.0f%%, realized %.2f%%), %td %s validation, %td clean "
      "test\n",
      d.source.c_str(), c.train, c.noise_name.c_str(), 100.0 * c.rate, 100.0 * d.realized_rate,
      c.val, c.clean_val ? "clean" : "noisy", d.test.size());
  std::printf(
      "  MLP 784-%td-%td-10 (ReLU, bias-free head), Adam lr %g, batch %ld, %ld epochs (+%ld "
      "Co-teaching "
      "fine-tune for method 5), seed %ld, %d thread%s\n",
      c.width, c.width, c.lr, c.batch, c.epochs, c.stage2_epochs, c.seed, regula::max_threads(),
      regula::max_threads() == 1 ? "" : "s");
  std::printf(
      "  dropout p %.2f; nested prior sigma %.0f (mean kept %.1f of %td); forget rate %.2f, ramp "
      "%.0f epochs\n",
      c.dropout, c.sigma, regula::NestedDropout<float>(chen_nested(c)).mean_kept(), c.width,
      c.forget, c.ramp);

  const auto seed = static_cast<std::uint64_t>(c.seed);
  std::vector<RunResult> runs;
  ex::Progress total("total", 0);
  if (wanted(c, "ce"))
    runs.push_back(train_single(c, d, Reg::none, "cross-entropy", seed * 10 + 1));
  if (wanted(c, "dropout"))
    runs.push_back(train_single(c, d, Reg::dropout, "dropout", seed * 10 + 2));
  ex::Mlp stage1_a = make_net(c, 0), stage1_b = make_net(c, 0);
  const bool combo = wanted(c, "nested+coteaching");
  if (wanted(c, "nested") || combo) {
    RunResult r = train_single(c, d, Reg::nested, "nested dropout", seed * 10 + 3, &stage1_a);
    if (wanted(c, "nested")) runs.push_back(std::move(r));
  }
  if (wanted(c, "coteaching")) runs.push_back(train_coteaching(c, d, seed * 10 + 4));
  if (combo) {
    train_single(c, d, Reg::nested, "nested dropout (2nd)", seed * 10 + 5, &stage1_b);
    runs.push_back(train_nested_coteaching(c, d, stage1_a, stage1_b, seed * 10 + 6));
  }
  write_csvs(c, runs);

  std::printf("\n== results == %s, %s %.0f%% noise, %s validation labels, seed %ld, %.0f s\n",
              tt.synthetic ? "SYNTHETIC task" : "Fashion-MNIST", c.noise_name.c_str(),
              100.0 * c.rate, c.clean_val ? "clean" : "noisy", c.seed, total.elapsed());
  std::printf("  %-22s %9s %9s %9s %13s %6s %16s\n", "method", "best test", "last test", "last-10",
              "test@best-val", "k*", "label precision");
  for (const RunResult& r : runs) {
    double best = 0.0, best_val = -1.0, at_best_val = 0.0;
    for (const EpochStats& e : r.epochs) {
      best = std::max(best, e.test_acc);
      if (e.val_acc > best_val) {
        best_val = e.val_acc;
        at_best_val = e.test_acc;
      }
    }
    // The Co-teaching paper's figure: the mean test accuracy of the last 10 epochs (of method 5's
    // fine-tune), or of all epochs in a shorter run.
    const std::size_t n_last = std::min<std::size_t>(10, r.epochs.size());
    double last10 = 0.0;
    for (std::size_t i = r.epochs.size() - n_last; i < r.epochs.size(); ++i) {
      last10 += r.epochs[i].test_acc;
    }
    last10 /= static_cast<double>(n_last);
    const EpochStats& last = r.epochs.back();
    std::printf(
        "  %-22s %8.2f%% %8.2f%% %8.2f%% %12.2f%% %6td %15s\n", r.name.c_str(), 100.0 * best,
        100.0 * last.test_acc, 100.0 * last10, 100.0 * at_best_val, last.k,
        std::isnan(last.precision) ? "-" : ex::format("%.2f%%", 100.0 * last.precision).c_str());
  }
  std::printf(
      "  (clean test accuracy; 'last' is the final epoch, 'last-10' the mean of the last 10;\n"
      "   test@best-val is the epoch chosen on the validation split; k* = features kept at test\n"
      "   time, chosen on the same split; label precision = share of clean labels among the\n"
      "   samples Co-teaching selected in the last epoch)\n");
  std::printf("  curves: %s/*.csv  (plot: examples/plot_csv.sh %s)\n", c.out.c_str(),
              c.out.c_str());
  return 0;
}
