// Sweep rows of the losses (losses/): cross-entropy, coverage, the distillation losses, Sinkhorn
// distillation and the dual-head combination.
#include <climits>
#include <fstream>

#include "sweep/sweep.hpp"
#include <regula/losses/binary_kl.hpp>
#include <regula/losses/coverage.hpp>
#include <regula/losses/cross_entropy.hpp>
#include <regula/losses/dkd.hpp>
#include <regula/losses/dual_head.hpp>
#include <regula/losses/generalized_cross_entropy.hpp>
#include <regula/losses/js.hpp>
#include <regula/losses/kd_kl.hpp>
#include <regula/losses/logit_mse.hpp>
#include <regula/losses/reverse_kl.hpp>
#include <regula/losses/sinkhorn_kd.hpp>
#include <regula/losses/symmetric_cross_entropy.hpp>
#include <regula/losses/total_variation.hpp>
#include <sys/resource.h>

namespace regula::sweep {
namespace {

using T = float;
using M = Matrix<T>;
using V = Vector<T>;
constexpr Index C = 5, B = 6;

// ---------------------------------------------------------------------------------------------
// Cross-entropy: twenty entry points of one driver, described as calls on (logits, labels or
// targets, losses, dlogits).

struct XentCall {
  std::string entry;
  bool soft = false, per_sample = false, grad = false;
  std::function<double(const MatrixCRef<T>&, const LabelsCRef&, const MatrixCRef<T>&, VectorRef<T>,
                       MatrixRef<T>, const CrossEntropyOptions&)>
      call;
};

template <Normalizer N>
std::vector<XentCall> free_calls(const std::string& prefix, bool stablemax_alias) {
  std::vector<XentCall> out;
  const std::string p = prefix;
  using O = CrossEntropyOptions;
  if (!stablemax_alias) {
    out.push_back({p + "cross_entropy/3", false, false, false,
                   [](auto& z, auto& y, auto&, auto, auto, const O& o) {
                     return cross_entropy<N>(z, y, o);
                   }});
    out.push_back({p + "cross_entropy/4", false, false, true,
                   [](auto& z, auto& y, auto&, auto, auto dz, const O& o) {
                     return cross_entropy<N>(z, y, dz, o);
                   }});
    out.push_back({p + "cross_entropy_per_sample/4", false, true, false,
                   [](auto& z, auto& y, auto&, auto l, auto, const O& o) {
                     cross_entropy_per_sample<N>(z, y, l, o);
                     return 0.0;
                   }});
    out.push_back({p + "cross_entropy_per_sample/5", false, true, true,
                   [](auto& z, auto& y, auto&, auto l, auto dz, const O& o) {
                     cross_entropy_per_sample<N>(z, y, l, dz, o);
                     return 0.0;
                   }});
    out.push_back({p + "cross_entropy_soft/3", true, false, false,
                   [](auto& z, auto&, auto& t, auto, auto, const O& o) {
                     return cross_entropy_soft<N>(z, t, o);
                   }});
    out.push_back({p + "cross_entropy_soft/4", true, false, true,
                   [](auto& z, auto&, auto& t, auto, auto dz, const O& o) {
                     return cross_entropy_soft<N>(z, t, dz, o);
                   }});
    out.push_back({p + "cross_entropy_soft_per_sample/4", true, true, false,
                   [](auto& z, auto&, auto& t, auto l, auto, const O& o) {
                     cross_entropy_soft_per_sample<N>(z, t, l, o);
                     return 0.0;
                   }});
    out.push_back({p + "cross_entropy_soft_per_sample/5", true, true, true,
                   [](auto& z, auto&, auto& t, auto l, auto dz, const O& o) {
                     cross_entropy_soft_per_sample<N>(z, t, l, dz, o);
                     return 0.0;
                   }});
  } else {
    out.push_back({p + "stablemax_cross_entropy/3", false, false, false,
                   [](auto& z, auto& y, auto&, auto, auto, const O& o) {
                     return stablemax_cross_entropy(z, y, o);
                   }});
    out.push_back({p + "stablemax_cross_entropy/4", false, false, true,
                   [](auto& z, auto& y, auto&, auto, auto dz, const O& o) {
                     return stablemax_cross_entropy(z, y, dz, o);
                   }});
    out.push_back({p + "stablemax_cross_entropy_per_sample/4", false, true, false,
                   [](auto& z, auto& y, auto&, auto l, auto, const O& o) {
                     stablemax_cross_entropy_per_sample(z, y, l, o);
                     return 0.0;
                   }});
    out.push_back({p + "stablemax_cross_entropy_per_sample/5", false, true, true,
                   [](auto& z, auto& y, auto&, auto l, auto dz, const O& o) {
                     stablemax_cross_entropy_per_sample(z, y, l, dz, o);
                     return 0.0;
                   }});
  }
  return out;
}

std::vector<XentCall> member_calls() {
  using L = CrossEntropyLoss<T>;
  using O = CrossEntropyOptions;
  const std::string p = "regula::CrossEntropyLoss::";
  std::vector<XentCall> out;
  out.push_back(
      {p + "forward/2", false, false, false,
       [](auto& z, auto& y, auto&, auto, auto, const O& o) { return L(o).forward(z, y); }});
  out.push_back({p + "forward_backward/3", false, false, true,
                 [](auto& z, auto& y, auto&, auto, auto dz, const O& o) {
                   return L(o).forward_backward(z, y, dz);
                 }});
  out.push_back({p + "per_sample/3", false, true, false,
                 [](auto& z, auto& y, auto&, auto l, auto, const O& o) {
                   L(o).per_sample(z, y, l);
                   return 0.0;
                 }});
  out.push_back({p + "per_sample/4", false, true, true,
                 [](auto& z, auto& y, auto&, auto l, auto dz, const O& o) {
                   L(o).per_sample(z, y, l, dz);
                   return 0.0;
                 }});
  out.push_back(
      {p + "forward_soft/2", true, false, false,
       [](auto& z, auto&, auto& t, auto, auto, const O& o) { return L(o).forward_soft(z, t); }});
  out.push_back({p + "forward_backward_soft/3", true, false, true,
                 [](auto& z, auto&, auto& t, auto, auto dz, const O& o) {
                   return L(o).forward_backward_soft(z, t, dz);
                 }});
  out.push_back({p + "per_sample_soft/3", true, true, false,
                 [](auto& z, auto&, auto& t, auto l, auto, const O& o) {
                   L(o).per_sample_soft(z, t, l);
                   return 0.0;
                 }});
  out.push_back({p + "per_sample_soft/4", true, true, true,
                 [](auto& z, auto&, auto& t, auto l, auto dz, const O& o) {
                   L(o).per_sample_soft(z, t, l, dz);
                   return 0.0;
                 }});
  return out;
}

void xent_rows(const XentCall& k) {
  const auto call = k.call;
  const bool grad = k.grad, per = k.per_sample, soft = k.soft;
  // A valid call with everything sized, then one thing changed per row.
  struct In {
    M z = normal<T>(C, B, 1, 2.0), t = probabilities<T>(C, B), dz = M(C, B);
    Labels y = labels(B, C);
    V l = V(B);
    CrossEntropyOptions o{};
  };
  auto run = [call](In& in) { return call(in.z, in.y, in.t, in.l, in.dz, in.o); };
  add_row({k.entry}, "an empty batch rejected", [=] {
    In in;
    in.z.resize(C, 0);
    in.t.resize(C, 0);
    in.y.resize(0);
    in.dz.resize(C, 0);
    in.l.resize(0);
    rejects({"logits"}, [&] { (void)run(in); });
  });
  add_row({k.entry}, "logits with no class rejected", [=] {
    In in;
    in.z.resize(0, B);
    in.t.resize(0, B);
    in.dz.resize(0, B);
    rejects({"logits"}, [&] { (void)run(in); });
  });
  for (double eps : {-0.1, 1.5, nan}) {
    add_row({k.entry}, "label_smoothing = " + std::to_string(eps) + " rejected", [=] {
      In in;
      in.o.label_smoothing = eps;
      rejects({"label_smoothing"}, [&] { (void)run(in); });
    });
  }
  if (!per) {
    add_row({k.entry}, "reduction none rejected by a reduced call", [=] {
      In in;
      in.o.reduction = Reduction::none;
      rejects({"reduction"}, [&] { (void)run(in); });
    });
  } else {
    add_row({k.entry}, "losses of another length rejected", [=] {
      In in;
      in.l.resize(B + 1);
      rejects({"losses"}, [&] { (void)run(in); });
    });
    add_row(
        {k.entry}, "losses overlapping the logits rejected",
        [=] {
          In in;
          Eigen::Map<V> l(in.z.data() + 1, B);
          rejects({"losses"}, [&] { (void)call(in.z, in.y, in.t, l, in.dz, in.o); });
        },
        k.entry.find("CrossEntropyLoss::per_sample/") != std::string::npos ? "[known:8]" : "");
    if (grad) {
      add_row({k.entry}, "losses overlapping dlogits rejected", [=] {
        In in;
        Eigen::Map<V> l(in.dz.data() + 2, B);
        try {
          (void)call(in.z, in.y, in.t, l, in.dz, in.o);
        } catch (const invalid_argument& e) {
          CHECK((names(e.what(), "losses") || names(e.what(), "dlogits")));
          return;
        }
        FAIL("accepted losses that overlap dlogits");
      });
      add_row({k.entry}, "per-sample gradients over B give the mean gradient", [=] {
        In in;
        (void)run(in);
        const M per_grad = in.dz / static_cast<T>(B);
        const M z = in.z;
        M dz(C, B);
        const bool sm = k.entry.find("stablemax") != std::string::npos;
        T mean = 0;
        if (sm) {
          mean = cross_entropy<Normalizer::stablemax>(z, in.y, dz);
        } else if (soft) {
          mean = cross_entropy_soft(z, in.t, dz);
        } else {
          mean = cross_entropy(z, in.y, dz);
        }
        CHECK(close(per_grad, dz, 1e-5));
        CHECK(std::abs(in.l.mean() - mean) < 1e-5F * (1 + std::abs(mean)));
      });
    }
  }
  if (!soft) {
    add_row({k.entry}, "labels of another length rejected", [=] {
      In in;
      in.y = labels(B - 1, C);
      rejects({"labels"}, [&] { (void)run(in); });
    });
    for (std::int64_t bad :
         {std::int64_t(C), std::int64_t(-1), std::numeric_limits<std::int64_t>::min()}) {
      add_row({k.entry}, "a label " + std::to_string(bad) + " out of range rejected", [=] {
        In in;
        in.y[3] = bad;
        rejects({"labels"}, [&] { (void)run(in); });
      });
    }
    add_row({k.entry}, "ignore_index samples give zero loss and gradient", [=] {
      In in;
      in.y[2] = -100;
      accepts([&] { (void)run(in); });
      if (per) CHECK(in.l[2] == 0.0F);
      if (grad) CHECK(in.dz.col(2).isZero());
    });
  } else {
    add_row({k.entry}, "targets of another shape rejected", [=] {
      In in;
      in.t.resize(C, B + 1);
      rejects({"targets"}, [&] { (void)run(in); });
    });
  }
  if (grad) {
    add_row({k.entry}, "dlogits of another shape rejected", [=] {
      In in;
      in.dz.resize(C + 1, B);
      rejects({"dlogits"}, [&] { (void)run(in); });
    });
    add_row({k.entry}, "dlogits is the logits (not documented as in place)", [=] {
      In in;
      rejects({"dlogits"}, [&] { (void)call(in.z, in.y, in.t, in.l, in.z, in.o); });
    });
    add_row({k.entry}, "dlogits overlaps the logits partly", [=] {
      In in;
      Overlap<T> o(C, B, 1);
      rejects({"dlogits"}, [&] { (void)call(o.a, in.y, in.t, in.l, o.b, in.o); });
    });
    if (soft) {
      add_row({k.entry}, "dlogits overlaps the targets", [=] {
        In in;
        Overlap<T> o(C, B, C);
        rejects({"dlogits"}, [&] { (void)call(in.z, in.y, o.a, in.l, o.b, in.o); });
      });
    }
  }
  add_row({k.entry}, "strided blocks give the result of contiguous copies", [=] {
    In in;
    const double ref = run(in);
    Strided<T> zs(C, B, 1), ts(C, B, 2), ds(C, B, 3);
    zs.block(C, B) = in.z;
    ts.block(C, B) = in.t;
    double got = 0;
    V l(B);
    accepts([&] { got = call(zs.block(C, B), in.y, ts.block(C, B), l, ds.block(C, B), in.o); });
    CHECK(got == ref);
    if (per) CHECK(same(l, in.l));
    if (grad) CHECK(same(M(ds.block(C, B)), in.dz));
  });
  add_row({k.entry}, "NaN logits give NaN for their sample", [=] {
    In in;
    in.z(1, 2) = std::numeric_limits<T>::quiet_NaN();
    const double v = run(in);
    if (per) {
      CHECK(std::isnan(in.l[2]));
      CHECK_FALSE(std::isnan(in.l[0]));
    } else {
      CHECK(std::isnan(v));
    }
  });
  add_row({k.entry}, "logits of +-1e4 give finite results", [=] {
    In in;
    in.z = normal<T>(C, B, 3, 1e4);
    const double v = run(in);
    if (per) CHECK(in.l.allFinite());
    if (!per) CHECK(std::isfinite(v));
    if (grad) CHECK(in.dz.allFinite());
  });
}

void cross_entropy_rows() {
  std::vector<XentCall> calls = free_calls<Normalizer::softmax>("regula::", false);
  for (auto& c : free_calls<Normalizer::stablemax>("regula::", true)) calls.push_back(c);
  for (auto& c : member_calls()) calls.push_back(c);
  for (const auto& c : calls) xent_rows(c);
  const std::string L = "regula::CrossEntropyLoss::";
  for (double eps : {-1.0, nan}) {
    add_row({L + "CrossEntropyLoss/2"}, "label_smoothing = " + std::to_string(eps) + " rejected",
            [eps] {
              rejects({"label_smoothing"}, [&] {
                CrossEntropyLoss<T> l(CrossEntropyOptions{}.with_label_smoothing(eps));
              });
            });
  }
  for (double w : {-1.0, nan, inf}) {
    add_row({L + "CrossEntropyLoss/2"}, "a class weight " + std::to_string(w) + " rejected", [w] {
      V weight = V::Ones(C);
      weight[1] = static_cast<T>(w);
      rejects({"weight"}, [&] { CrossEntropyLoss<T> l({}, weight); });
    });
  }
  add_row({L + "forward/2"}, "weights of another length than the classes rejected", [] {
    const CrossEntropyLoss<T> l({}, V::Ones(C + 1));
    const M z = normal<T>(C, B);
    rejects({"weight"}, [&] { (void)l.forward(z, labels(B, C)); });
  });
  // with_reduction and with_ignore_index come from detail::LabelLossOptions (not listed); the row
  // checks them through CrossEntropyOptions' chain.
  add_row({L + "options/0", L + "weight/0", "regula::CrossEntropyOptions::with_label_smoothing/1"},
          "the fluent options reach the loss", [] {
            const CrossEntropyLoss<T> l(CrossEntropyOptions{}
                                            .with_reduction(Reduction::sum)
                                            .with_label_smoothing(0.25)
                                            .with_ignore_index(3),
                                        V::Ones(C));
            CHECK(l.options().reduction == Reduction::sum);
            CHECK(l.options().label_smoothing == 0.25);
            CHECK(l.options().ignore_index == 3);
            CHECK(l.weight().size() == C);
          });
  add_row(
      {"regula::stablemax_cross_entropy/4"}, "C = 1 at z = -1e38: loss 0 and gradient 0",
      [] {
        M z = M::Constant(1, 1, -1e38F), dz(1, 1);
        const T v = stablemax_cross_entropy(z, labels(1, 1), dz);
        CHECK(v == 0.0F);
        CHECK(dz(0, 0) == 0.0F);
      },
      "[known:4]");
  add_row(
      {"regula::stablemax_cross_entropy/3"}, "C = 2 at (-1e38 -1e38): log 2",
      [] {
        const M z = M::Constant(2, 1, -1e38F);
        CHECK(std::abs(stablemax_cross_entropy(z, labels(1, 2)) - std::log(2.0F)) <= 1e-6F);
      },
      "[known:4]");
  add_row({"regula::PerSampleCrossEntropy::operator()/4"},
          "the functor is cross_entropy_per_sample", [] {
            const M z = normal<T>(C, B);
            const Labels y = labels(B, C);
            V a(B), b(B);
            M da(C, B), db(C, B);
            PerSampleCrossEntropy<> f;
            f.operator()<T>(z, y, a, da);
            cross_entropy_per_sample(z, y, b, db);
            CHECK(same(a, b));
            CHECK(same(da, db));
            Labels bad = y;
            bad[0] = 99;
            rejects({"labels"}, [&] { f.operator()<T>(z, bad, a, da); });
          });
}

// The label-probability losses (losses/label_probability.hpp: coverage, generalized and symmetric
// cross-entropy): four calls each on one driver, and the options each one refuses.
template <class O>
struct LpCall {
  std::string entry;
  bool per, grad;
  std::function<double(const MatrixCRef<T>&, const LabelsCRef&, VectorRef<T>, MatrixRef<T>,
                       const O&)>
      f;
};

// An option value the loss must refuse, naming `param`.
template <class O>
struct BadOption {
  std::string param;
  double value;
  std::function<void(O&, double)> set;
};

#define SWEEP_LP_CALLS(NAME, O)                                                               \
  std::vector<LpCall<O>> {                                                                    \
    {"regula::" #NAME "/3", false, false,                                                     \
     [](auto& z, auto& y, auto, auto, const O& o) { return double(regula::NAME(z, y, o)); }}, \
        {"regula::" #NAME "/4", false, true,                                                  \
         [](auto& z, auto& y, auto, auto dz, const O& o) {                                    \
           return double(regula::NAME(z, y, dz, o));                                          \
         }},                                                                                  \
        {"regula::" #NAME "_per_sample/4", true, false,                                       \
         [](auto& z, auto& y, auto l, auto, const O& o) {                                     \
           regula::NAME##_per_sample(z, y, l, o);                                             \
           return 0.0;                                                                        \
         }},                                                                                  \
        {"regula::" #NAME "_per_sample/5", true, true,                                        \
         [](auto& z, auto& y, auto l, auto dz, const O& o) {                                  \
           regula::NAME##_per_sample(z, y, l, dz, o);                                         \
           return 0.0;                                                                        \
         }},                                                                                  \
  }

template <class O>
void label_probability_rows(const std::vector<LpCall<O>>& calls,
                            const std::vector<BadOption<O>>& bad) {
  for (const auto& k : calls) {
    const auto f = k.f;
    auto std_call = [f](const MatrixCRef<T>& z, const Labels& y, VectorRef<T> l, MatrixRef<T> dz,
                        const O& o) { return f(z, y, l, dz, o); };
    add_row({k.entry}, "an empty batch rejected", [=] {
      M z(C, 0), dz(C, 0);
      V l(0);
      rejects({"logits"}, [&] { (void)std_call(z, Labels(0), l, dz, O{}); });
    });
    add_row({k.entry}, "logits with no class rejected", [=] {
      M z(0, B), dz(0, B);
      V l(B);
      rejects({"logits"}, [&] { (void)std_call(z, labels(B, 1), l, dz, O{}); });
    });
    for (const auto& b : bad) {
      add_row({k.entry}, b.param + " = " + std::to_string(b.value) + " rejected", [=] {
        const M z = normal<T>(C, B);
        M dz(C, B);
        V l(B);
        O o;
        b.set(o, b.value);
        rejects({b.param.c_str()}, [&] { (void)std_call(z, labels(B, C), l, dz, o); });
      });
    }
    add_row({k.entry}, "a label out of range rejected", [=] {
      const M z = normal<T>(C, B);
      M dz(C, B);
      V l(B);
      Labels y = labels(B, C);
      y[4] = C;
      rejects({"labels"}, [&] { (void)std_call(z, y, l, dz, O{}); });
    });
    add_row({k.entry}, "labels of another length rejected", [=] {
      const M z = normal<T>(C, B);
      M dz(C, B);
      V l(B);
      rejects({"labels"}, [&] { (void)std_call(z, labels(B + 2, C), l, dz, O{}); });
    });
    if (!k.per) {
      add_row({k.entry}, "reduction none rejected by a reduced call", [=] {
        const M z = normal<T>(C, B);
        M dz(C, B);
        V l(B);
        O o;
        o.reduction = Reduction::none;
        rejects({"reduction"}, [&] { (void)std_call(z, labels(B, C), l, dz, o); });
      });
    } else {
      add_row({k.entry}, "losses of another length rejected", [=] {
        const M z = normal<T>(C, B);
        M dz(C, B);
        V l(B - 1);
        rejects({"losses"}, [&] { (void)std_call(z, labels(B, C), l, dz, O{}); });
      });
      add_row({k.entry}, "losses overlapping the logits rejected", [=] {
        M z = normal<T>(C, B);
        M dz(C, B);
        Eigen::Map<V> l(z.data() + 3, B);
        rejects({"losses"}, [&] { (void)std_call(z, labels(B, C), l, dz, O{}); });
      });
    }
    if (k.grad) {
      add_row({k.entry}, "dlogits overlaps the logits partly", [=] {
        Overlap<T> o(C, B, 2);
        V l(B);
        rejects({"dlogits"}, [&] { (void)std_call(o.a, labels(B, C), l, o.b, O{}); });
      });
      add_row({k.entry}, "dlogits of another shape rejected", [=] {
        const M z = normal<T>(C, B);
        M dz(C, B + 1);
        V l(B);
        rejects({"dlogits"}, [&] { (void)std_call(z, labels(B, C), l, dz, O{}); });
      });
    }
    add_row({k.entry}, "logits of +-1e4 give finite results, a NaN column NaN", [=] {
      M z = normal<T>(C, B, 3, 1e4);
      M dz(C, B);
      V l(B);
      const double v = std_call(z, labels(B, C), l, dz, O{});
      if (k.per) CHECK(l.allFinite());
      if (!k.per) CHECK(std::isfinite(v));
      if (k.grad) CHECK(dz.allFinite());
      z(1, 2) = static_cast<T>(nan);
      const double w = std_call(z, labels(B, C), l, dz, O{});
      if (k.per) {
        CHECK(std::isnan(l[2]));
        CHECK_FALSE(std::isnan(l[0]));
      } else {
        CHECK(std::isnan(w));
      }
    });
    add_row({k.entry}, "strided blocks give the result of contiguous copies", [=] {
      const M z = normal<T>(C, B);
      M dz(C, B);
      V l(B), l2(B);
      const double ref = std_call(z, labels(B, C), l, dz, O{});
      Strided<T> zs(C, B), ds(C, B, 9);
      zs.block(C, B) = z;
      double got = 0;
      accepts([&] { got = std_call(zs.block(C, B), labels(B, C), l2, ds.block(C, B), O{}); });
      CHECK(got == ref);
      if (k.grad) CHECK(same(M(ds.block(C, B)), dz));
      if (k.per) CHECK(same(l2, l));
    });
  }
}

void label_probability_rows() {
  using CO = CoverageLossOptions;
  std::vector<BadOption<CO>> cov;
  for (double n : {0.5, nan, inf}) cov.push_back({"N", n, [](CO& o, double v) { o.N = v; }});
  label_probability_rows<CO>(SWEEP_LP_CALLS(coverage_loss, CO), cov);
  using GO = GeneralizedCrossEntropyOptions;
  std::vector<BadOption<GO>> gce;
  for (double q : {0.0, -0.5, 1.5, nan}) gce.push_back({"q", q, [](GO& o, double v) { o.q = v; }});
  for (double k : {-0.1, 1.0, nan})
    gce.push_back({"truncation", k, [](GO& o, double v) { o.truncation = v; }});
  label_probability_rows<GO>(SWEEP_LP_CALLS(generalized_cross_entropy, GO), gce);
  using SO = SymmetricCrossEntropyOptions;
  std::vector<BadOption<SO>> sce;
  for (double a : {-1.0, nan, inf})
    sce.push_back({"alpha", a, [](SO& o, double v) { o.alpha = v; }});
  for (double b : {-1.0, nan}) sce.push_back({"beta", b, [](SO& o, double v) { o.beta = v; }});
  for (double A : {0.0, 1.0, nan, -inf}) sce.push_back({"A", A, [](SO& o, double v) { o.A = v; }});
  label_probability_rows<SO>(SWEEP_LP_CALLS(symmetric_cross_entropy, SO), sce);
  add_row({"regula::GeneralizedCrossEntropyOptions::with_q/1",
           "regula::GeneralizedCrossEntropyOptions::with_truncation/1",
           "regula::SymmetricCrossEntropyOptions::with_alpha/1",
           "regula::SymmetricCrossEntropyOptions::with_beta/1",
           "regula::SymmetricCrossEntropyOptions::with_A/1"},
          "the fluent options reach their fields", [] {
            const auto g = GeneralizedCrossEntropyOptions{}.with_q(0.5).with_truncation(0.25);
            CHECK(g.q == 0.5);
            CHECK(g.truncation == 0.25);
            const auto o =
                SymmetricCrossEntropyOptions{}.with_alpha(2.0).with_beta(3.0).with_A(-5.0);
            CHECK(o.alpha == 2.0);
            CHECK(o.beta == 3.0);
            CHECK(o.A == -5.0);
          });
}

// ---------------------------------------------------------------------------------------------
// The logit-level distillation losses: four calls each, from REGULA_DETAIL_TEACHER_LOSS_API.

template <class Options>
struct KdCalls {
  std::string name;
  bool has_temperature = true;
  Index min_classes = 1;
  std::function<double(const MatrixCRef<T>&, const MatrixCRef<T>&, const Options&)> reduced;
  std::function<double(const MatrixCRef<T>&, const MatrixCRef<T>&, MatrixRef<T>, const Options&)>
      grad;
  std::function<void(const MatrixCRef<T>&, const MatrixCRef<T>&, VectorRef<T>, const Options&)> per;
  std::function<void(const MatrixCRef<T>&, const MatrixCRef<T>&, VectorRef<T>, MatrixRef<T>,
                     const Options&)>
      per_grad;
};

#define SWEEP_KD_CALLS(NAME, OPTIONS)                                                          \
  KdCalls<OPTIONS> {                                                                           \
    "regula::" #NAME, true, 1,                                                                 \
        [](const MatrixCRef<T>& z, const MatrixCRef<T>& v, const OPTIONS& o) {                 \
          return double(regula::NAME(z, v, o));                                                \
        },                                                                                     \
        [](const MatrixCRef<T>& z, const MatrixCRef<T>& v, MatrixRef<T> d, const OPTIONS& o) { \
          return double(regula::NAME(z, v, d, o));                                             \
        },                                                                                     \
        [](const MatrixCRef<T>& z, const MatrixCRef<T>& v, VectorRef<T> l, const OPTIONS& o) { \
          regula::NAME##_per_sample(z, v, l, o);                                               \
        },                                                                                     \
        [](const MatrixCRef<T>& z, const MatrixCRef<T>& v, VectorRef<T> l, MatrixRef<T> d,     \
           const OPTIONS& o) { regula::NAME##_per_sample(z, v, l, d, o); }                     \
  }

template <class Options>
void kd_rows(const KdCalls<Options>& k) {
  const std::string r3 = k.name + "/3", r4 = k.name + "/4", p4 = k.name + "_per_sample/4",
                    p5 = k.name + "_per_sample/5";
  const auto reduced = k.reduced;
  const auto grad = k.grad;
  const auto per = k.per;
  const auto per_grad = k.per_grad;
  const M z = normal<T>(C, B, 1, 2.0), v = normal<T>(C, B, 2, 2.0);
  // Every call, for the rows that apply to all four.
  const std::vector<std::pair<std::string, std::function<void(const M&, const M&, const Options&)>>>
      all = {{r3, [=](const M& a, const M& b, const Options& o) { (void)reduced(a, b, o); }},
             {r4,
              [=](const M& a, const M& b, const Options& o) {
                M d(a.rows(), a.cols());
                (void)grad(a, b, d, o);
              }},
             {p4,
              [=](const M& a, const M& b, const Options& o) {
                V l(a.cols());
                per(a, b, l, o);
              }},
             {p5, [=](const M& a, const M& b, const Options& o) {
                V l(a.cols());
                M d(a.rows(), a.cols());
                per_grad(a, b, l, d, o);
              }}};
  for (const auto& call_of : all) {
    const std::string entry = call_of.first;
    const auto f = call_of.second;
    add_row({entry}, "an empty batch rejected",
            [f] { rejects({"student logits"}, [&] { f(M(C, 0), M(C, 0), Options{}); }); });
    add_row({entry}, "logits with no class rejected",
            [f] { rejects({"student logits"}, [&] { f(M(0, B), M(0, B), Options{}); }); });
    add_row({entry}, "teacher logits of another shape rejected",
            [f, z] { rejects({"teacher logits"}, [&] { f(z, normal<T>(C + 1, B), Options{}); }); });
    if constexpr (!std::is_same_v<Options, LogitMSEOptions>) {
      for (double t : {0.0, -1.0, nan, inf}) {
        add_row({entry}, "temperature = " + std::to_string(t) + " rejected", [f, z, v, t] {
          rejects({"temperature"}, [&] { f(z, v, Options{}.with_temperature(t)); });
        });
      }
      add_row(
          {entry}, "temperature = 1e20 (T^2 overflows in float): rejected or the large-T limit",
          [f, z, v, grad] {
            try {
              f(z, v, Options{}.with_temperature(1e20));
            } catch (const invalid_argument& e) {
              CHECK(names(e.what(), "temperature"));
              return;
            }
            // Accepted: T^2 times a divergence of order 1/T^2 has a finite, nonzero limit for z !=
            // v.
            M d(C, B);
            const double l = grad(z, v, d, Options{}.with_temperature(1e20));
            CHECK(std::isfinite(l));
            CHECK(l != 0.0);
            CHECK(d.allFinite());
            CHECK_FALSE(d.isZero());
          },
          "[known:9]");
    }
  }
  add_row({r3, p4}, "NaN in the student gives NaN for its sample and the batch", [=] {
    M zn = z;
    zn(0, 1) = std::numeric_limits<T>::quiet_NaN();
    V l(B);
    per(zn, v, l, Options{});
    CHECK(std::isnan(l[1]));
    CHECK_FALSE(std::isnan(l[0]));
    CHECK(std::isnan(reduced(zn, v, Options{})));
  });
  add_row({r3}, "reduction none rejected by a reduced call", [=] {
    rejects({"reduction"}, [&] { (void)reduced(z, v, Options{}.with_reduction(Reduction::none)); });
  });
  add_row({p4}, "reduction none accepted by a per-sample call", [=] {
    V l(B);
    accepts([&] { per(z, v, l, Options{}.with_reduction(Reduction::none)); });
  });
  add_row({r4}, "dstudent of another shape rejected", [=] {
    M d(C, B + 1);
    rejects({"dstudent"}, [&] { (void)grad(z, v, d, Options{}); });
  });
  add_row({r4}, "dstudent is the student logits", [=] {
    M zz = z;
    rejects({"dstudent"}, [&] { (void)grad(zz, v, zz, Options{}); });
  });
  add_row({r4}, "dstudent overlaps the student logits partly", [=] {
    Overlap<T> o(C, B, 1);
    rejects({"dstudent"}, [&] { (void)grad(o.a, v, o.b, Options{}); });
  });
  add_row({r4}, "dstudent overlaps the teacher logits partly", [=] {
    Overlap<T> o(C, B, C);
    rejects({"dstudent"}, [&] { (void)grad(z, o.a, o.b, Options{}); });
  });
  add_row({p4}, "losses of another length rejected", [=] {
    V l(B + 1);
    rejects({"losses"}, [&] { per(z, v, l, Options{}); });
  });
  add_row({p4}, "losses overlapping the student logits rejected", [=] {
    M zz = z;
    Eigen::Map<V> l(zz.data() + 1, B);
    rejects({"losses"}, [&] { per(zz, v, l, Options{}); });
  });
  add_row({p5}, "losses overlapping dstudent rejected", [=] {
    M d(C, B);
    Eigen::Map<V> l(d.data() + 1, B);
    try {
      per_grad(z, v, l, d, Options{});
    } catch (const invalid_argument& e) {
      CHECK((names(e.what(), "losses") || names(e.what(), "dstudent")));
      return;
    }
    FAIL("accepted losses that overlap dstudent");
  });
  add_row({r4, p5},
          "strided blocks give the result of contiguous copies; per-sample gradients reduce to it",
          [=] {
            M d(C, B), dp(C, B);
            V l(B);
            const double ref = grad(z, v, d, Options{});
            per_grad(z, v, l, dp, Options{});
            Strided<T> zs(C, B, 1), vs(C, B, 2), ds(C, B, 3);
            zs.block(C, B) = z;
            vs.block(C, B) = v;
            double got = 0;
            accepts([&] { got = grad(zs.block(C, B), vs.block(C, B), ds.block(C, B), Options{}); });
            CHECK(got == ref);
            CHECK(same(M(ds.block(C, B)), d));
            const double scale = std::is_same_v<Options, LogitMSEOptions>
                                     ? 1.0 / (B * C)
                                     : 1.0 / B;  // default reduction
            CHECK(close(M(dp * static_cast<T>(scale)), d, 1e-5));
            CHECK(std::abs(l.cast<double>().sum() * scale - ref) <= 1e-5 * (1 + std::abs(ref)));
          });
  add_row({r4}, "logits of +-1e4 give finite results", [=] {
    const M zb = normal<T>(C, B, 5, 1e4), vb = normal<T>(C, B, 6, 1e4);
    M d(C, B);
    const double l = grad(zb, vb, d, Options{});
    CHECK(std::isfinite(l));
    CHECK(d.allFinite());
  });
}

void kd_option_rows() {
  const std::string o = "regula::KDLossOptions::";
  // KDLossOptions' setters and factor() are those of its base, detail::DistillationOptions,
  // which the listing does not name; this row checks them under DKDOptions' constructor.
  add_row({"regula::DKDOptions::DKDOptions/0"}, "KDLossOptions: the setters set the fields", [] {
    const auto opt =
        KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(true).with_reduction(
            Reduction::sum);
    CHECK(opt.temperature == 4.0);
    CHECK(opt.scale_by_t_squared);
    CHECK(opt.reduction == Reduction::sum);
    CHECK(opt.factor() == 16.0);
    CHECK(KDLossOptions{}.with_temperature(4.0).with_scale_by_t_squared(false).factor() == 1.0);
  });
  add_row({"regula::LogitMSEOptions::with_reduction/1"}, "the setter sets the field", [] {
    CHECK(LogitMSEOptions{}.with_reduction(Reduction::sum).reduction == Reduction::sum);
  });
  const std::string d = "regula::DKDOptions::";
  add_row({d + "DKDOptions/0", d + "with_alpha/1", d + "with_beta/1"},
          "mdistiller's defaults, and the setters of DKD and of its base in one chain", [] {
            const DKDOptions def;
            CHECK(def.temperature == 4.0);
            CHECK(def.alpha == 1.0);
            CHECK(def.beta == 8.0);
            CHECK(def.scale_by_t_squared);
            CHECK(def.reduction == Reduction::batchmean);
            const auto opt = DKDOptions{}
                                 .with_alpha(2)
                                 .with_beta(3)
                                 .with_temperature(2)
                                 .with_scale_by_t_squared(true)
                                 .with_reduction(Reduction::mean);
            CHECK(opt.alpha == 2.0);
            CHECK(opt.beta == 3.0);
            CHECK(opt.temperature == 2.0);
            CHECK(opt.scale_by_t_squared);
            CHECK(opt.reduction == Reduction::mean);
            CHECK(opt.factor() == 4.0);
          });
}

void logit_std_rows() {
  add_row({"regula::logit_std_kd/3"}, "one class cannot be standardized", [] {
    const M z = normal<T>(1, B), v = normal<T>(1, B);
    rejects({"student logits"}, [&] { (void)logit_std_kd(z, v); });
  });
}

void dkd_rows() {
  using O = DKDOptions;
  const M z = normal<T>(C, B, 1, 2.0), v = normal<T>(C, B, 2, 2.0);
  const Labels y = labels(B, C);
  const std::vector<
      std::pair<std::string, std::function<void(const M&, const M&, const Labels&, const O&)>>>
      all = {{"regula::dkd/4",
              [](const M& a, const M& b, const Labels& l, const O& o) { (void)dkd(a, b, l, o); }},
             {"regula::dkd/5",
              [](const M& a, const M& b, const Labels& l, const O& o) {
                M d(a.rows(), a.cols());
                (void)dkd(a, b, l, d, o);
              }},
             {"regula::dkd_per_sample/5",
              [](const M& a, const M& b, const Labels& l, const O& o) {
                V ls(a.cols());
                dkd_per_sample(a, b, l, ls, o);
              }},
             {"regula::dkd_per_sample/6", [](const M& a, const M& b, const Labels& l, const O& o) {
                V ls(a.cols());
                M d(a.rows(), a.cols());
                dkd_per_sample(a, b, l, ls, d, o);
              }}};
  for (const auto& call_of : all) {
    const std::string entry = call_of.first;
    const auto f = call_of.second;
    add_row({entry}, "an empty batch rejected",
            [f] { rejects({"student logits"}, [&] { f(M(C, 0), M(C, 0), Labels(0), O{}); }); });
    add_row({entry}, "one class rejected", [f] {
      rejects({"student logits"}, [&] { f(normal<T>(1, B), normal<T>(1, B), labels(B, 1), O{}); });
    });
    add_row({entry}, "teacher logits of another shape rejected",
            [=] { rejects({"teacher logits"}, [&] { f(z, normal<T>(C, B + 1), y, O{}); }); });
    add_row({entry}, "labels of another length rejected",
            [=] { rejects({"labels"}, [&] { f(z, v, labels(B + 1, C), O{}); }); });
    add_row({entry}, "a label out of range rejected", [=] {
      Labels bad = y;
      bad[0] = -1;
      rejects({"labels"}, [&] { f(z, v, bad, O{}); });
    });
    for (double t : {0.0, nan, inf}) {
      add_row({entry}, "temperature = " + std::to_string(t) + " rejected",
              [=] { rejects({"temperature"}, [&] { f(z, v, y, O{}.with_temperature(t)); }); });
    }
    add_row({entry}, "alpha = NaN rejected",
            [=] { rejects({"alpha"}, [&] { f(z, v, y, O{}.with_alpha(nan)); }); });
    add_row({entry}, "beta = inf rejected",
            [=] { rejects({"beta"}, [&] { f(z, v, y, O{}.with_beta(inf)); }); });
    add_row({entry}, "beta = 1e300 (past the largest float) rejected",
            [=] { rejects({"beta"}, [&] { f(z, v, y, O{}.with_beta(1e300)); }); });
    add_row({entry}, "alpha = -1e300 (past the largest float) rejected",
            [=] { rejects({"alpha"}, [&] { f(z, v, y, O{}.with_alpha(-1e300)); }); });
    add_row(
        {entry}, "temperature = 1e20 (T^2 overflows in float): rejected or finite nonzero",
        [=] {
          try {
            f(z, v, y, O{}.with_temperature(1e20));
          } catch (const invalid_argument& e) {
            CHECK(names(e.what(), "temperature"));
            return;
          }
          const T l = dkd(z, v, y, O{}.with_temperature(1e20));
          CHECK(std::isfinite(l));
          CHECK(l != 0.0F);
        },
        "[known:9]");
  }
  add_row({"regula::dkd/5"}, "dstudent overlaps the student logits partly", [=] {
    Overlap<T> o(C, B, 1);
    rejects({"dstudent"}, [&] { (void)dkd(o.a, v, y, o.b); });
  });
  add_row({"regula::dkd/5"}, "dstudent of another shape rejected", [=] {
    M d(C + 1, B);
    rejects({"dstudent"}, [&] { (void)dkd(z, v, y, d); });
  });
  add_row({"regula::dkd/5"}, "strided blocks give the result of contiguous copies", [=] {
    M d(C, B);
    const T ref = dkd(z, v, y, d);
    Strided<T> zs(C, B, 1), vs(C, B, 2), ds(C, B, 3);
    zs.block(C, B) = z;
    vs.block(C, B) = v;
    T got = 0;
    accepts([&] { got = dkd(zs.block(C, B), vs.block(C, B), y, ds.block(C, B)); });
    CHECK(got == ref);
    CHECK(same(M(ds.block(C, B)), d));
  });
  add_row({"regula::dkd_per_sample/5"}, "losses overlapping the student logits rejected", [=] {
    M zz = z;
    Eigen::Map<V> l(zz.data() + 1, B);
    rejects({"losses"}, [&] { dkd_per_sample(zz, v, y, l); });
  });
  add_row({"regula::dkd_per_sample/5"}, "losses of another length rejected", [=] {
    V l(B - 1);
    rejects({"losses"}, [&] { dkd_per_sample(z, v, y, l); });
  });
}

/// Limits the address space to what is mapped now plus `extra` bytes while alive, so that a
/// runaway allocation fails instead of taking the machine's memory.
class AddressSpaceGuard {
 public:
  explicit AddressSpaceGuard(std::size_t extra) {
    getrlimit(RLIMIT_AS, &old_);
    std::ifstream statm("/proc/self/statm");
    std::size_t pages = 0;
    statm >> pages;
    rlimit lim = old_;
    lim.rlim_cur = pages * 4096 + extra;
    if (old_.rlim_cur == RLIM_INFINITY || lim.rlim_cur < old_.rlim_cur) setrlimit(RLIMIT_AS, &lim);
  }
  ~AddressSpaceGuard() { setrlimit(RLIMIT_AS, &old_); }
  AddressSpaceGuard(const AddressSpaceGuard&) = delete;
  AddressSpaceGuard& operator=(const AddressSpaceGuard&) = delete;

 private:
  rlimit old_{};
};

void sinkhorn_rows() {
  using O = SinkhornKDOptions;
  const M z = normal<T>(C, B, 1, 2.0), v = normal<T>(C, B, 2, 2.0);
  const std::vector<std::pair<std::string, std::function<void(const M&, const M&, const O&)>>> all =
      {{"regula::sinkhorn_kd/3",
        [](const M& a, const M& b, const O& o) { (void)sinkhorn_kd(a, b, o); }},
       {"regula::sinkhorn_kd/4",
        [](const M& a, const M& b, const O& o) {
          SinkhornKDWorkspace<T> ws;
          (void)sinkhorn_kd<T>(a, b, ws, o);
          M d(a.rows(), a.cols());
          (void)sinkhorn_kd(a, b, d, o);
        }},
       {"regula::sinkhorn_kd/5",
        [](const M& a, const M& b, const O& o) {
          SinkhornKDWorkspace<T> ws;
          M d(a.rows(), a.cols());
          (void)sinkhorn_kd<T>(a, b, d, ws, o);
        }},
       {"regula::sinkhorn_kd_per_sample/5", [](const M& a, const M& b, const O& o) {
          SinkhornKDWorkspace<T> ws;
          V l(a.cols());
          sinkhorn_kd_per_sample<T>(a, b, l, ws, o);
        }}};
  for (const auto& call_of : all) {
    const std::string entry = call_of.first;
    const auto f = call_of.second;
    add_row({entry}, "an empty batch rejected",
            [f] { rejects({"student logits"}, [&] { f(M(C, 0), M(C, 0), O{}); }); });
    add_row({entry}, "teacher logits of another shape rejected",
            [=] { rejects({"teacher logits"}, [&] { f(z, normal<T>(C, B + 1), O{}); }); });
    for (double t : {0.0, nan, inf}) {
      add_row({entry}, "temperature = " + std::to_string(t) + " rejected",
              [=] { rejects({"temperature"}, [&] { f(z, v, O{}.with_temperature(t)); }); });
      add_row({entry}, "epsilon = " + std::to_string(t) + " rejected",
              [=] { rejects({"epsilon"}, [&] { f(z, v, O{}.with_epsilon(t)); }); });
    }
    add_row({entry}, "iterations = 0 rejected",
            [=] { rejects({"iterations"}, [&] { f(z, v, O{}.with_iterations(0)); }); });
    add_row({entry}, "lambda = NaN rejected",
            [=] { rejects({"lambda"}, [&] { f(z, v, O{}.with_lambda(nan)); }); });
    add_row({entry}, "lambda = 1e300 (past the largest float) rejected",
            [=] { rejects({"lambda"}, [&] { f(z, v, O{}.with_lambda(1e300)); }); });
    add_row(
        {entry}, "epsilon = 1e-39 (1/epsilon overflows in float): rejected or finite",
        [=] {
          try {
            f(z, v, O{}.with_epsilon(1e-39));
          } catch (const invalid_argument& e) {
            CHECK(names(e.what(), "epsilon"));
            return;
          }
          CHECK(std::isfinite(sinkhorn_kd(z, v, O{}.with_epsilon(1e-39))));
        },
        "[known:9]");
    add_row(
        {entry}, "iterations = INT_MAX rejected before allocating",
        [=] {
          const AddressSpaceGuard guard(std::size_t{2} << 30);
          rejects({"iterations"}, [&] { f(z, v, O{}.with_iterations(INT_MAX)); });
        },
        "[known:9]");
  }
  add_row({"regula::sinkhorn_kd/5"}, "dstudent overlaps the student logits partly", [=] {
    Overlap<T> o(C, B, 1);
    SinkhornKDWorkspace<T> ws;
    rejects({"dstudent"}, [&] { (void)sinkhorn_kd<T>(o.a, v, o.b, ws); });
  });
  add_row({"regula::sinkhorn_kd/5", "regula::sinkhorn_kd/4"},
          "strided blocks give the result of contiguous copies", [=] {
            SinkhornKDWorkspace<T> ws;
            M d(C, B);
            const T ref = sinkhorn_kd<T>(z, v, d, ws);
            Strided<T> zs(C, B, 1), vs(C, B, 2), ds(C, B, 3);
            zs.block(C, B) = z;
            vs.block(C, B) = v;
            T got = 0;
            accepts([&] { got = sinkhorn_kd(zs.block(C, B), vs.block(C, B), ds.block(C, B)); });
            CHECK(got == ref);
            CHECK(same(M(ds.block(C, B)), d));
          });
  add_row({"regula::sinkhorn_kd_per_sample/5"}, "losses of another length rejected", [=] {
    SinkhornKDWorkspace<T> ws;
    V l(B + 1);
    rejects({"losses"}, [&] { sinkhorn_kd_per_sample<T>(z, v, l, ws); });
  });
  add_row({"regula::sinkhorn_kd_per_sample/5"}, "losses overlapping the student logits rejected",
          [=] {
            SinkhornKDWorkspace<T> ws;
            M zz = z;
            Eigen::Map<V> l(zz.data() + 1, B);
            rejects({"losses"}, [&] { sinkhorn_kd_per_sample<T>(zz, v, l, ws); });
          });
  add_row({"regula::sinkhorn_kd/4"}, "a workspace sized for another shape is reused correctly",
          [=] {
            SinkhornKDWorkspace<T> ws;
            (void)sinkhorn_kd<T>(normal<T>(C + 2, B + 3), normal<T>(C + 2, B + 3, 4), ws);
            const T a = sinkhorn_kd<T>(z, v, ws);
            SinkhornKDWorkspace<T> fresh;
            CHECK(a == sinkhorn_kd<T>(z, v, fresh));
          });
  const std::string o = "regula::SinkhornKDOptions::";
  add_row({o + "with_temperature/1", o + "with_epsilon/1", o + "with_iterations/1",
           o + "with_lambda/1", o + "with_grad_mode/1"},
          "the setters set the fields", [] {
            const auto opt = O{}.with_temperature(3)
                                 .with_epsilon(0.5)
                                 .with_iterations(7)
                                 .with_lambda(2)
                                 .with_grad_mode(SinkhornGradMode::envelope);
            CHECK(opt.temperature == 3.0);
            CHECK(opt.epsilon == 0.5);
            CHECK(opt.iterations == 7);
            CHECK(opt.lambda == 2.0);
            CHECK(opt.grad_mode == SinkhornGradMode::envelope);
          });
  const std::string w = "regula::SinkhornKDWorkspace::";
  add_row({w + "reserve/3", w + "cost/0", w + "plan/0"},
          "the workspace holds the cost and plan of the call", [=] {
            SinkhornKDWorkspace<T> ws;
            ws.reserve(C, B, 3);
            (void)sinkhorn_kd<T>(z, v, ws);
            CHECK(ws.cost().rows() == B);
            CHECK(ws.plan().cols() == B);
            CHECK(ws.cost().allFinite());
            CHECK((ws.cost().array() >= 0).all());
          });
  add_row({w + "reserve/3"}, "reserve with negative sizes rejected by name", [] {
    SinkhornKDWorkspace<T> ws;
    rejects({"classes"}, [&] { ws.reserve(-1, B, 3); });
  });
}

void dual_head_rows() {
  const std::string g = "regula::gradient_alignment/3";
  const M g1 = normal<T>(C, B, 1), g2 = normal<T>(C, B, 2);
  add_row({g}, "g2 of another shape rejected", [=] {
    M out(C, B);
    rejects({"g2"}, [&] { (void)gradient_alignment<T>(g1, normal<T>(C, B + 1), out); });
  });
  add_row({g}, "out of another shape rejected", [=] {
    M out(C + 1, B);
    rejects({"out"}, [&] { (void)gradient_alignment<T>(g1, g2, out); });
  });
  add_row({g}, "out overlaps g1 partly", [=] {
    Overlap<T> o(C, B, 1);
    rejects({"out"}, [&] { (void)gradient_alignment<T>(o.a, g2, o.b); });
  });
  add_row({g}, "out is g1 itself: in place equals out of place", [=] {
    M out(C, B), a = g1;
    (void)gradient_alignment<T>(g1, g2, out);
    accepts([&] { (void)gradient_alignment<T>(a, g2, a); });
    CHECK(same(a, out));
  });
  const std::string d = "regula::DualHeadKD::";
  add_row({d + "DualHeadKD/1"}, "weight1 = NaN rejected", [] {
    rejects({"weight1"}, [] { DualHeadKD<T> k(DualHeadOptions{}.with_weight1(nan)); });
  });
  add_row({d + "DualHeadKD/1"}, "weight2 = inf rejected", [] {
    rejects({"weight2"}, [] { DualHeadKD<T> k(DualHeadOptions{}.with_weight2(inf)); });
  });
  add_row({d + "DualHeadKD/1"}, "weight1 = 1e300 (past the largest float) rejected", [] {
    rejects({"weight1"}, [] { DualHeadKD<T> k(DualHeadOptions{}.with_weight1(1e300)); });
  });
  add_row({d + "combine/3"}, "dfeat2 of another shape rejected", [=] {
    M out(C, B);
    rejects({"dfeat2"}, [&] { DualHeadKD<T>().combine(g1, normal<T>(C, B + 1), out); });
  });
  add_row({d + "combine/3"}, "dfeatures of another shape rejected", [=] {
    M out(C, B + 1);
    rejects({"dfeatures"}, [&] { DualHeadKD<T>().combine(g1, g2, out); });
  });
  add_row({d + "combine/3"}, "dfeatures overlaps dfeat2 partly", [=] {
    Overlap<T> o(C, B, 2);
    rejects({"dfeatures"}, [&] { DualHeadKD<T>().combine(g1, o.a, o.b); });
  });
  add_row({d + "combine/3"}, "strided blocks give the sum", [=] {
    Strided<T> s1(C, B, 1), s2(C, B, 2), so(C, B, 3);
    const M sum = M(s1.block(C, B)) + M(s2.block(C, B));
    accepts([&] { DualHeadKD<T>().combine(s1.block(C, B), s2.block(C, B), so.block(C, B)); });
    CHECK(same(M(so.block(C, B)), sum));
  });
  add_row({d + "forward_backward/6", d + "options/0"}, "the weights scale the losses and gradients",
          [=] {
            const DualHeadKD<T> k(DualHeadOptions{}.with_weight1(2).with_weight2(3));
            CHECK(k.options().weight1 == 2.0);
            M d1(C, B), d2(C, B);
            const Labels y = labels(B, C);
            const auto r = k.forward_backward(
                g1, g2,
                [&](const MatrixCRef<T>& h, MatrixRef<T> dh) { return cross_entropy(h, y, dh); },
                [&](const MatrixCRef<T>& h, MatrixRef<T> dh) { return cross_entropy(h, y, dh); },
                d1, d2);
            M ref(C, B);
            const T l1 = cross_entropy(g1, y, ref);
            CHECK(r.loss1 == l1);
            CHECK(std::abs(r.total - (2 * r.loss1 + 3 * r.loss2)) < 1e-5F);
            CHECK(close(d1, M(2 * ref), 1e-6));
          });
  const std::string o = "regula::DualHeadOptions::";
  add_row({o + "with_weight1/1", o + "with_weight2/1", o + "with_align/1"},
          "the setters set the fields", [] {
            const auto opt =
                DualHeadOptions{}.with_weight1(0.5).with_weight2(0.25).with_align(true);
            CHECK(opt.weight1 == 0.5);
            CHECK(opt.weight2 == 0.25);
            CHECK(opt.align);
          });
}

void register_rows() {
  cross_entropy_rows();
  label_probability_rows();
  kd_rows(SWEEP_KD_CALLS(kd_kl, KDLossOptions));
  kd_rows(SWEEP_KD_CALLS(reverse_kl, KDLossOptions));
  kd_rows(SWEEP_KD_CALLS(js, KDLossOptions));
  kd_rows(SWEEP_KD_CALLS(total_variation, KDLossOptions));
  kd_rows(SWEEP_KD_CALLS(binary_kl, KDLossOptions));
  kd_rows(SWEEP_KD_CALLS(binary_kl_norm, KDLossOptions));
  kd_rows(SWEEP_KD_CALLS(logit_mse, LogitMSEOptions));
  kd_rows(SWEEP_KD_CALLS(logit_std_kd, KDLossOptions));
  kd_option_rows();
  logit_std_rows();
  dkd_rows();
  sinkhorn_rows();
  dual_head_rows();
}

const Rows rows(register_rows);

}  // namespace
}  // namespace regula::sweep
