#define EIGEN_RUNTIME_NO_MALLOC
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "regula/losses/cross_entropy.hpp"

#include "support/catch.hpp"
#include "support/golden.hpp"
#include "support/gradcheck.hpp"
#include "support/no_malloc.hpp"

namespace {

using regula::CrossEntropyLoss;
using regula::CrossEntropyOptions;
using regula::Index;
using regula::Labels;
using regula::Normalizer;
using regula::Reduction;
template <class T>
using Mat = regula::Matrix<T>;
template <class T>
using Vec = regula::Vector<T>;

constexpr Index kB = 5;
constexpr Index kC = 7;

const regula::test::Golden& golden() {
  static const regula::test::Golden g("cross_entropy.txt");
  return g;
}

template <class T>
Mat<T> gmat(const std::string& name, Index rows = kC, Index cols = kB) {
  const auto& v = golden()[name];
  REQUIRE(static_cast<Index>(v.size()) == rows * cols);
  return Eigen::Map<const Eigen::MatrixXd>(v.data(), rows, cols).cast<T>();
}

Labels glabels(const std::string& name) {
  const auto& v = golden()[name];
  Labels y(static_cast<Index>(v.size()));
  for (Index i = 0; i < y.size(); ++i)
    y[i] = static_cast<std::int64_t>(v[static_cast<std::size_t>(i)]);
  return y;
}

template <class T>
double tol() {
  return std::is_same_v<T, float> ? 2e-5 : 1e-12;
}

template <class T, class M>
double max_abs_diff(const M& a, const Eigen::MatrixXd& b) {
  return (a.template cast<double>() - b).cwiseAbs().maxCoeff();
}

Reduction parse_reduction(const std::string& r) {
  if (r == "none") return Reduction::none;
  if (r == "sum") return Reduction::sum;
  return Reduction::mean;
}

template <class T>
Mat<T> random_logits(Index rows, Index cols, double scale, unsigned seed) {
  std::srand(seed);
  return (Eigen::MatrixXd::Random(rows, cols) * scale).cast<T>();
}

}  // namespace

TEMPLATE_TEST_CASE(
    "cross_entropy matches PyTorch for every reduction, smoothing, weight and ignore_index",
    "[losses][cross_entropy][golden]", float, double) {
  using T = TestType;
  const Mat<T> z = gmat<T>("logits");
  const Vec<T> w = Eigen::Map<const Eigen::VectorXd>(golden()["weight"].data(), kC).cast<T>();
  for (const std::string red : {"none", "sum", "mean"}) {
    for (const std::string eps : {"0.0", "0.1"}) {
      for (const std::string wname : {"nw", "w"}) {
        for (const std::string lname : {"lab", "ign"}) {
          const std::string key = "ce_" + red + "_" + eps + "_" + wname + "_" + lname;
          INFO(key);
          const Labels y = glabels(lname == "lab" ? "labels" : "labels_ign");
          CrossEntropyOptions opt;
          opt.reduction = parse_reduction(red);
          opt.label_smoothing = std::stod(eps);
          const CrossEntropyLoss<T> ce(opt, wname == "w" ? w : Vec<T>());
          const Eigen::MatrixXd want_grad = gmat<double>(key + "_grad");
          Mat<T> dz(kC, kB);
          if (red == "none") {
            Vec<T> losses(kB);
            ce.per_sample(z, y, losses, dz);
            const Eigen::VectorXd want =
                Eigen::Map<const Eigen::VectorXd>(golden()[key + "_loss"].data(), kB);
            CHECK(max_abs_diff<T>(losses, want) < tol<T>());
            Vec<T> losses_only(kB);
            ce.per_sample(z, y, losses_only);
            CHECK(max_abs_diff<T>(losses_only, want) < tol<T>());
          } else {
            const double want = golden()[key + "_loss"][0];
            const T loss = ce.forward_backward(z, y, dz);
            CHECK(std::abs(static_cast<double>(loss) - want) < tol<T>());
            CHECK(std::abs(static_cast<double>(ce.forward(z, y)) - want) < tol<T>());
            if (wname == "nw") {
              // The free functions agree with the class.
              Mat<T> dz2(kC, kB);
              CHECK(regula::cross_entropy(z, y, dz2, opt) == loss);
              CHECK(dz2 == dz);
            }
          }
          CHECK(max_abs_diff<T>(dz, want_grad) < tol<T>());
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("cross_entropy with soft targets matches PyTorch",
                   "[losses][cross_entropy][golden]", float, double) {
  using T = TestType;
  const Mat<T> z = gmat<T>("logits");
  const Mat<T> t = gmat<T>("soft");
  const Vec<T> w = Eigen::Map<const Eigen::VectorXd>(golden()["weight"].data(), kC).cast<T>();
  for (const std::string red : {"none", "sum", "mean"}) {
    for (const std::string eps : {"0.0", "0.1"}) {
      for (const std::string wname : {"nw", "w"}) {
        const std::string key = "soft_" + red + "_" + eps + "_" + wname;
        INFO(key);
        CrossEntropyOptions opt;
        opt.reduction = parse_reduction(red);
        opt.label_smoothing = std::stod(eps);
        const CrossEntropyLoss<T> ce(opt, wname == "w" ? w : Vec<T>());
        Mat<T> dz(kC, kB);
        if (red == "none") {
          Vec<T> losses(kB);
          ce.per_sample_soft(z, t, losses, dz);
          const Eigen::VectorXd want =
              Eigen::Map<const Eigen::VectorXd>(golden()[key + "_loss"].data(), kB);
          CHECK(max_abs_diff<T>(losses, want) < tol<T>());
        } else {
          const T loss = ce.forward_backward_soft(z, t, dz);
          CHECK(std::abs(static_cast<double>(loss) - golden()[key + "_loss"][0]) < tol<T>());
          CHECK(ce.forward_soft(z, t) == loss);
          if (wname == "nw") {
            Mat<T> dz2(kC, kB);
            CHECK(regula::cross_entropy_soft(z, t, dz2, opt) == loss);
            CHECK(dz2 == dz);
          }
        }
        CHECK(max_abs_diff<T>(dz, gmat<double>(key + "_grad")) < tol<T>());
      }
    }
  }
}

TEMPLATE_TEST_CASE("StableMax cross-entropy matches the official formulation (float64)",
                   "[losses][cross_entropy][stablemax][golden]", float, double) {
  using T = TestType;
  const Mat<T> z = gmat<T>("logits");
  const Labels y = glabels("labels");
  Vec<T> losses(kB);
  Mat<T> dz(kC, kB);
  regula::stablemax_cross_entropy_per_sample(z, y, losses, dz);
  const Eigen::VectorXd want =
      Eigen::Map<const Eigen::VectorXd>(golden()["stablemax_ce_none_loss"].data(), kB);
  CHECK(max_abs_diff<T>(losses, want) < tol<T>());
  CHECK(max_abs_diff<T>(dz, gmat<double>("stablemax_ce_none_grad")) < tol<T>());
  const T mean = regula::stablemax_cross_entropy(z, y, dz);
  CHECK(std::abs(static_cast<double>(mean) - golden()["stablemax_ce_mean_loss"][0]) < tol<T>());
  CHECK(max_abs_diff<T>(dz, gmat<double>("stablemax_ce_mean_grad")) < tol<T>());
}

TEMPLATE_TEST_CASE("StableMax cross-entropy reproduces the test vector of algorithms.md section 10",
                   "[losses][cross_entropy][stablemax]", float, double) {
  using T = TestType;
  Mat<T> z(3, 1);
  z << T(2), T(0), T(-1);
  Labels y(1);
  y << 0;
  Mat<T> dz(3, 1);
  const T loss = regula::stablemax_cross_entropy(z, y, dz);
  CHECK(std::abs(static_cast<double>(loss) - 0.405465108) < 1e-6);
  CHECK(std::abs(static_cast<double>(dz(0)) + 1.0 / 9) < 1e-6);
  CHECK(std::abs(static_cast<double>(dz(1)) - 2.0 / 9) < 1e-6);
  CHECK(std::abs(static_cast<double>(dz(2)) - 1.0 / 18) < 1e-6);
}

TEST_CASE("StableMax cross-entropy matches a float64 NumPy restatement on random inputs",
          "[losses][cross_entropy][stablemax][golden]") {
  const regula::test::Golden g("stablemax_random.txt");
  const auto& shape = g["shape"];
  const auto C = static_cast<Index>(shape[0]);
  const auto B = static_cast<Index>(shape[1]);
  const Eigen::MatrixXd z = Eigen::Map<const Eigen::MatrixXd>(g["logits"].data(), C, B);
  Labels y(B);
  for (Index i = 0; i < B; ++i)
    y[i] = static_cast<std::int64_t>(g["labels"][static_cast<std::size_t>(i)]);
  const Eigen::VectorXd want = Eigen::Map<const Eigen::VectorXd>(g["loss"].data(), B);
  Eigen::VectorXd losses(B);
  regula::stablemax_cross_entropy_per_sample(z, y, losses);
  CHECK((losses - want).cwiseAbs().maxCoeff() < 1e-12 * std::max(1.0, want.cwiseAbs().maxCoeff()));
  // Float logits (the authors' model is float32; they cast to float64 for the loss).
  const Eigen::MatrixXf zf = z.cast<float>();
  const Eigen::VectorXd want_f = Eigen::Map<const Eigen::VectorXd>(g["loss_from_float"].data(), B);
  Eigen::VectorXf lf(B);
  regula::stablemax_cross_entropy_per_sample(zf, y, lf);
  CHECK((lf.cast<double>() - want_f).cwiseAbs().maxCoeff() < 1e-5);
}

TEST_CASE("cross_entropy gradients match central differences (double)",
          "[losses][cross_entropy][gradcheck]") {
  const Index C = 11, B = 4;
  const Eigen::MatrixXd z0 = random_logits<double>(C, B, 3.0, 7);
  Labels y(B);
  y << 3, 10, 0, 5;
  Eigen::VectorXd w(C);
  for (Index i = 0; i < C; ++i) w[i] = 0.5 + 0.1 * static_cast<double>(i);
  Eigen::MatrixXd t = random_logits<double>(C, B, 1.0, 8).array().exp();
  t = (t.array().rowwise() / t.colwise().sum().array()).matrix();
  const Eigen::MatrixXd one = Eigen::MatrixXd::Ones(1, 1);
  auto check = [&](auto&& loss_fn, auto&& grad_fn) {
    const double err = regula::test::gradcheck(
        z0, 1, 1, [&](const Eigen::MatrixXd& x, Eigen::MatrixXd& out) { out(0, 0) = loss_fn(x); },
        [&](const Eigen::MatrixXd& wt, Eigen::MatrixXd& dx) {
          grad_fn(dx);
          dx *= wt(0, 0);
        },
        one);
    CHECK(err < regula::test::fd_tol);
  };
  for (const double eps : {0.0, 0.2}) {
    for (const bool weighted : {false, true}) {
      INFO("eps " << eps << " weighted " << weighted);
      CrossEntropyOptions opt;
      opt.label_smoothing = eps;
      const Eigen::VectorXd wv = weighted ? w : Eigen::VectorXd();
      const CrossEntropyLoss<double> ce(opt, wv);
      const CrossEntropyLoss<double, Normalizer::stablemax> sce(opt, wv);
      check([&](const Eigen::MatrixXd& x) { return ce.forward(x, y); },
            [&](Eigen::MatrixXd& dx) { (void)ce.forward_backward(z0, y, dx); });
      check([&](const Eigen::MatrixXd& x) { return sce.forward(x, y); },
            [&](Eigen::MatrixXd& dx) { (void)sce.forward_backward(z0, y, dx); });
      check([&](const Eigen::MatrixXd& x) { return ce.forward_soft(x, t); },
            [&](Eigen::MatrixXd& dx) { (void)ce.forward_backward_soft(z0, t, dx); });
      check([&](const Eigen::MatrixXd& x) { return sce.forward_soft(x, t); },
            [&](Eigen::MatrixXd& dx) { (void)sce.forward_backward_soft(z0, t, dx); });
    }
  }
}

TEMPLATE_TEST_CASE("per-sample cross-entropy: losses and each sample's own gradient",
                   "[losses][cross_entropy][per_sample]", float, double) {
  using T = TestType;
  const Index C = 37, B = 9;
  const Mat<T> z = random_logits<T>(C, B, 4.0, 3);
  Labels y(B);
  for (Index i = 0; i < B; ++i) y[i] = (i * 5) % C;
  y[4] = -100;
  for (const Normalizer norm : {Normalizer::softmax, Normalizer::stablemax}) {
    Vec<T> losses(B);
    Mat<T> dz(C, B), dmean(C, B), dsum(C, B);
    T mean = 0, sum = 0;
    if (norm == Normalizer::softmax) {
      regula::cross_entropy_per_sample(z, y, losses, dz);
      mean = regula::cross_entropy(z, y, dmean);
      sum = regula::cross_entropy(z, y, dsum, CrossEntropyOptions{}.with_reduction(Reduction::sum));
    } else {
      regula::stablemax_cross_entropy_per_sample(z, y, losses, dz);
      mean = regula::stablemax_cross_entropy(z, y, dmean);
      sum = regula::stablemax_cross_entropy(z, y, dsum,
                                            CrossEntropyOptions{}.with_reduction(Reduction::sum));
    }
    CHECK(losses[4] == T(0));
    CHECK(dz.col(4).isZero(0));
    CHECK(std::abs(static_cast<double>(losses.sum() - sum)) < 1e-5 * static_cast<double>(sum));
    CHECK(std::abs(static_cast<double>(losses.sum() / T(B - 1) - mean)) <
          1e-5 * static_cast<double>(mean));
    CHECK((dz - dsum).cwiseAbs().maxCoeff() == T(0));
    CHECK((dz / T(B - 1) - dmean).cwiseAbs().maxCoeff() < T(1e-6));
    // Each column is the gradient of that sample alone: compare with a one-sample call.
    for (Index j = 0; j < B; ++j) {
      if (j == 4) continue;
      Mat<T> d1(C, 1);
      const Labels y1 = y.segment(j, 1);
      const T l1 = norm == Normalizer::softmax ? regula::cross_entropy(z.col(j), y1, d1)
                                               : regula::stablemax_cross_entropy(z.col(j), y1, d1);
      CHECK(l1 == losses[j]);
      CHECK(d1 == dz.col(j));
    }
    // batchmean divides by every sample, ignored ones included.
    const T bm =
        regula::cross_entropy(z, y, CrossEntropyOptions{}.with_reduction(Reduction::batchmean));
    CHECK(std::abs(static_cast<double>(bm) -
                   static_cast<double>(regula::cross_entropy(
                       z, y, CrossEntropyOptions{}.with_reduction(Reduction::sum))) /
                       B) < 1e-5);
  }
}

TEMPLATE_TEST_CASE("cross_entropy stays finite for extreme finite logits",
                   "[losses][cross_entropy][numerics]", float, double) {
  using T = TestType;
  for (const double big : {1e4, 1e30}) {
    INFO("big " << big);
    const Index C = 19, B = 3;
    Mat<T> z = Mat<T>::Zero(C, B);
    for (Index i = 0; i < C; ++i) {
      z(i, 0) = static_cast<T>(i % 2 == 0 ? big : -big);
      z(i, 1) = static_cast<T>(-big);
      z(i, 2) = static_cast<T>(big * (static_cast<double>(i) / C));
    }
    Labels y(B);
    y << 1, 0, 3;  // label 1 sits at −big: a huge but finite loss
    for (const double eps : {0.0, 0.1}) {
      const auto opt = CrossEntropyOptions{}.with_label_smoothing(eps);
      Mat<T> dz(C, B);
      Vec<T> losses(B);
      regula::cross_entropy_per_sample(z, y, losses, dz, opt);
      CHECK(losses.allFinite());
      CHECK(dz.allFinite());
      // Ten logits at +big, nine at −big: ℓ = log 10 + (2 − ε(1 + 1/C))·big.
      const double want0 = std::log(10.0) + (2 - eps * (1 + 1.0 / C)) * big;
      CHECK(std::abs(static_cast<double>(losses[0]) - want0) <= 1e-6 * want0);
      CHECK(std::abs(static_cast<double>(losses[1]) - std::log(static_cast<double>(C))) < 1e-5);
      // Gradient columns of softmax cross-entropy sum to zero.
      CHECK(std::abs(static_cast<double>(dz.col(0).sum())) < 1e-5);
      CHECK(std::isfinite(static_cast<double>(regula::cross_entropy(z, y, dz, opt))));
      // StableMax: finite too (s(±1e30) is 1e30 or 1e−30 in float).
      regula::stablemax_cross_entropy_per_sample(z, y, losses, dz, opt);
      CHECK(losses.allFinite());
      CHECK(dz.allFinite());
    }
  }
}

TEMPLATE_TEST_CASE("NaN logits give NaN for their sample, never a crash",
                   "[losses][cross_entropy][numerics]", float, double) {
  using T = TestType;
  Mat<T> z = random_logits<T>(20, 3, 2.0, 5);
  z(7, 1) = std::numeric_limits<T>::quiet_NaN();
  Labels y(3);
  y << 0, 1, 2;
  Vec<T> losses(3);
  Mat<T> dz(20, 3);
  regula::cross_entropy_per_sample(z, y, losses, dz);
  CHECK(std::isfinite(losses[0]));
  CHECK(std::isnan(losses[1]));
  CHECK(dz.col(1).array().isNaN().all());
  CHECK(dz.col(2).allFinite());
  CHECK(std::isnan(regula::cross_entropy(z, y)));
  regula::stablemax_cross_entropy_per_sample(z, y, losses, dz);
  CHECK(std::isnan(losses[1]));
  CHECK(std::isfinite(losses[2]));
  CHECK(std::isnan(regula::stablemax_cross_entropy(z, y)));
}

TEST_CASE("mean over a batch whose samples are all ignored is NaN with a zero gradient, as PyTorch",
          "[losses][cross_entropy]") {
  const Eigen::MatrixXd z = Eigen::MatrixXd::Random(4, 2);
  Labels y(2);
  y << -100, -100;
  Eigen::MatrixXd dz(4, 2);
  CHECK(std::isnan(regula::cross_entropy(z, y, dz)));
  CHECK(dz.isZero(0));
}

TEST_CASE("cross_entropy rejects bad arguments, naming the parameter",
          "[losses][cross_entropy][errors]") {
  const Eigen::MatrixXf z = Eigen::MatrixXf::Random(4, 3);
  Labels y(3);
  y << 0, 1, 2;
  Labels bad = y;
  bad[1] = 4;
  CHECK_THROWS_WITH(
      regula::cross_entropy(z, bad),
      "regula::cross_entropy: labels[1] must be in [0, 4) or ignore_index (-100), got 4");
  bad[1] = -1;
  CHECK_THROWS_WITH(
      regula::cross_entropy(z, bad),
      "regula::cross_entropy: labels[1] must be in [0, 4) or ignore_index (-100), got -1");
  CHECK_NOTHROW(regula::cross_entropy(z, bad, CrossEntropyOptions{}.with_ignore_index(-1)));
  const Labels short_y = y.head(2);
  CHECK_THROWS_WITH(regula::cross_entropy(z, short_y),
                    "regula::cross_entropy: labels must have one value per sample (3), got 2");
  Eigen::MatrixXf dz(4, 2);
  CHECK_THROWS_WITH(
      regula::cross_entropy(z, y, dz),
      "regula::cross_entropy: dlogits must have the shape of logits (4 x 3), got 4 x 2");
  Eigen::VectorXf losses(2);
  CHECK_THROWS_WITH(
      regula::cross_entropy_per_sample(z, y, losses),
      "regula::cross_entropy_per_sample: losses must have one value per sample (3), got 2");
  const Eigen::MatrixXf empty(4, 0);
  const Labels no_y(0);
  CHECK_THROWS_WITH(
      regula::cross_entropy(empty, no_y),
      "regula::cross_entropy: logits must hold at least one sample (column), got 4 x 0");
  const Eigen::MatrixXf no_classes(0, 3);
  CHECK_THROWS_WITH(regula::cross_entropy(no_classes, y),
                    "regula::cross_entropy: logits must have at least one class (row), got 0 x 3");
  CHECK_THROWS_WITH(regula::cross_entropy(z, y, CrossEntropyOptions{}.with_label_smoothing(1.5)),
                    "regula::cross_entropy: label_smoothing must be in [0, 1], got 1.5");
  CHECK_THROWS_AS(regula::cross_entropy(z, y, CrossEntropyOptions{}.with_label_smoothing(-0.1)),
                  regula::invalid_argument);
  CHECK_THROWS_AS(CrossEntropyLoss<float>(CrossEntropyOptions{}.with_label_smoothing(std::nan(""))),
                  regula::invalid_argument);
  CHECK_THROWS_WITH(
      regula::cross_entropy(z, y, CrossEntropyOptions{}.with_reduction(Reduction::none)),
      Catch::Contains("reduction must be mean, sum or batchmean") && Catch::Contains("got none"));
  CHECK_THROWS_WITH(regula::stablemax_cross_entropy(z, bad),
                    Catch::StartsWith("regula::stablemax_cross_entropy: labels[1]"));
  const CrossEntropyLoss<float> weighted(CrossEntropyOptions{}, Eigen::VectorXf::Ones(5));
  CHECK_THROWS_WITH(weighted.forward(z, y),
                    "regula::CrossEntropyLoss: weight must have one value per class (4), got 5");
  Eigen::VectorXf negative = Eigen::VectorXf::Ones(4);
  negative[2] = -1.0f;
  CHECK_THROWS_WITH(CrossEntropyLoss<float>(CrossEntropyOptions{}, negative),
                    "regula::CrossEntropyLoss: weight[2] must be finite and >= 0, got -1");
  const Eigen::MatrixXf t(4, 2);
  CHECK_THROWS_WITH(
      regula::cross_entropy_soft(z, t),
      "regula::cross_entropy_soft: targets must have the shape of logits (4 x 3), got 4 x 2");
  Eigen::MatrixXf in_place = z;
  CHECK_THROWS_WITH(regula::cross_entropy(in_place, y, in_place),
                    "regula::cross_entropy: dlogits must not overlap logits");
}

TEMPLATE_TEST_CASE("cross_entropy allocates nothing", "[losses][cross_entropy][nomalloc]", float,
                   double) {
  using T = TestType;
  const Index C = 100, B = 64;
  const Mat<T> z = random_logits<T>(C, B, 3.0, 11);
  const Mat<T> t = (random_logits<T>(C, B, 1.0, 12).array().abs()).matrix();
  Labels y(B);
  for (Index i = 0; i < B; ++i) y[i] = (i * 7) % C;
  const CrossEntropyLoss<T> ce(CrossEntropyOptions{}.with_label_smoothing(0.1), Vec<T>::Ones(C));
  const CrossEntropyLoss<T, Normalizer::stablemax> sce;
  Mat<T> dz(C, B);
  Vec<T> losses(B);
  T acc = 0;
  {
    regula::test::NoMalloc guard;
    acc += ce.forward_backward(z, y, dz);
    ce.per_sample(z, y, losses, dz);
    acc += ce.forward_backward_soft(z, t, dz);
    acc += sce.forward_backward(z, y, dz);
    sce.per_sample(z, y, losses);
    acc += regula::cross_entropy(z, y, dz);
    regula::cross_entropy_per_sample(z, y, losses, dz);
    acc += regula::stablemax_cross_entropy(z.leftCols(10), y.head(10), dz.leftCols(10));
  }
  CHECK(std::isfinite(acc));
}

TEMPLATE_TEST_CASE("fast and general kernels agree with the double reference on ragged sizes",
                   "[losses][cross_entropy][kernels]", float, double) {
  using T = TestType;
  for (const Index C : {1, 3, 7, 8, 9, 15, 16, 17, 33, 100, 1000}) {
    const Mat<T> z = random_logits<T>(C, 1, 5.0, static_cast<unsigned>(C));
    const Mat<T> w = (random_logits<T>(C, 1, 1.0, 99).array().abs() + T(0.1)).matrix();
    Mat<T> t = (random_logits<T>(C, 1, 1.0, 98).array().abs()).matrix();
    const auto n = static_cast<std::size_t>(C);
    const std::int64_t y = C / 2;
    for (const T beta : {T(0), T(0.1) / T(C)}) {
      regula::kernels::XentTarget<T> hard;
      hard.label = y;
      hard.beta = beta;
      hard.gamma = T(1) - beta * T(C);
      regula::kernels::XentTarget<T> general = hard;
      general.weight = w.data();
      general.soft = t.data();
      general.alpha = T(0.5);
      for (const auto& target : {hard, general}) {
        Mat<T> d_fast(C, 1), d_gen(C, 1), d_ref(C, 1);
        const double l_fast = regula::kernels::xent_column<Normalizer::softmax>(
            z.data(), n, target, T(0.5), d_fast.data());
        const double l_gen =
            regula::kernels::softmax_xent(z.data(), n, target, T(0.5), d_gen.data());
        const double l_ref = regula::kernels::xent_column_reference<Normalizer::softmax>(
            z.data(), n, target, T(0.5), d_ref.data());
        const double lt = std::is_same_v<T, float> ? 1e-5 : 1e-12;
        CHECK(std::abs(l_fast - l_ref) < lt * std::max(1.0, std::abs(l_ref)));
        CHECK(std::abs(l_gen - l_ref) < lt * std::max(1.0, std::abs(l_ref)));
        CHECK((d_fast - d_ref).cwiseAbs().maxCoeff() < T(lt * 10));
        CHECK((d_gen - d_ref).cwiseAbs().maxCoeff() < T(lt * 10));
        const double s_fast = regula::kernels::xent_column<Normalizer::stablemax>(
            z.data(), n, target, T(0.5), d_fast.data());
        const double s_gen =
            regula::kernels::stablemax_xent(z.data(), n, target, T(0.5), d_gen.data());
        const double s_ref = regula::kernels::xent_column_reference<Normalizer::stablemax>(
            z.data(), n, target, T(0.5), d_ref.data());
        CHECK(std::abs(s_fast - s_ref) < lt * std::max(1.0, std::abs(s_ref)));
        CHECK(std::abs(s_gen - s_ref) < lt * std::max(1.0, std::abs(s_ref)));
        CHECK((d_fast - d_ref).cwiseAbs().maxCoeff() < T(lt * 10));
        CHECK((d_gen - d_ref).cwiseAbs().maxCoeff() < T(lt * 10));
      }
    }
  }
}

TEMPLATE_TEST_CASE("StableMax cross-entropy of logits near the float range is exact, not -inf",
                   "[losses][cross_entropy]", float, double) {
  // The fast reciprocal of the SIMD kernels flushed 1/(1 + 1e38) to 0, so S = 0 and the loss
  // was -inf (C = 1) or -inf for two equal classes, where the true values are 0 and log 2.
  using T = TestType;
  CrossEntropyLoss<T, Normalizer::stablemax> ce;
  for (const double v : {-1e38, -3.0e38, 1e38}) {
    Mat<T> z1(1, 1);
    z1 << static_cast<T>(v);
    Labels y1(1);
    y1 << 0;
    Vec<T> l(1);
    Mat<T> dz(1, 1);
    ce.per_sample(z1, y1, l, dz);
    CHECK(l[0] == T(0));
    CHECK(dz(0, 0) == T(0));
    Mat<T> z2 = Mat<T>::Constant(2, 3, static_cast<T>(v));
    Labels y2(3);
    y2 << 0, 1, 0;
    Vec<T> l2(3);
    Mat<T> dz2(2, 3);
    ce.per_sample(z2, y2, l2, dz2);
    for (Index j = 0; j < 3; ++j) {
      INFO("z = " << v << ", column " << j);
      CHECK(std::isfinite(l2[j]));
      CHECK(static_cast<double>(l2[j]) == Approx(std::log(2.0)).epsilon(1e-6));
      // ∓r·s/(2S): subnormal in float for these logits, so only the signs are exact.
      const Index yj = y2[j];
      CHECK(std::isfinite(dz2(yj, j)));
      CHECK(dz2(yj, j) <= T(0));
      CHECK(dz2(1 - yj, j) >= T(0));
    }
  }
}

TEST_CASE(
    "cross-entropy past double's range: the column again in long double, finite where the truth is",
    "[losses][cross_entropy][numerics][regression]") {
  // StableMax sums s = z + 1 of two logits at DBL_MAX past the largest double (S = inf gave an
  // infinite loss, or NaN with soft targets); a softmax column spanning more than DBL_MAX made
  // z − max z overflow in the complement sums. The truth is finite in both.
  const double big = std::numeric_limits<double>::max();
  CrossEntropyLoss<double, Normalizer::stablemax> sm;
  Mat<double> z(2, 1);
  z << big, big;
  Labels y(1);
  y << 0;
  Vec<double> l(1);
  Mat<double> dz(2, 1);
  sm.per_sample(z, y, l, dz);
  CHECK(l[0] == Approx(std::log(2.0)).epsilon(1e-12));
  // r·(π − e_y) with r = 1/(1 + DBL_MAX) = 5.6e-309 (subnormal), π = ½: ∓2.8e-309.
  CHECK(dz(0, 0) == Approx(-0.5 / (1.0 + big)).epsilon(1e-6));
  CHECK(dz(1, 0) == Approx(0.5 / (1.0 + big)).epsilon(1e-6));
  Mat<double> q(2, 1);
  q << -1.0625, 28.5;  // not a distribution: PyTorch accepts such targets too
  sm.per_sample_soft(z, q, l, dz);
  CHECK(l[0] == Approx(27.4375 * std::log(2.0)).epsilon(1e-12));  // −Σ q log ½

  CrossEntropyLoss<double> ce;
  Mat<double> w(3, 1);
  w << big, -big, 0.0;
  dz.resize(3, 1);
  ce.per_sample(w, y, l, dz);
  CHECK(l[0] == Approx(std::log1p(std::exp(-big))).margin(1e-300));  // e^{−DBL_MAX} = 0: loss 0
  CHECK(std::isfinite(dz(0, 0)));
  Mat<double> qs(3, 1);
  qs << 1.0, 0.0, 0.0;
  ce.per_sample_soft(w, qs, l, dz);
  CHECK(l[0] == 0.0);
  CHECK(dz.allFinite());
}

TEST_CASE(
    "reduced soft-target cross-entropy near double's range: per-sample losses summed without "
    "overflow",
    "[losses][cross_entropy][numerics][regression]") {
  // Per-sample losses of ±¾·DBL_MAX (targets of both signs against columns holding DBL_MAX):
  // the double partial sum of the first two overflowed, so the reduced loss was inf (or NaN
  // against a later −inf) where the exact sum, ¾·DBL_MAX, is finite (fuzz finding
  // ce-reduced-past-range).
  const double big = std::numeric_limits<double>::max();
  Mat<double> z(2, 3);
  z << big, big, 0.0,  //
      0.0, 0.0, big;
  Mat<double> q(2, 3);
  q << 0.0, 0.0, -0.75,  //
      0.75, 0.75, 0.0;
  CrossEntropyLoss<double> sum(CrossEntropyOptions{}.with_reduction(Reduction::sum));
  Vec<double> l(3);
  sum.per_sample_soft(z, q, l);
  long double exact = 0;
  for (Index j = 0; j < 3; ++j) {
    REQUIRE(std::isfinite(l[j]));
    exact += l[j];
  }
  REQUIRE(std::isfinite(static_cast<double>(exact)));
  CHECK(sum.forward_soft(z, q) == Approx(static_cast<double>(exact)).epsilon(1e-15));
  CrossEntropyLoss<double> mean;
  CHECK(mean.forward_soft(z, q) == Approx(static_cast<double>(exact / 3)).epsilon(1e-15));
  Mat<double> dz(2, 3);
  CHECK(mean.forward_backward_soft(z, q, dz) ==
        Approx(static_cast<double>(exact / 3)).epsilon(1e-15));
  CHECK(dz.allFinite());
}

TEST_CASE("weighted StableMax at the lowest double: a finite gradient, not g·A/S = inf times 0",
          "[losses][cross_entropy][numerics][regression]") {
  // S = 2/(1 + DBL_MAX) is subnormal and g·A/S overflowed where r·s = 0: NaN for an element
  // whose truth is r·(A·π − q) ≈ ±1e-308 (fuzz finding stablemax-subnormal-scale).
  const double big = std::numeric_limits<double>::max();
  Vec<double> w(2);
  w << 3.0, 3.0;
  CrossEntropyLoss<double, Normalizer::stablemax> sm(
      CrossEntropyOptions{}.with_reduction(Reduction::sum), w);
  Mat<double> z(2, 1);
  z << -big, -big;
  Labels y(1);
  y << 0;
  Vec<double> l(1);
  Mat<double> dz(2, 1);
  sm.per_sample(z, y, l, dz);
  CHECK(l[0] == Approx(3.0 * std::log(2.0)).epsilon(1e-12));
  // r·(A·π − q) with r = 1/(1 + DBL_MAX), A = 3, π = ½: −1.5·r and +1.5·r.
  const double r = 1.0 / (1.0 + big);
  CHECK(dz(0, 0) == Approx(-1.5 * r).epsilon(1e-12));
  CHECK(dz(1, 0) == Approx(1.5 * r).epsilon(1e-12));
  Mat<double> q(2, 1);
  q << 2.0, 1.0;  // soft targets, weighted: A = 9
  sm.per_sample_soft(z, q, l, dz);
  CHECK(l[0] == Approx(9.0 * std::log(2.0)).epsilon(1e-12));
  CHECK(dz(0, 0) == Approx(r * (4.5 - 6.0)).epsilon(1e-12));
  CHECK(dz(1, 0) == Approx(r * (4.5 - 3.0)).epsilon(1e-12));
}

TEST_CASE("StableMax at the lowest double without weights: log 2, not the clamp of a subnormal log",
          "[losses][cross_entropy][numerics][regression]") {
  // S = 2/(1 + DBL_MAX) is subnormal; xsimd's double log read it 37 too low, so the narrow
  // head's loss log S + log1p(DBL_MAX) came out −36.3 and was clamped to 0.
  const double big = std::numeric_limits<double>::max();
  CrossEntropyLoss<double, Normalizer::stablemax> sm(
      CrossEntropyOptions{}.with_reduction(Reduction::sum));
  Mat<double> z(2, 1);
  z << -big, -big;
  Labels y(1);
  y << 0;
  Vec<double> l(1);
  Mat<double> dz(2, 1);
  sm.per_sample(z, y, l, dz);
  CHECK(l[0] == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(sm.forward(z, y) == Approx(std::log(2.0)).epsilon(1e-12));
  CHECK(dz.allFinite());
}

TEST_CASE("labels bind as int32 or int64, row or column, strided, or std::vector, with one result",
          "[losses][cross_entropy][labels]") {
  Mat<double> z = Mat<double>::Random(5, 4);
  Labels y64(4);
  y64 << 4, 0, 2, 1;
  Eigen::VectorXi y32 = y64.cast<int>();
  Eigen::RowVectorXi r32 = y32.transpose();
  Eigen::MatrixXi m = Eigen::MatrixXi::Zero(3, 4);
  m.row(2) = r32;  // a strided row: inner stride 3
  const std::vector<int> v32(y32.data(), y32.data() + 4);
  const std::vector<std::int64_t> v64(y64.data(), y64.data() + 4);
  Mat<double> g64(5, 4), g(5, 4);
  const double want = regula::cross_entropy(z, y64, g64);
  for (const regula::LabelView& y :
       {regula::LabelView(y32), regula::LabelView(r32), regula::LabelView(m.row(2)),
        regula::LabelView(v32), regula::LabelView(v64)}) {
    CHECK(regula::cross_entropy(z, y, g) == want);
    CHECK(g == g64);
  }
  // A label out of range is reported with its index, whatever the width.
  Eigen::VectorXi bad = y32;
  bad[2] = 5;
  CHECK_THROWS_WITH(regula::cross_entropy(z, bad), Catch::Contains("labels[2]"));
}

TEMPLATE_TEST_CASE("per-sample losses may not overlap any input or the gradient",
                   "[losses][cross_entropy]", float, double) {
  using T = TestType;
  CrossEntropyLoss<T> ce;
  Mat<T> buf = Mat<T>::Random(kC, kB + 2);
  Labels y(kB);
  y << 0, 1, 2, 3, 4;
  const auto z = buf.leftCols(kB);
  // losses over the first column of the logits (partly) and over the gradient.
  Eigen::Map<Vec<T>> inside(buf.data() + 2, kB);
  CHECK_THROWS_WITH(ce.per_sample(z, y, inside), Catch::Contains("losses must not overlap logits"));
  Mat<T> dz(kC, kB);
  Eigen::Map<Vec<T>> in_grad(dz.data() + 1, kB);
  CHECK_THROWS_WITH(ce.per_sample(buf.leftCols(kB), y, in_grad, dz),
                    Catch::Contains("dlogits must not overlap losses"));
  Mat<T> t = Mat<T>::Constant(kC, kB, T(1) / T(kC));
  Eigen::Map<Vec<T>> in_targets(t.data() + 3, kB);
  CHECK_THROWS_WITH(ce.per_sample_soft(buf.leftCols(kB), t, in_targets),
                    Catch::Contains("losses must not overlap targets"));
  // Disjoint storage still works.
  Vec<T> ok(kB);
  ce.per_sample(buf.leftCols(kB), y, ok);
  CHECK(ok.allFinite());
}
