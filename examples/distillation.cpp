// Knowledge distillation on clean Fashion-MNIST: MLP students of two widths trained five ways
// from the same initialization and data order, each method at settings tuned on a validation
// split, over several seeds; and Hinton et al.'s "soft targets as a regulariser" test.
//
//   ce         cross-entropy alone
//   kd         Hinton KD: α·KD_T + (1 − α)·CE, regula::kd_kl (T² scaling); tuned: T, α
//   dkd        CE + w(t)·DKD, regula::dkd, α = 1, T = 4; tuned: β. w(t) ramps linearly from 0
//              to 1 over the first epoch (mdistiller: 20 of 240 epochs)
//   sinkhorn   the tuned KD loss + λ·SinKD, regula::sinkhorn_kd with the official defaults
//              (T = 2, ε = 0.1, 20 iterations, unrolled gradient); tuned: λ
//   dual_head  DHKD: CE on the student's head, BinaryKL-Norm against the teacher on an auxiliary
//              linear head, the two feature gradients combined with gradient alignment
//              (regula::DualHeadKD); evaluation uses the CE head; tuned: T
//
// Data: the first 55,000 training images train, the last 5,000 are the validation split on which
// every setting is chosen (one tuning seed, not among the reported seeds), the 10,000 test images
// only score. Students 784-H-10 (ReLU) for each H of --widths, Adam lr 1e-3 with a cosine decay
// to 0, batch 128. The score of a run is its test accuracy at the last epoch.
//
// The teacher: with --teacher-logits FILE, the logits written by torch_fashion_teacher (a CNN
// trained on the same 55,000 images); without it, a 784-1024-1024-10 MLP trained here first (a
// weak teacher, kept for builds without libtorch).
//
// Few labels (--few F, default 0.03): the widest student trained on the first F·55,000 training
// images only, with their hard labels (CE) or with the teacher's soft targets alone (KD, α = 1,
// the tuned T), for --few-epochs epochs; the test accuracy at the last epoch and at the epoch of
// best validation accuracy (early stopping).
//
//   distillation [--teacher-logits FILE] [--widths 32,512] [--epochs 20] [--seeds 5] [--smoke]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
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

const char* const kUsage =
    "usage: distillation [options]\n"
    "  --teacher-logits F  teacher logits of the 60,000 training images (torch_fashion_teacher);\n"
    "                      without it an MLP teacher is trained here\n"
    "  --widths LIST       student hidden widths, one layer each (default 32,512)\n"
    "  --epochs N          student epochs (default 20)\n"
    "  --seeds N           reported seeds seed..seed+N-1 (default 5); --seed S (default 1)\n"
    "  --tune-seed S       the seed of the tuning runs (default 100); --no-tune: mdistiller's\n"
    "                      settings (T 4, α 0.9, β 8, λ 0.8, dual-head T 2) without a search;\n"
    "                      --tune: search even with --smoke\n"
    "  --train N           training images (default 55000); --val N (default 5000); --test N\n"
    "  --few F             share of the training images for the few-labels test (default 0.03;\n"
    "                      0: skip); --few-epochs N (default 100)\n"
    "  --teacher-epochs N  epochs of the MLP teacher (default 8; without --teacher-logits)\n"
    "  --threads N (default 1); --data DIR; --out DIR\n"
    "  --smoke             a few hundred samples, 1 epoch, small nets, no search\n";

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

/// DKD's temperature (mdistiller's CIFAR-100 value); not searched.
constexpr double kDkdTemperature = 4.0;

/// One method's hyper-parameters. `temperature` and `alpha` are KD's (also the KD part of
/// sinkhorn); `beta` is DKD's; `weight` is SinKD's λ; `dh_temperature` is BinaryKL-Norm's.
struct Setting {
  Method method = Method::ce;
  double temperature = 4.0, alpha = 0.9, beta = 8.0, weight = 0.8, dh_temperature = 2.0;
};

std::string describe(const Setting& s) {
  switch (s.method) {
    case Method::ce:
      return "-";
    case Method::kd:
      return ex::format("T %g, alpha %g", s.temperature, s.alpha);
    case Method::dkd:
      return ex::format("T %g, alpha 1, beta %g", kDkdTemperature, s.beta);
    case Method::sinkhorn:
      return ex::format("KD (T %g, alpha %g) + %g SinKD", s.temperature, s.alpha, s.weight);
    case Method::dual_head:
      return ex::format("T %g", s.dh_temperature);
  }
  return "?";
}

struct Config {
  long epochs = 20, teacher_epochs = 8, seeds = 5, seed = 1, tune_seed = 100, batch = 128;
  long few_epochs = 100;
  Index train = 55000, val = 5000, test = 10000;
  std::vector<long> widths = {32, 512};
  double lr = 1e-3, few = 0.03;
  bool tune = true;
  std::string data, out, teacher_logits;
};

/// What a run reports: the last epoch's validation and test accuracy, and the test accuracy at
/// the epoch of best validation accuracy.
struct Result {
  double val = 0.0, test = 0.0, best_val = -1.0, test_at_best_val = 0.0;
};

double accuracy(ex::Mlp& net, const ex::Dataset& d) {
  std::vector<ex::Mlp*> nets{&net};
  return ex::accuracy_by_prefix(nets, d, false).front();
}

void train_teacher(const Config& c, ex::Mlp& net, const ex::Dataset& tr, const ex::Dataset& va) {
  ex::OptimOptions oo;
  oo.lr = c.lr;
  ex::Optimizer opt(net, oo);
  Mat x, z, dz, dh;
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
      net.backward_head(net.features(), dz, dh);
      net.backward_trunk(x, dh);
      opt.step();
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>(s + 1));
    }
    progress.epoch(epoch + 1, loss_sum / static_cast<double>(steps), std::nan(""),
                   accuracy(net, va), "(the test column is validation)");
  }
}

/// Reads the file torch_fashion_teacher writes: "RGKT", int32 version 1, n, classes, 0; float64
/// test and validation accuracy; n × classes float32 logits, sample-major (a classes × n
/// column-major matrix). Exits with a message if the file does not match `n` and `classes`.
Mat load_teacher_logits(const std::string& path, Index n, Index classes, double& test_acc,
                        double& val_acc) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    std::fprintf(stderr, "distillation: cannot open --teacher-logits %s\n", path.c_str());
    std::exit(2);
  }
  char magic[4] = {};
  std::int32_t head[4] = {};
  double accs[2] = {};
  bool ok = std::fread(magic, 1, 4, f) == 4 && std::fread(head, sizeof head, 1, f) == 1 &&
            std::fread(accs, sizeof accs, 1, f) == 1;
  ok = ok && std::string(magic, 4) == "RGKT" && head[0] == 1;
  if (!ok || head[1] != n || head[2] != classes) {
    std::fclose(f);
    std::fprintf(stderr,
                 "distillation: %s is not a teacher-logits file (version 1) of %td samples × %td "
                 "classes (read: %s, %d × %d); it must cover the whole training file\n",
                 path.c_str(), n, classes, ok ? "RGKT v1" : "no RGKT v1 header", head[1], head[2]);
    std::exit(2);
  }
  Mat logits(classes, n);
  const auto count = static_cast<std::size_t>(classes * n);
  ok = std::fread(logits.data(), sizeof(float), count, f) == count && std::fgetc(f) == EOF;
  std::fclose(f);
  if (!ok || !logits.allFinite()) {
    std::fprintf(stderr, "distillation: %s is truncated, too long or not finite\n", path.c_str());
    std::exit(2);
  }
  test_acc = accs[0];
  val_acc = accs[1];
  return logits;
}

/// Trains one student 784-width-10 with setting `s`. Every epoch: validation and test accuracy
/// (one CSV row). Same initialization and data order for every setting of a seed.
Result train_student(const Config& c, const Setting& st, Index width, long epochs, long seed,
                     const ex::Dataset& tr, const Mat& teacher_logits, const ex::Dataset& va,
                     const ex::Dataset& te, const std::string& label, ex::Csv* csv) {
  ex::Mlp::Options o;
  o.hidden = {width};
  o.seed = static_cast<std::uint64_t>(seed);
  ex::Mlp net(o);
  ex::Linear aux(width, 10, true, static_cast<std::uint64_t>(seed), 50);  // DHKD's second head
  ex::OptimOptions oo;
  oo.lr = c.lr;
  std::vector<ex::Linear*> extra;
  if (st.method == Method::dual_head) extra.push_back(&aux);
  ex::Optimizer opt(net, extra, oo);

  const auto kd_opt = regula::KDLossOptions{}.with_temperature(st.temperature);
  const auto dkd_opt = regula::DKDOptions{}.with_beta(st.beta).with_temperature(kDkdTemperature);
  const regula::SinkhornKDOptions sk_opt{};
  regula::SinkhornKDWorkspace<float> sk_ws;
  const auto bkl_opt = regula::KDLossOptions{}.with_temperature(st.dh_temperature);
  const regula::DualHeadKD<float> dh_kd(regula::DualHeadOptions{}.with_align(true));
  const auto a = static_cast<float>(st.alpha);
  const auto lam = static_cast<float>(st.weight);

  Mat x, v, z, z2, dz, dz2, dtmp, dh, dh1, dh2;
  ex::Labels y, y_unused;
  const std::vector<std::int64_t> no_labels(static_cast<std::size_t>(tr.size()), 0);
  const auto b = static_cast<std::size_t>(std::min<Index>(c.batch, tr.size()));
  const std::size_t steps = static_cast<std::size_t>(tr.size()) / b;
  const double total = static_cast<double>(steps) * static_cast<double>(epochs);
  ex::Progress progress(label, epochs);
  Result r;
  long step = 0;
  for (long epoch = 0; epoch < epochs; ++epoch) {
    const std::vector<Index> order = ex::permutation(tr.size(), static_cast<std::uint64_t>(seed),
                                                     100 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0;
    for (std::size_t s = 0; s < steps; ++s, ++step) {
      const double pi = 3.14159265358979323846;
      opt.options().lr = c.lr * 0.5 * (1.0 + std::cos(pi * static_cast<double>(step) / total));
      ex::gather(tr.x, tr.y, order, s * b, b, x, y);
      ex::gather(teacher_logits, no_labels, order, s * b, b, v, y_unused);
      net.forward_trunk(x);
      net.forward_head(net.features(), z);
      dz.resize(z.rows(), z.cols());
      dtmp.resize(z.rows(), z.cols());
      float loss = 0.0F;
      switch (st.method) {
        case Method::ce:
          loss = regula::cross_entropy(z, y, dz);
          break;
        case Method::kd:
        case Method::sinkhorn: {
          if (a < 1.0F) {
            loss = (1.0F - a) * regula::cross_entropy(z, y, dz);
            dz *= 1.0F - a;
          } else {
            dz.setZero();
          }
          loss += a * regula::kd_kl(z, v, dtmp, kd_opt);
          dz += a * dtmp;
          if (st.method == Method::sinkhorn) {
            loss += lam * regula::sinkhorn_kd<float>(z, v, dtmp, sk_ws, sk_opt);
            dz += lam * dtmp;
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
      if (st.method == Method::dual_head) {
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
    r.val = accuracy(net, va);
    r.test = accuracy(net, te);
    if (r.val > r.best_val) {
      r.best_val = r.val;
      r.test_at_best_val = r.test;
    }
    const double loss = loss_sum / static_cast<double>(steps);
    if (csv != nullptr) {
      csv->row({static_cast<double>(width), static_cast<double>(static_cast<int>(st.method)),
                static_cast<double>(seed), static_cast<double>(epoch + 1), loss, r.val, r.test});
    }
    progress.epoch(epoch + 1, loss, std::nan(""), r.test,
                   ex::format("validation %.2f%%", 100 * r.val));
  }
  return r;
}

/// The settings of one width: mdistiller's defaults, or each method's grid searched on the
/// validation accuracy at the last epoch of one run with `c.tune_seed`.
std::map<Method, Setting> tune(const Config& c, Index width, const ex::Dataset& tr,
                               const Mat& teacher_logits, const ex::Dataset& va,
                               const ex::Dataset& te, ex::Csv& csv) {
  std::map<Method, Setting> best;
  for (const Method m : kMethods) best[m].method = m;
  if (!c.tune) return best;
  const auto search = [&](const std::vector<Setting>& grid) {
    double best_val = -1.0;
    Setting chosen = grid.front();
    for (const Setting& s : grid) {
      const Result r = train_student(
          c, s, width, c.epochs, c.tune_seed, tr, teacher_logits, va, te,
          ex::format("tune H %td %s %s", width, name(s.method), describe(s).c_str()), nullptr);
      csv.row({static_cast<double>(width), static_cast<double>(static_cast<int>(s.method)),
               s.temperature, s.alpha, s.beta, s.weight, s.dh_temperature, r.val, r.test});
      if (r.val > best_val) {
        best_val = r.val;
        chosen = s;
      }
    }
    std::printf("  tuned H %td %-10s %s (validation %.2f%%)\n", width, name(chosen.method),
                describe(chosen).c_str(), 100.0 * best_val);
    return chosen;
  };
  // `base` with `field` set to each of `values`.
  const auto vary = [](Setting base, double Setting::*field, std::initializer_list<double> values) {
    std::vector<Setting> grid;
    for (const double v : values) {
      base.*field = v;
      grid.push_back(base);
    }
    return grid;
  };
  const auto with_method = [](Method m) {
    Setting s;
    s.method = m;
    return s;
  };
  std::vector<Setting> kd_grid;
  for (const double t : {1.0, 2.0, 4.0, 8.0}) {
    Setting s = with_method(Method::kd);
    s.temperature = t;
    const std::vector<Setting> g = vary(s, &Setting::alpha, {0.5, 0.9});
    kd_grid.insert(kd_grid.end(), g.begin(), g.end());
  }
  best[Method::kd] = search(kd_grid);
  best[Method::dkd] = search(vary(with_method(Method::dkd), &Setting::beta, {0.5, 1, 2, 4, 8}));
  Setting sk = best[Method::kd];
  sk.method = Method::sinkhorn;
  best[Method::sinkhorn] = search(vary(sk, &Setting::weight, {0.1, 0.3, 0.8}));
  best[Method::dual_head] =
      search(vary(with_method(Method::dual_head), &Setting::dh_temperature, {1, 2, 4}));
  return best;
}

std::string mean_sd(const std::vector<double>& v) {
  const ex::Stat s = ex::stat(v);
  return ex::format("%.2f ± %.2f", 100.0 * s.mean, 100.0 * s.sd);
}

/// "yes" when the mean gain over `base` exceeds twice the larger of the two seed stds.
const char* verdict(const std::vector<double>& v, const std::vector<double>& base) {
  const ex::Stat s = ex::stat(v), b = ex::stat(base);
  if (v.size() < 2) return "(1 seed)";
  return s.mean - b.mean > 2.0 * std::max(s.sd, b.sd) ? "yes" : "no";
}

std::string per_seed(const std::vector<double>& v) {
  std::string out;
  for (const double x : v) out += ex::format(" %.2f", 100.0 * x);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv, kUsage);
  Config c;
  const bool smoke = args.flag("smoke");
  if (smoke) {
    c.epochs = c.teacher_epochs = 1;
    c.train = 512;
    c.val = 256;
    c.test = 256;
    c.widths = {16, 32};
    c.seeds = 1;
    c.tune = false;
    c.few = 0.25;
    c.few_epochs = 2;
  }
  c.teacher_logits = args.str("teacher-logits", "");
  if (args.has("widths")) c.widths = ex::parse_integers(args.str("widths", ""));
  c.epochs = args.integer("epochs", c.epochs);
  c.teacher_epochs = args.integer("teacher-epochs", c.teacher_epochs);
  c.seeds = args.integer("seeds", c.seeds);
  c.seed = args.integer("seed", c.seed);
  c.tune_seed = args.integer("tune-seed", c.tune_seed);
  if (args.flag("no-tune")) c.tune = false;
  if (args.flag("tune")) c.tune = true;  // e.g. with --smoke, which skips the search
  c.train = args.integer("train", c.train);
  c.val = args.integer("val", c.val);
  c.test = args.integer("test", c.test);
  c.few = args.num("few", c.few);
  c.few_epochs = args.integer("few-epochs", c.few_epochs);
  ex::set_threads(static_cast<int>(args.integer("threads", 1)));
  c.data = args.str("data", "");
  c.out = args.str("out", "distillation_out");
  args.finish();
  const bool widths_ok =
      !c.widths.empty() &&
      std::all_of(c.widths.begin(), c.widths.end(), [](long w) { return w >= 1 && w <= 65536; });
  if (c.epochs < 1 || c.teacher_epochs < 1 || c.seeds < 1 || c.few_epochs < 1 || c.train < 1 ||
      c.val < 1 || !widths_ok || !(c.few >= 0.0 && c.few < 1.0)) {
    std::fprintf(stderr,
                 "distillation: epochs, teacher-epochs, seeds, few-epochs, train and val must be "
                 ">= 1, widths a comma-separated list of integers in [1, 65536], 0 <= few < 1\n%s",
                 kUsage);
    return 2;
  }

  // The whole training file: the teacher's logits cover it, and validation is its tail.
  const ex::TrainTest tt = ex::load_fashion_mnist(
      c.data, smoke && c.teacher_logits.empty() ? static_cast<std::size_t>(c.train + c.val) : 60000,
      static_cast<std::size_t>(c.test));
  if (c.train + c.val > tt.train.size()) {
    std::fprintf(stderr, "distillation: --train %td + --val %td exceed the %td training images\n",
                 c.train, c.val, tt.train.size());
    return 2;
  }
  const ex::Dataset tr = ex::slice(tt.train, 0, c.train);
  const ex::Dataset va = ex::slice(tt.train, tt.train.size() - c.val, c.val);
  const ex::Dataset& te = tt.test;

  double teacher_test = 0.0, teacher_val = 0.0;
  Mat teacher_logits;
  std::string teacher_name;
  if (!c.teacher_logits.empty()) {
    if (tt.synthetic) {
      std::fprintf(stderr,
                   "distillation: Fashion-MNIST not found; --teacher-logits needs the real "
                   "training file\n");
      return 2;
    }
    teacher_logits =
        load_teacher_logits(c.teacher_logits, tt.train.size(), 10, teacher_test, teacher_val);
    teacher_name = "CNN (" + c.teacher_logits + ")";
  } else {
    ex::Mlp::Options to;
    to.hidden = smoke ? std::vector<Index>{64, 64} : std::vector<Index>{1024, 1024};
    to.seed = static_cast<std::uint64_t>(c.seed) + 1000;
    ex::Mlp teacher(to);
    train_teacher(c, teacher, tr, va);
    teacher_test = accuracy(teacher, te);
    teacher_val = accuracy(teacher, va);
    teacher.forward(tt.train.x, teacher_logits);
    teacher_name = ex::format("MLP 784-%td-%td-10 trained here", to.hidden[0], to.hidden[1]);
  }
  std::printf(
      "regula distillation on %s: %td train, %td validation, %td test; teacher %s: validation "
      "%.2f%%, test %.2f%%; students 784-H-10, %ld epochs, Adam lr %g with cosine decay, batch "
      "%ld, %ld seed(s) from %ld, settings %s\n",
      tt.synthetic ? "a SYNTHETIC task (Fashion-MNIST not found)" : "Fashion-MNIST", tr.size(),
      va.size(), te.size(), teacher_name.c_str(), 100.0 * teacher_val, 100.0 * teacher_test,
      c.epochs, c.lr, c.batch, c.seeds, c.seed,
      c.tune ? ex::format("tuned on validation (seed %ld)", c.tune_seed).c_str()
             : "mdistiller's defaults");

  ex::make_dirs(c.out);
  ex::Csv tuning_csv(c.out + "/tuning.csv", {"width", "method", "temperature", "alpha", "beta",
                                             "weight", "dh_temperature", "val_acc", "test_acc"});
  ex::Csv csv(c.out + "/students.csv",
              {"width", "method", "seed", "epoch", "loss", "val_acc", "test_acc"});
  // [width][method] → per-seed last-epoch test accuracy, and the chosen settings.
  std::map<long, std::map<Method, std::vector<double>>> acc;
  std::map<long, std::map<Method, Setting>> chosen;
  for (const long w : c.widths) {
    chosen[w] = tune(c, w, tr, teacher_logits, va, te, tuning_csv);
    for (long s = 0; s < c.seeds; ++s) {
      for (const Method m : kMethods) {
        const Result r =
            train_student(c, chosen[w][m], w, c.epochs, c.seed + s, tr, teacher_logits, va, te,
                          ex::format("H %ld %s seed %ld", w, name(m), c.seed + s), &csv);
        acc[w][m].push_back(r.test);
      }
    }
  }

  // Few labels: the widest student on the first few·train images, hard labels vs soft targets.
  const long wide = *std::max_element(c.widths.begin(), c.widths.end());
  const auto n_few = static_cast<Index>(std::llround(c.few * static_cast<double>(c.train)));
  std::vector<Result> few_hard, few_soft;
  Setting soft = chosen[wide][Method::kd];
  soft.alpha = 1.0;
  if (n_few >= 2) {
    const ex::Dataset tr_few = ex::slice(tr, 0, n_few);
    ex::Csv few_csv(c.out + "/few_labels.csv",
                    {"width", "method", "seed", "epoch", "loss", "val_acc", "test_acc"});
    for (long s = 0; s < c.seeds; ++s) {
      few_hard.push_back(train_student(c, Setting{}, wide, c.few_epochs, c.seed + s, tr_few,
                                       teacher_logits, va, te,
                                       ex::format("few hard seed %ld", c.seed + s), &few_csv));
      few_soft.push_back(train_student(c, soft, wide, c.few_epochs, c.seed + s, tr_few,
                                       teacher_logits, va, te,
                                       ex::format("few soft seed %ld", c.seed + s), &few_csv));
    }
  }

  std::printf(
      "\n== results == %s, teacher %s %.2f%% test, students 784-H-10, %ld epochs, %ld "
      "seed(s); test accuracy at the last epoch, mean ± std\n",
      tt.synthetic ? "SYNTHETIC task" : "Fashion-MNIST", teacher_name.c_str(), 100.0 * teacher_test,
      c.epochs, c.seeds);
  std::printf("  %-6s %-10s %-34s %16s %10s %11s  %s\n", "H", "student", "setting", "test acc %",
              "vs ce", "gain>2std", "per seed");
  for (const long w : c.widths) {
    const std::vector<double>& base = acc[w][Method::ce];
    for (const Method m : kMethods) {
      const std::vector<double>& v = acc[w][m];
      std::printf("  %-6ld %-10s %-34s %16s %+7.2f pt %11s %s\n", w, name(m),
                  describe(chosen[w][m]).c_str(), mean_sd(v).c_str(),
                  100.0 * (ex::stat(v).mean - ex::stat(base).mean),
                  m == Method::ce ? "" : verdict(v, base), per_seed(v).c_str());
    }
  }
  if (!few_hard.empty()) {
    const auto col = [](const std::vector<Result>& rs, bool early) {
      std::vector<double> v;
      for (const Result& r : rs) v.push_back(early ? r.test_at_best_val : r.test);
      return v;
    };
    std::printf(
        "  few labels: H %ld on %td images (%.1f%%), %ld epochs; last epoch | at best "
        "validation\n",
        wide, n_few, 100.0 * c.few, c.few_epochs);
    std::printf("    hard (CE)                  %16s | %16s %s\n",
                mean_sd(col(few_hard, false)).c_str(), mean_sd(col(few_hard, true)).c_str(),
                per_seed(col(few_hard, false)).c_str());
    std::printf("    soft (KD alpha 1, T %g)     %16s | %16s %s   gain>2std: %s\n",
                soft.temperature, mean_sd(col(few_soft, false)).c_str(),
                mean_sd(col(few_soft, true)).c_str(), per_seed(col(few_soft, false)).c_str(),
                verdict(col(few_soft, false), col(few_hard, false)));
  }
  std::printf(
      "  curves: %s/students.csv, %s/tuning.csv%s (method 0..4 = ce, kd, dkd, sinkhorn, "
      "dual_head)\n",
      c.out.c_str(), c.out.c_str(),
      few_hard.empty() ? "" : ex::format(", %s/few_labels.csv", c.out.c_str()).c_str());
  return 0;
}
