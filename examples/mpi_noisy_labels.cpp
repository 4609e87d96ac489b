// Learning with noisy labels, data-parallel with MPI: the Co-teaching MLP of noisy_labels.cpp
// (Han et al., NeurIPS 2018) trained on P ranks.
//
// Every rank loads the same data, injects the same label noise and draws the same shuffle; each
// mini-batch of B samples (default 128) is split in rank order, rank r taking its shard of about
// B/P columns. Per step:
//
//   * dropout on the penultimate features of both networks, masks from
//     regula::mpi::rank_stream (each rank its own subsequence, no communication);
//   * per-sample cross-entropy of both networks on the shard;
//   * regula::mpi::GlobalCoTeaching: the small-loss selections are taken over the GLOBAL batch
//     (exactly what one process would keep on the concatenated batch) and each rank's logit
//     gradient columns are scaled by 1/k with k the global keep count;
//   * backward on the shard, then one MPI_Allreduce(SUM) of the model gradients of both networks
//     (a sum, not an average: the 1/k is already in the columns), so every rank takes the same
//     Adam step and keeps identical weights.
//
// Evaluation is split over the ranks too (each rank scores a slice, hits are summed). Rank 0
// prints the final table: best and last clean test accuracy and the label precision of the
// selected samples.
//
//   mpiexec -n 2 mpi_noisy_labels [--epochs 10] [--train 54000] [--seed 1] [--smoke] [--check]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include <mpi.h>

#include "common/data.hpp"
#include "common/losses.hpp"
#include "common/mlp.hpp"
#include "common/report.hpp"
#include <regula/integrations/mpi.hpp>
#include <regula/regula.hpp>

namespace {

using ex::Index;
using ex::Mat;
using ex::Vec;

const char* const kUsage =
    "usage: mpiexec -n P mpi_noisy_labels [options]\n"
    "  --epochs N     training epochs (default 10)\n"
    "  --train N      training samples (default and at most 54000); N/9 more are held out, with\n"
    "                 their noisy labels, for model selection\n"
    "  --seed S       seed of everything: noise, initialization, shuffles, masks (default 1)\n"
    "  --batch B      global mini-batch size, split over the ranks (default 128)\n"
    "  --rate R       symmetric noise rate; also the Co-teaching forget rate (default 0.5)\n"
    "  --dropout P    dropout probability on the penultimate features (default 0.25)\n"
    "  --width H      hidden width; the MLP is 784-H-H-10 (default 256)\n"
    "  --data DIR     Fashion-MNIST directory (default $REGULA_FASHION_MNIST_DIR or\n"
    "                 /usr/share/datasets/fashion-mnist; synthetic data when missing)\n"
    "  --smoke        a few hundred samples and 2 epochs: checks that everything runs\n"
    "  --check        train one epoch, then verify that the weights of both networks are bitwise\n"
    "                 identical on every rank (exit status 1 if not)\n"
    "  --skip-allreduce  do not sum the gradients over ranks (breaks training; shows that\n"
    "                 --check can fail)\n";

struct Config {
  long epochs = 10, seed = 1, batch = 128;
  Index width = 256, train = 54000, val = 6000, test = 10000;
  double rate = 0.5, lr = 1e-3, dropout = 0.25, ramp = 10.0;
  std::string data;
  bool check = false, skip_allreduce = false;
};

struct EpochStats {
  double loss = 0, train_acc_noisy = 0, train_acc_clean = 0, val_acc = 0, test_acc = 0,
         precision = 0;
};

/// The learning-rate plan of noisy_labels (and of the Co-teaching code): constant, then from 40%
/// of the run a linear decay towards 0 with Adam's beta1 switched from 0.9 to 0.1.
void schedule(ex::Optimizer& opt, const Config& c, long epoch) {
  const double decay_start = std::floor(0.4 * static_cast<double>(c.epochs));
  if (static_cast<double>(epoch) < decay_start) {
    opt.options().lr = c.lr;
    opt.options().beta1 = 0.9;
  } else {
    opt.options().lr = c.lr * static_cast<double>(c.epochs - epoch) /
                       (static_cast<double>(c.epochs) - decay_start);
    opt.options().beta1 = 0.1;
  }
}

ex::Mlp make_net(const Config& c, std::uint64_t seed) {
  ex::Mlp::Options o;
  o.hidden = {c.width, c.width};
  o.head_bias = false;
  o.seed = seed;
  return ex::Mlp(o);
}

/// The first sample and the size of rank r's shard of a batch of b samples over p ranks.
void shard(std::size_t b, int p, int r, std::size_t& first, std::size_t& n) {
  const std::size_t q = b / static_cast<std::size_t>(p), extra = b % static_cast<std::size_t>(p);
  const auto ur = static_cast<std::size_t>(r);
  first = ur * q + std::min(ur, extra);
  n = q + (ur < extra ? 1 : 0);
}

/// Sums the gradients of every parameter of `nets` over the ranks, in place, in one all-reduce.
void allreduce_gradients(const std::vector<ex::Mlp*>& nets, std::vector<float>& buffer) {
  buffer.clear();
  for (ex::Mlp* net : nets) {
    for (const ex::Linear& l : net->layers()) {
      buffer.insert(buffer.end(), l.dw.data(), l.dw.data() + l.dw.size());
      if (l.bias) buffer.insert(buffer.end(), l.db.data(), l.db.data() + l.db.size());
    }
  }
  MPI_Allreduce(MPI_IN_PLACE, buffer.data(), static_cast<int>(buffer.size()), MPI_FLOAT, MPI_SUM,
                MPI_COMM_WORLD);
  const float* p = buffer.data();
  for (ex::Mlp* net : nets) {
    for (ex::Linear& l : net->layers()) {
      std::memcpy(l.dw.data(), p, static_cast<std::size_t>(l.dw.size()) * sizeof(float));
      p += l.dw.size();
      if (l.bias) {
        std::memcpy(l.db.data(), p, static_cast<std::size_t>(l.db.size()) * sizeof(float));
        p += l.db.size();
      }
    }
  }
}

/// FNV-1a over the bytes of every parameter of `nets`: equal on two ranks iff (up to a 2^-64
/// collision) their weights are bitwise identical.
std::uint64_t checksum(const std::vector<ex::Mlp*>& nets) {
  std::uint64_t h = 14695981039346656037ULL;
  const auto mix = [&h](const float* p, Index n) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < static_cast<std::size_t>(n) * sizeof(float); ++i) {
      h = (h ^ bytes[i]) * 1099511628211ULL;
    }
  };
  for (const ex::Mlp* net : nets) {
    for (const ex::Linear& l : net->layers()) {
      mix(l.w.data(), l.w.size());
      if (l.bias) mix(l.b.data(), l.b.size());
    }
  }
  return h;
}

/// Accuracy of `net` on `d`, each rank scoring its slice of the samples.
double distributed_accuracy(ex::Mlp& net, const ex::Dataset& d, int ranks, int rank) {
  std::size_t first = 0, n = 0;
  shard(static_cast<std::size_t>(d.size()), ranks, rank, first, n);
  double hits = 0.0;
  if (n > 0) {
    std::vector<ex::Mlp*> nets{&net};
    const ex::Dataset mine = ex::slice(d, static_cast<Index>(first), static_cast<Index>(n));
    hits = ex::accuracy_at(nets, mine, net.feature_size()) * static_cast<double>(n);
  }
  MPI_Allreduce(MPI_IN_PLACE, &hits, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  return hits / static_cast<double>(d.size());
}

int run(int argc, char** argv, int rank, int ranks) {
  ex::Args args(argc, argv, kUsage);
  Config c;
  const bool smoke = args.flag("smoke");
  if (smoke) {
    c.epochs = 2;
    c.train = 512;
    c.test = 256;
    c.width = 64;
  }
  c.epochs = args.integer("epochs", c.epochs);
  c.train = args.integer("train", c.train);
  if (c.train <= 0 || c.train > 54000) c.train = 54000;
  c.val = std::max<Index>(c.train / 9, 64);
  c.seed = args.integer("seed", c.seed);
  c.batch = args.integer("batch", c.batch);
  c.rate = args.num("rate", c.rate);
  c.dropout = args.num("dropout", c.dropout);
  c.width = args.integer("width", c.width);
  c.data = args.str("data", "");
  c.check = args.flag("check");
  c.skip_allreduce = args.flag("skip-allreduce");
  args.finish();
  if (c.check) c.epochs = 1;
  if (c.batch < ranks || c.epochs < 1) {
    if (rank == 0)
      std::fprintf(stderr, "need --batch >= the number of ranks (%d) and --epochs >= 1\n", ranks);
    return 2;
  }
  ex::set_threads(1);

  // Identical on every rank: data, noise, initialization, shuffles.
  ex::TrainTest tt = ex::load_fashion_mnist(c.data, static_cast<std::size_t>(c.train + c.val),
                                            static_cast<std::size_t>(c.test));
  c.val = std::min<Index>(c.val, tt.train.size() / 5);
  c.train = tt.train.size() - c.val;
  const regula::NoisyLabels noisy = regula::inject_label_noise(
      tt.train.y, tt.train.classes,
      {regula::LabelNoise::symmetric_exclusive, c.rate, static_cast<std::uint64_t>(c.seed)});
  ex::Dataset train = ex::slice(tt.train, 0, c.train);
  const std::vector<std::int64_t> clean = train.y;
  train.y.assign(noisy.labels.begin(), noisy.labels.begin() + c.train);
  const std::vector<std::uint8_t> is_noisy(noisy.is_noisy.begin(),
                                           noisy.is_noisy.begin() + c.train);
  ex::Dataset val = ex::slice(tt.train, c.train, c.val);
  val.y.assign(noisy.labels.begin() + c.train, noisy.labels.end());
  const ex::Dataset& test = tt.test;

  const auto b = static_cast<std::size_t>(c.batch);
  std::size_t first = 0, nr = 0;
  shard(b, ranks, rank, first, nr);
  if (rank == 0) {
    std::printf("regula %d.%d.%d data-parallel Co-teaching on %s, %d rank%s\n",
                REGULA_VERSION_MAJOR, REGULA_VERSION_MINOR, REGULA_VERSION_PATCH,
                tt.synthetic ? "a SYNTHETIC task (Fashion-MNIST not found)" : "Fashion-MNIST",
                ranks, ranks == 1 ? "" : "s");
    std::printf("  %td train (symmetric noise %.0f%%), %td noisy validation, %td clean test\n",
                c.train, 100.0 * c.rate, c.val, test.size());
    std::printf(
        "  MLP 784-%td-%td-10, Adam lr %g, global batch %ld (rank 0 shard %zu), dropout %.2f, "
        "%ld epochs, forget rate %.2f ramped over %.0f epochs, seed %ld\n",
        c.width, c.width, c.lr, c.batch, nr, c.dropout, c.epochs, c.rate, c.ramp, c.seed);
    std::fflush(stdout);
  }

  const auto seed = static_cast<std::uint64_t>(c.seed) * 10 + 4;
  ex::Mlp net1 = make_net(c, seed), net2 = make_net(c, seed + 1000);
  const std::vector<ex::Mlp*> nets{&net1, &net2};
  ex::OptimOptions adam;
  adam.lr = c.lr;
  ex::Optimizer opt1(net1, adam), opt2(net2, adam);
  const regula::Dropout<float> drop(regula::DropoutOptions{c.dropout});
  regula::DropoutContext ctx1, ctx2;
  // Each network's masks from its own base subsequence, each rank from its own part of it.
  regula::Stream masks1 = regula::mpi::rank_stream(regula::Stream(seed, 7), MPI_COMM_WORLD);
  regula::Stream masks2 = regula::mpi::rank_stream(regula::Stream(seed, 8), MPI_COMM_WORLD);
  regula::mpi::GlobalCoTeaching<float> ct(MPI_COMM_WORLD);

  Mat x, z1, z2, g1, g2, dh;
  Vec l1, l2;
  ex::Labels y;
  std::vector<float> buffer;
  std::vector<EpochStats> epochs;
  ex::Progress progress(ex::format("Co-teaching x%d", ranks), c.epochs);
  const std::size_t steps = static_cast<std::size_t>(c.train) / b;  // drop_last
  for (long epoch = 0; epoch < c.epochs; ++epoch) {
    schedule(opt1, c, epoch);
    schedule(opt2, c, epoch);
    const double rate = regula::forget_rate({c.rate, c.ramp, 1.0}, static_cast<double>(epoch + 1));
    const std::vector<Index> order = ex::permutation(c.train, static_cast<std::uint64_t>(c.seed),
                                                     100 + static_cast<std::uint64_t>(epoch));
    // Local counts, summed over the ranks at the end of the epoch.
    double counts[4] = {0, 0, 0, 0};  // hits vs noisy, hits vs clean, selected clean, selected
    double loss_sum = 0.0;
    for (std::size_t s = 0; s < steps; ++s) {
      const std::size_t begin = s * b + first;
      ex::gather(train.x, train.y, order, begin, nr, x, y);
      for (std::size_t k = 0; k < 2; ++k) {
        ex::Mlp& net = *nets[k];
        net.forward_trunk(x);
        Mat& h = net.features();
        drop.forward(h, h, k == 0 ? masks1 : masks2, k == 0 ? ctx1 : ctx2);
        net.forward_head(h, k == 0 ? z1 : z2);
      }
      ex::cross_entropy_per_sample(z1, y, l1, g1);
      ex::cross_entropy_per_sample(z2, y, l2, g2);
      const regula::CoTeachingResult<float> res = ct.exchange(l1, l2, rate, g1, g2);
      for (const auto* sel : {&ct.selected_by_first(), &ct.selected_by_second()}) {
        for (const Index j : *sel) {
          counts[2] +=
              is_noisy[static_cast<std::size_t>(order[begin + static_cast<std::size_t>(j)])] ? 0.0
                                                                                             : 1.0;
        }
        counts[3] += static_cast<double>(sel->size());
      }
      for (std::size_t k = 0; k < 2; ++k) {
        ex::Mlp& net = *nets[k];
        net.zero_grad();
        net.backward_head(net.features(), k == 0 ? g1 : g2, dh);
        drop.backward(dh, k == 0 ? ctx1 : ctx2, dh);
        net.backward_trunk(x, dh);
      }
      if (!c.skip_allreduce) allreduce_gradients(nets, buffer);
      opt1.step();
      opt2.step();
      loss_sum += static_cast<double>(res.loss1);
      for (Index j = 0; j < z1.cols(); ++j) {
        Index best = 0;
        z1.col(j).maxCoeff(&best);
        counts[0] += best == y(j) ? 1.0 : 0.0;
        counts[1] +=
            best == clean[static_cast<std::size_t>(order[begin + static_cast<std::size_t>(j)])]
                ? 1.0
                : 0.0;
      }
      if (rank == 0) progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>(s + 1));
    }
    MPI_Allreduce(MPI_IN_PLACE, counts, 4, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    EpochStats e;
    const double seen = static_cast<double>(steps * b);
    e.loss = loss_sum / static_cast<double>(steps);
    e.train_acc_noisy = counts[0] / seen;
    e.train_acc_clean = counts[1] / seen;
    e.precision = counts[2] / counts[3];
    e.val_acc = distributed_accuracy(net1, val, ranks, rank);
    e.test_acc = distributed_accuracy(net1, test, ranks, rank);
    epochs.push_back(e);
    if (rank == 0) {
      progress.epoch(epoch + 1, e.loss, e.train_acc_noisy, e.test_acc,
                     ex::format("clean-train %.2f%%  forget %.3f  label precision %.2f%%",
                                100.0 * e.train_acc_clean, rate, 100.0 * e.precision));
    }
  }

  if (c.check) {
    // Bitwise-identical weights on every rank: the min and the max of the checksums agree.
    const std::uint64_t mine = checksum(nets);
    std::uint64_t lo = 0, hi = 0;
    MPI_Allreduce(&mine, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&mine, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    if (rank == 0) {
      if (lo == hi) {
        std::printf(
            "check passed: after 1 epoch the weights of both networks are bitwise identical on all "
            "%d ranks (checksum %016llx)\n",
            ranks, static_cast<unsigned long long>(lo));
      } else {
        std::printf(
            "check FAILED: after 1 epoch the weights differ across ranks (checksums %016llx .. "
            "%016llx)\n",
            static_cast<unsigned long long>(lo), static_cast<unsigned long long>(hi));
      }
    }
    return lo == hi ? 0 : 1;
  }

  if (rank == 0) {
    double best = 0.0, best_val = -1.0, at_best_val = 0.0;
    for (const EpochStats& e : epochs) {
      best = std::max(best, e.test_acc);
      if (e.val_acc > best_val) {
        best_val = e.val_acc;
        at_best_val = e.test_acc;
      }
    }
    const EpochStats& last = epochs.back();
    std::printf("\n== results == %s, symmetric %.0f%% noise, seed %ld, %d ranks, %.0f s\n",
                tt.synthetic ? "SYNTHETIC task" : "Fashion-MNIST", 100.0 * c.rate, c.seed, ranks,
                progress.elapsed());
    std::printf("  %-22s %9s %9s %13s %16s\n", "method", "best test", "last test", "test@best-val",
                "label precision");
    std::printf("  %-22s %8.2f%% %8.2f%% %12.2f%% %15.2f%%\n", "Co-teaching (MPI)", 100.0 * best,
                100.0 * last.test_acc, 100.0 * at_best_val, 100.0 * last.precision);
    std::printf(
        "  (clean test accuracy of network 1; 'last' is the final epoch; test@best-val is the "
        "epoch\n"
        "   chosen on the noisy validation split; label precision = share of clean labels among\n"
        "   the samples the global Co-teaching selection kept in the last epoch)\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  int status = 0;
  try {
    status = run(argc, argv, rank, ranks);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return status;
}
