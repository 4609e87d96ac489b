// Knowledge distillation on clean Fashion-MNIST: a wide MLP teacher, a small MLP student trained
// five ways from the same initialization and data order, test accuracy of each.
//
//   ce         cross-entropy alone
//   kd         Hinton KD: α·KD_T + (1 − α)·CE, regula::kd_kl, T = 4, α = 0.9 (mdistiller's 0.9/0.1)
//   dkd        CE + w(t)·DKD, regula::dkd with mdistiller's α = 1, β = 8, T = 4; w(t) ramps
//              linearly from 0 to 1 over the first epoch (mdistiller: 20 of 240 epochs)
//   sinkhorn   the KD loss above + 0.8·SinKD, regula::sinkhorn_kd with the official defaults
//              (T = 2, ε = 0.1, 20 iterations, λ = 1e-3, unrolled gradient), the RTE script's β
//   dual_head  DHKD: CE on the student's head, BinaryKL-Norm (T = 2) against the teacher on an
//              auxiliary linear head, the two feature gradients combined with gradient alignment
//              (regula::DualHeadKD, align on); evaluation uses the CE head
//
// Teacher 784-1024-1024-10 and student 784-32-10 (ReLU), Adam lr 1e-3, batch 128. The teacher's
// logits are computed once for the training set (eval mode).
//
//   distillation [--epochs 20] [--teacher-epochs 8] [--seeds 1] [--train 20000] [--smoke]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "common/data.hpp"
#include "common/mlp.hpp"
#include "common/report.hpp"
#include <regula/regula.hpp>

namespace {

using ex::Index;
using ex::Mat;
using ex::Vec;

const char* const kUsage =
    "usage: distillation [options]\n"
    "  --epochs N          student epochs (default 20)\n"
    "  --teacher-epochs N  teacher epochs (default 8)\n"
    "  --seeds N           student seeds seed..seed+N-1 (default 1)\n"
    "  --train N           training samples (default 20000; 0: all 60000); --test N (default "
    "10000)\n"
    "  --teacher-width H   teacher hidden width, two layers (default 1024)\n"
    "  --student-width H   student hidden width, one layer (default 32)\n"
    "  --alpha A           KD weight of kd and sinkhorn (default 0.9); --temperature T (default "
    "4)\n"
    "  --seed S            seed (default 1); --threads N (default 1); --data DIR; --out DIR\n"
    "  --smoke             a few hundred samples, 1 epoch, small nets\n";

enum class Method { ce, kd, dkd, sinkhorn, dual_head };
const Method kMethods[] = {Method::ce, Method::kd, Method::dkd, Method::sinkhorn,
                           Method::dual_head};

const char* name(Method m) {
  switch (m) {
    case Method::ce:
      return "ce";
    case Method::kd:
      return "kd";
    case Method::dkd:
      return "dkd";
    case Method::sinkhorn:
      return "sinkhorn";
    case Method::dual_head:
      return "dual_head";
  }
  return "?";
}

struct Config {
  long epochs = 20, teacher_epochs = 8, seeds = 1, seed = 1, batch = 128;
  Index train = 20000, test = 10000, teacher_width = 1024, student_width = 32;
  double alpha = 0.9, temperature = 4.0, lr = 1e-3;
  std::string data, out;
};

double test_accuracy(ex::Mlp& net, const ex::Dataset& te) {
  std::vector<ex::Mlp*> nets{&net};
  return ex::accuracy_by_prefix(nets, te, false).front();
}

void train_teacher(const Config& c, ex::Mlp& net, const ex::Dataset& tr, const ex::Dataset& te) {
  ex::OptimOptions oo;
  oo.lr = c.lr;
  ex::Optimizer opt(net, oo);
  Mat x, z, dz;
  ex::Labels y;
  const auto b = static_cast<std::size_t>(c.batch);
  const std::size_t steps = static_cast<std::size_t>(tr.size()) / b;
  ex::Progress progress("teacher", c.teacher_epochs);
  for (long epoch = 0; epoch < c.teacher_epochs; ++epoch) {
    const std::vector<Index> order = ex::permutation(tr.size(), static_cast<std::uint64_t>(c.seed),
                                                     1000 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0;
    for (std::size_t s = 0; s < steps; ++s) {
      ex::gather(tr.x, tr.y, order, s * b, b, x, y);
      net.forward(x, z);
      dz.resize(z.rows(), z.cols());
      loss_sum += static_cast<double>(regula::cross_entropy(z, y, dz));
      net.zero_grad();
      Mat dh;
      net.backward_head(net.features(), dz, dh);
      net.backward_trunk(x, dh);
      opt.step();
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>(s + 1));
    }
    progress.epoch(epoch + 1, loss_sum / static_cast<double>(steps), std::nan(""),
                   test_accuracy(net, te));
  }
}

/// Trains one student with `m`; returns the test accuracy of the last epoch.
double train_student(const Config& c, Method m, long seed, const ex::Dataset& tr,
                     const Mat& teacher_logits, const ex::Dataset& te, ex::Csv& csv) {
  ex::Mlp::Options o;
  o.hidden = {c.student_width};
  o.seed = static_cast<std::uint64_t>(seed);  // the same initialization for every method
  ex::Mlp net(o);
  ex::Linear aux(c.student_width, 10, true, static_cast<std::uint64_t>(seed),
                 50);  // DHKD's second head
  ex::OptimOptions oo;
  oo.lr = c.lr;
  std::vector<ex::Linear*> extra;
  if (m == Method::dual_head) extra.push_back(&aux);
  ex::Optimizer opt(net, extra, oo);

  const auto kd_opt = regula::KDLossOptions{}.with_temperature(c.temperature);
  const auto dkd_opt = regula::DKDOptions{}.with_temperature(c.temperature);
  const regula::SinkhornKDOptions sk_opt{};
  regula::SinkhornKDWorkspace<float> sk_ws;
  const auto bkl_opt = regula::KDLossOptions{}.with_temperature(2.0);
  const regula::DualHeadKD<float> dh_kd(regula::DualHeadOptions{}.with_align(true));
  const auto a = static_cast<float>(c.alpha);

  Mat x, v, z, z2, dz, dz2, dtmp, dh, dh1, dh2;
  ex::Labels y;
  const std::vector<std::int64_t> no_labels(static_cast<std::size_t>(tr.size()), 0);
  ex::Labels y_unused;
  const auto b = static_cast<std::size_t>(c.batch);
  const std::size_t steps = static_cast<std::size_t>(tr.size()) / b;
  ex::Progress progress(ex::format("%s seed %ld", name(m), seed), c.epochs);
  double acc = 0.0;
  long step = 0;
  for (long epoch = 0; epoch < c.epochs; ++epoch) {
    // The same data order for every method.
    const std::vector<Index> order = ex::permutation(tr.size(), static_cast<std::uint64_t>(seed),
                                                     100 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0;
    for (std::size_t s = 0; s < steps; ++s, ++step) {
      ex::gather(tr.x, tr.y, order, s * b, b, x, y);
      ex::gather(teacher_logits, no_labels, order, s * b, b, v, y_unused);
      net.forward_trunk(x);
      net.forward_head(net.features(), z);
      dz.resize(z.rows(), z.cols());
      dtmp.resize(z.rows(), z.cols());
      float loss = 0.0F;
      switch (m) {
        case Method::ce:
          loss = regula::cross_entropy(z, y, dz);
          break;
        case Method::kd:
        case Method::sinkhorn: {
          loss = (1.0F - a) * regula::cross_entropy(z, y, dz);
          dz *= 1.0F - a;
          loss += a * regula::kd_kl(z, v, dtmp, kd_opt);
          dz += a * dtmp;
          if (m == Method::sinkhorn) {
            loss += 0.8F * regula::sinkhorn_kd<float>(z, v, dtmp, sk_ws, sk_opt);
            dz += 0.8F * dtmp;
          }
          break;
        }
        case Method::dkd: {
          const auto w = static_cast<float>(
              std::min(1.0, static_cast<double>(step + 1) / static_cast<double>(steps)));
          loss = regula::cross_entropy(z, y, dz);
          loss += w * regula::dkd(z, v, y, dtmp, dkd_opt);
          dz += w * dtmp;
          break;
        }
        case Method::dual_head: {
          aux.forward(net.features(), z2);
          dz2.resize(z2.rows(), z2.cols());
          auto ce = [&](const regula::MatrixCRef<float>& zz, regula::MatrixRef<float> d) {
            return regula::cross_entropy(zz, y, d);
          };
          auto bkln = [&](const regula::MatrixCRef<float>& zz, regula::MatrixRef<float> d) {
            return regula::binary_kl_norm(zz, v, d, bkl_opt);
          };
          loss = dh_kd.forward_backward(z, z2, ce, bkln, dz, dz2).total;
          break;
        }
      }
      net.zero_grad();
      if (m == Method::dual_head) {
        aux.dw.setZero();
        aux.db.setZero();
        net.backward_head(net.features(), dz, dh1);
        aux.backward(net.features(), dz2, &dh2);
        dh.resize(dh1.rows(), dh1.cols());
        dh_kd.combine(dh1, dh2, dh);
      } else {
        net.backward_head(net.features(), dz, dh);
      }
      net.backward_trunk(x, dh);
      opt.step();
      loss_sum += static_cast<double>(loss);
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>(s + 1));
    }
    acc = test_accuracy(net, te);
    csv.row({static_cast<double>(static_cast<int>(m)), static_cast<double>(seed),
             static_cast<double>(epoch + 1), loss_sum / static_cast<double>(steps), acc});
    progress.epoch(epoch + 1, loss_sum / static_cast<double>(steps), std::nan(""), acc);
  }
  return acc;
}

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv, kUsage);
  Config c;
  if (args.flag("smoke")) {
    c.epochs = c.teacher_epochs = 1;
    c.train = 512;
    c.test = 256;
    c.teacher_width = 64;
    c.student_width = 16;
  }
  c.epochs = args.integer("epochs", c.epochs);
  c.teacher_epochs = args.integer("teacher-epochs", c.teacher_epochs);
  c.seeds = args.integer("seeds", c.seeds);
  c.train = args.integer("train", c.train);
  c.test = args.integer("test", c.test);
  c.teacher_width = args.integer("teacher-width", c.teacher_width);
  c.student_width = args.integer("student-width", c.student_width);
  c.alpha = args.num("alpha", c.alpha);
  c.temperature = args.num("temperature", c.temperature);
  c.seed = args.integer("seed", c.seed);
  ex::set_threads(static_cast<int>(args.integer("threads", 1)));
  c.data = args.str("data", "");
  c.out = args.str("out", "distillation_out");
  args.finish();
  if (c.epochs < 1 || c.teacher_epochs < 1 || c.seeds < 1) {
    std::fprintf(stderr, "distillation: epochs, teacher-epochs and seeds must be >= 1\n%s", kUsage);
    return 2;
  }

  const ex::TrainTest tt = ex::load_fashion_mnist(c.data, static_cast<std::size_t>(c.train),
                                                  static_cast<std::size_t>(c.test));
  std::printf(
      "regula distillation on %s: %td train, %td test; teacher MLP 784-%td-%td-10 (%ld epochs), "
      "student MLP 784-%td-10 (%ld epochs), Adam lr %g, batch %ld, %ld seed(s) from %ld\n",
      tt.synthetic ? "a SYNTHETIC task (Fashion-MNIST not found)" : "Fashion-MNIST",
      tt.train.size(), tt.test.size(), c.teacher_width, c.teacher_width, c.teacher_epochs,
      c.student_width, c.epochs, c.lr, c.batch, c.seeds, c.seed);

  ex::Mlp::Options to;
  to.hidden = {c.teacher_width, c.teacher_width};
  to.seed = static_cast<std::uint64_t>(c.seed) + 1000;
  ex::Mlp teacher(to);
  train_teacher(c, teacher, tt.train, tt.test);
  const double teacher_acc = test_accuracy(teacher, tt.test);
  Mat teacher_logits;
  teacher.forward(tt.train.x, teacher_logits);

  ex::make_dirs(c.out);
  ex::Csv csv(c.out + "/students.csv", {"method", "seed", "epoch", "loss", "test_acc"});
  std::map<Method, std::vector<double>> acc;
  for (long s = 0; s < c.seeds; ++s) {
    for (Method m : kMethods)
      acc[m].push_back(train_student(c, m, c.seed + s, tt.train, teacher_logits, tt.test, csv));
  }

  std::printf("\n== results == %s, teacher %.2f%%, student 784-%td-10, %ld epochs, %ld seed(s)\n",
              tt.synthetic ? "SYNTHETIC task" : "Fashion-MNIST", 100.0 * teacher_acc,
              c.student_width, c.epochs, c.seeds);
  std::printf("  %-10s %12s %10s %12s  %s\n", "student", "test acc", "std", "vs ce", "per seed");
  const auto mean = [](const std::vector<double>& v) {
    double s = 0.0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  };
  const double ce_mean = mean(acc[Method::ce]);
  for (Method m : kMethods) {
    const std::vector<double>& v = acc[m];
    const double mu = mean(v);
    double var = 0.0;
    for (double x : v) var += (x - mu) * (x - mu);
    const double sd = v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0;
    std::string per;
    for (double x : v) per += ex::format(" %.2f", 100.0 * x);
    std::printf("  %-10s %11.2f%% %9.2f  %+10.2f pt %s\n", name(m), 100.0 * mu, 100.0 * sd,
                100.0 * (mu - ce_mean), per.c_str());
  }
  std::printf("  curves: %s/students.csv (method 0..4 = ce, kd, dkd, sinkhorn, dual_head)\n",
              c.out.c_str());
  return 0;
}
