// The ordered-representation claim of nested dropout (Rippel, Gelbart, Adams, ICML 2014): with
// nested dropout on a K-unit feature layer, the first k units carry the most information, so a
// classifier that keeps only the first k features degrades gracefully as k shrinks; with plain
// dropout or no regularizer the units are interchangeable and any prefix is a random subset.
//
// Clean Fashion-MNIST, MLP 784-H-K-10; three nets trained the same way except for what acts on
// the K features: nothing, dropout, nested dropout (geometric prior, one index per sample).
// Writes the test accuracy at every k = 1..K to accuracy_by_k.csv (plot with examples/plot_csv.sh).
//
//   nested_ordering [--epochs 10] [--features 64] [--width 256] [--rho 0.9] [--seed 1] [--smoke]
#include <algorithm>
#include <cstdio>
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
    "usage: nested_ordering [options]\n"
    "  --epochs N     training epochs (default 10)\n"
    "  --features K   units of the feature layer the regularizers act on (default 64)\n"
    "  --width H      width of the hidden layer before it (default 256)\n"
    "  --rho R        geometric prior of nested dropout, P(b) = R^(b-1)(1-R) (default 0.9)\n"
    "  --dropout P    drop probability of the dropout net (default 0.5)\n"
    "  --train N      training samples (default all 60000)\n"
    "  --seed S       seed (default 1)\n"
    "  --lr LR        Adam learning rate (default 1e-3)\n"
    "  --threads N    threads (default 1)\n"
    "  --data DIR     Fashion-MNIST directory\n"
    "  --out DIR      where the CSV goes (default nested_ordering_out)\n"
    "  --smoke        a few hundred samples, 1 epoch\n";

enum class Reg { none, dropout, nested };

struct Config {
  long epochs = 10, seed = 1, batch = 128;
  Index features = 64, width = 256, train = 60000, test = 10000;
  double rho = 0.9, dropout = 0.5, lr = 1e-3;
  std::string data, out;
};

std::vector<double> train(const Config& c, const ex::Dataset& tr, const ex::Dataset& te, Reg reg,
                          const std::string& name, std::uint64_t seed) {
  ex::Mlp::Options o;
  o.hidden = {c.width, c.features};
  o.seed = seed;
  ex::Mlp net(o);
  ex::OptimOptions oo;
  oo.lr = c.lr;
  ex::Optimizer opt(net, oo);
  const regula::Dropout<float> drop(regula::DropoutOptions{c.dropout});
  regula::DropoutContext drop_ctx;
  const regula::NestedDropout<float> nested(
      {c.features, regula::NestedPrior::geometric(c.rho), regula::NestedIndexMode::per_sample});
  regula::NestedDropoutContext nested_ctx;
  regula::Stream masks(seed, 7);
  Mat x, logits, dlogits, dh;
  Vec losses;
  ex::Labels y;
  ex::Progress progress(name, c.epochs);
  const auto b = static_cast<std::size_t>(c.batch);
  const std::size_t steps = static_cast<std::size_t>(tr.size()) / b;
  for (long epoch = 0; epoch < c.epochs; ++epoch) {
    const std::vector<Index> order =
        ex::permutation(tr.size(), seed, 100 + static_cast<std::uint64_t>(epoch));
    double loss_sum = 0.0, hits = 0.0;
    for (std::size_t s = 0; s < steps; ++s) {
      ex::gather(tr.x, tr.y, order, s * b, b, x, y);
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
      for (Index j = 0; j < logits.cols(); ++j) {
        Index best = 0;
        logits.col(j).maxCoeff(&best);
        hits += best == y(j) ? 1.0 : 0.0;
      }
      progress.tick(epoch + 1, s, steps, loss_sum / static_cast<double>((s + 1) * b));
    }
    std::vector<ex::Mlp*> nets{&net};
    const double test = ex::accuracy_by_prefix(nets, te, false).front();
    const double seen = static_cast<double>(steps * b);
    progress.epoch(epoch + 1, loss_sum / seen, hits / seen, test);
  }
  std::vector<ex::Mlp*> nets{&net};
  return ex::accuracy_by_prefix(nets, te, true);
}

}  // namespace

int main(int argc, char** argv) {
  ex::Args args(argc, argv, kUsage);
  Config c;
  if (args.flag("smoke")) {
    c.epochs = 1;
    c.train = 512;
    c.test = 256;
    c.width = 64;
    c.features = 16;
  }
  c.epochs = args.integer("epochs", c.epochs);
  c.features = args.integer("features", c.features);
  c.width = args.integer("width", c.width);
  c.rho = args.num("rho", c.rho);
  c.dropout = args.num("dropout", c.dropout);
  c.train = args.integer("train", c.train);
  c.seed = args.integer("seed", c.seed);
  c.lr = args.num("lr", c.lr);
  ex::set_threads(static_cast<int>(args.integer("threads", 1)));
  c.data = args.str("data", "");
  c.out = args.str("out", "nested_ordering_out");
  args.finish();

  const ex::TrainTest tt = ex::load_fashion_mnist(c.data, static_cast<std::size_t>(c.train),
                                                  static_cast<std::size_t>(c.test));
  std::printf(
      "regula nested-dropout ordering on %s: %td train, %td test, MLP 784-%td-%td-10, %ld epochs, "
      "seed %ld\n  dropout p %.2f; nested dropout: geometric rho %.2f per sample (mean kept %.1f "
      "of %td)\n",
      tt.synthetic ? "a SYNTHETIC task (Fashion-MNIST not found)" : "Fashion-MNIST",
      tt.train.size(), tt.test.size(), c.width, c.features, c.epochs, c.seed, c.dropout, c.rho,
      regula::NestedDropout<float>({c.features, regula::NestedPrior::geometric(c.rho)}).mean_kept(),
      c.features);
  const auto seed = static_cast<std::uint64_t>(c.seed);
  ex::Progress total("total", 0);
  const std::vector<double> none =
      train(c, tt.train, tt.test, Reg::none, "no regularizer", seed * 10 + 1);
  const std::vector<double> drop =
      train(c, tt.train, tt.test, Reg::dropout, "dropout", seed * 10 + 2);
  const std::vector<double> nest =
      train(c, tt.train, tt.test, Reg::nested, "nested dropout", seed * 10 + 3);

  ex::make_dirs(c.out);
  {
    ex::Csv csv(c.out + "/accuracy_by_k.csv", {"k", "none", "dropout", "nested dropout"});
    for (std::size_t k = 0; k < none.size(); ++k) {
      csv.row({static_cast<double>(k + 1), none[k], drop[k], nest[k]});
    }
  }
  std::printf(
      "\n== results == %s, test accuracy keeping the first k of %td features, seed %ld, %.0f s\n",
      tt.synthetic ? "SYNTHETIC task" : "Fashion-MNIST", c.features, c.seed, total.elapsed());
  std::printf("  %6s %10s %10s %15s\n", "k", "none", "dropout", "nested dropout");
  for (Index k = 1; k <= c.features; k *= 2) {
    const auto i = static_cast<std::size_t>(k - 1);
    std::printf("  %6td %9.2f%% %9.2f%% %14.2f%%\n", k, 100.0 * none[i], 100.0 * drop[i],
                100.0 * nest[i]);
    if (k < c.features && k * 2 > c.features) k = c.features / 2;  // always end with k = K
  }
  std::printf("  curve: %s/accuracy_by_k.csv  (plot: examples/plot_csv.sh %s)\n", c.out.c_str(),
              c.out.c_str());
  return 0;
}
