// Sweep rows of selection/: forget-rate schedules, small-loss selection, Co-teaching(+), JoCoR and
// label noise.
#include "sweep/sweep.hpp"
#include <regula/selection/co_teaching.hpp>
#include <regula/selection/forget_rate.hpp>
#include <regula/selection/jocor.hpp>
#include <regula/selection/label_noise.hpp>
#include <regula/selection/small_loss.hpp>

namespace regula::sweep {
namespace {

using T = float;
using M = Matrix<T>;
using V = Vector<T>;
constexpr Index C = 4, B = 8;

void forget_rate_rows() {
  const std::string f = "regula::forget_rate/2", l = "regula::legacy_coteaching_forget_rate/2";
  for (const std::string& e : {f, l}) {
    for (double tau : {-0.1, 1.0, nan}) {
      add_row({e}, "tau = " + std::to_string(tau) + " rejected", [=] {
        ForgetRateOptions o;
        o.tau = tau;
        rejects({"tau"},
                [&] { (void)(e == f ? forget_rate(o, 1) : legacy_coteaching_forget_rate(o, 1)); });
      });
    }
    for (double r : {0.5, nan}) {
      add_row({e}, "ramp_epochs = " + std::to_string(r) + " rejected", [=] {
        ForgetRateOptions o;
        o.ramp_epochs = r;
        rejects({"ramp_epochs"},
                [&] { (void)(e == f ? forget_rate(o, 1) : legacy_coteaching_forget_rate(o, 1)); });
      });
    }
    for (double x : {0.0, nan}) {
      add_row({e}, "exponent = " + std::to_string(x) + " rejected", [=] {
        ForgetRateOptions o;
        o.exponent = x;
        rejects({"exponent"},
                [&] { (void)(e == f ? forget_rate(o, 1) : legacy_coteaching_forget_rate(o, 1)); });
      });
    }
    for (double ep : {-1.0, nan}) {
      add_row({e}, "epoch = " + std::to_string(ep) + " rejected", [=] {
        rejects({"epoch"}, [&] {
          (void)(e == f ? forget_rate({}, ep) : legacy_coteaching_forget_rate({}, ep));
        });
      });
    }
  }
  add_row({f}, "the ramp reaches tau at ramp_epochs", [] {
    ForgetRateOptions o;
    o.tau = 0.4;
    o.ramp_epochs = 10;
    CHECK(forget_rate(o, 0) == 0.0);
    CHECK(std::abs(forget_rate(o, 5) - 0.2) < 1e-15);
    CHECK(forget_rate(o, 1e300) == 0.4);
  });
  add_row({l}, "a fractional epoch or ramp_epochs rejected", [] {
    rejects({"epoch"}, [] { (void)legacy_coteaching_forget_rate({}, 1.5); });
    ForgetRateOptions o;
    o.ramp_epochs = 2.5;
    rejects({"ramp_epochs"}, [&] { (void)legacy_coteaching_forget_rate(o, 1); });
  });
}

void small_loss_rows() {
  for (double r : {-0.1, 1.5, nan}) {
    add_row({"regula::keep_count/2"}, "forget_rate = " + std::to_string(r) + " rejected",
            [r] { rejects({"forget_rate"}, [&] { (void)keep_count(10, r); }); });
  }
  add_row({"regula::keep_count/2"}, "floor((1 - r) n), at least 1 unless n = 0", [] {
    CHECK(keep_count(10, 0.25) == 7U);
    CHECK(keep_count(3, 1.0) == 1U);
    CHECK(keep_count(0, 0.5) == 0U);
  });
  const std::string s = "regula::SmallLossSelector::";
  add_row({s + "select/3", s + "select/4"}, "keep larger than the batch rejected", [] {
    SmallLossSelector<T> sel;
    const V l = V::Ones(4);
    rejects({"keep"}, [&] { (void)sel.select(l, 5); });
    rejects({"keep"}, [&] { (void)sel.select(l.data(), 4, 5); });
  });
  add_row(
      {s + "select/3", s + "select/4", s + "selected/0", s + "reserve/1"},
      "ties go to the lower index, NaN losses last, -0 ties +0", [] {
        SmallLossSelector<T> sel;
        sel.reserve(6);
        V l(6);
        l << 1, std::numeric_limits<T>::quiet_NaN(), 0.0F, 1, -0.0F, 2;
        CHECK(sel.select(l, 3) == std::vector<Index>{0, 2, 4});
        CHECK(sel.select(l.data(), 6, 3, SelectionOrder::by_loss) == std::vector<Index>{2, 4, 0});
        CHECK(sel.selected() == std::vector<Index>{2, 4, 0});
        CHECK(sel.select(l, 6, SelectionOrder::by_loss).back() == 1);
        CHECK(sel.select(l, 0).empty());
      });
  add_row({s + "select/3"}, "a strided segment selects as a contiguous copy", [] {
    Strided<T> st(1, 9);
    const V ref = st.big.row(1).segment(2, 9).transpose();
    SmallLossSelector<T> a, b;
    const auto& x = a.select(ref, 4);
    accepts([&] { (void)b.select(st.big.row(1).segment(2, 9).transpose(), 4); });
    CHECK(x == b.selected());
  });
  add_row({"regula::label_precision/2"}, "an index out of range rejected naming selected", [] {
    const std::vector<std::uint8_t> noisy = {0, 1, 0};
    rejects({"selected"}, [&] { (void)label_precision({0, 3}, noisy); });
    rejects({"selected"}, [&] { (void)label_precision({-1}, noisy); });
  });
  add_row({"regula::label_precision/2"}, "the clean fraction of the selection; 1 when empty", [] {
    const std::vector<std::uint8_t> noisy = {0, 1, 0, 1};
    CHECK(label_precision({0, 1, 2}, noisy) == 2.0 / 3.0);
    CHECK(label_precision({}, noisy) == 1.0);
  });
}

struct Pair {
  V l1 = normal<T>(B, 1, 1), l2 = normal<T>(B, 1, 2);
  M g1 = normal<T>(C, B, 3), g2 = normal<T>(C, B, 4);
  M z1 = normal<T>(C, B, 5), z2 = normal<T>(C, B, 6);
};

void co_teaching_rows() {
  const std::string e = "regula::CoTeaching::exchange/5";
  add_row({e}, "loss2 of another length rejected", [=] {
    Pair p;
    const V l2(B + 1);
    rejects({"loss2"}, [&] { (void)CoTeaching<T>().exchange(p.l1, l2, 0.2, p.g1, p.g2); });
  });
  add_row({e}, "grad1 with another column count rejected", [=] {
    Pair p;
    M g1(C, B - 1);
    rejects({"grad1"}, [&] { (void)CoTeaching<T>().exchange(p.l1, p.l2, 0.2, g1, p.g2); });
  });
  add_row({e}, "grad2 with another column count rejected", [=] {
    Pair p;
    M g2(C, B + 1);
    rejects({"grad2"}, [&] { (void)CoTeaching<T>().exchange(p.l1, p.l2, 0.2, p.g1, g2); });
  });
  for (double r : {-0.5, 2.0, nan}) {
    add_row({e}, "forget_rate = " + std::to_string(r) + " rejected", [=] {
      Pair p;
      rejects({"forget_rate"}, [&] { (void)CoTeaching<T>().exchange(p.l1, p.l2, r, p.g1, p.g2); });
    });
  }
  add_row({e}, "grad2 is grad1 itself rejected", [=] {
    Pair p;
    rejects({"grad2"}, [&] { (void)CoTeaching<T>().exchange(p.l1, p.l2, 0.2, p.g1, p.g1); });
  });
  add_row({e}, "loss2 inside grad1 rejected", [=] {
    Pair p;
    Eigen::Map<V> l2(p.g1.data() + 1, B);
    rejects({"loss2"}, [&] { (void)CoTeaching<T>().exchange(p.l1, l2, 0.2, p.g1, p.g2); });
  });
  add_row(
      {e, "regula::CoTeaching::selected_by_first/0", "regula::CoTeaching::selected_by_second/0"},
      "each network keeps the peer's small-loss samples, scaled by 1/k; strided grads agree", [=] {
        Pair p;
        CoTeaching<T> ct;
        M g1 = p.g1, g2 = p.g2;
        const auto r = ct.exchange(p.l1, p.l2, 0.25, g1, g2);
        CHECK(r.kept1 == 6U);
        CHECK(ct.selected_by_first().size() == 6U);
        std::vector<bool> keep1(B, false);
        for (Index i : ct.selected_by_second()) keep1[static_cast<std::size_t>(i)] = true;
        for (Index j = 0; j < B; ++j) {
          if (keep1[static_cast<std::size_t>(j)]) {
            CHECK(close(g1.col(j), M(p.g1.col(j) / 6.0F), 1e-6));
          } else {
            CHECK(g1.col(j).isZero());
          }
        }
        Strided<T> s1(C, B, 3), s2(C, B, 4);
        s1.block(C, B) = p.g1;
        s2.block(C, B) = p.g2;
        CoTeaching<T> other;
        accepts([&] { (void)other.exchange(p.l1, p.l2, 0.25, s1.block(C, B), s2.block(C, B)); });
        CHECK(same(M(s1.block(C, B)), g1));
        CHECK(same(M(s2.block(C, B)), g2));
      });
  const std::string pe = "regula::CoTeachingPlus::exchange/8";
  for (double ie : {-1.0, nan}) {
    add_row({"regula::CoTeachingPlus::CoTeachingPlus/1"},
            "init_epochs = " + std::to_string(ie) + " rejected", [ie] {
              rejects({"init_epochs"}, [&] { CoTeachingPlus<T> c(CoTeachingPlusOptions{ie}); });
            });
  }
  add_row({pe}, "logits2 of another shape rejected", [=] {
    Pair p;
    rejects({"logits2"}, [&] {
      (void)CoTeachingPlus<T>().exchange(p.z1, normal<T>(C + 1, B), p.l1, p.l2, 0.2, 5, p.g1, p.g2);
    });
  });
  add_row({pe}, "logits1 with another column count than the losses rejected", [=] {
    Pair p;
    const M z = normal<T>(C, B - 1);
    rejects({"logits1"},
            [&] { (void)CoTeachingPlus<T>().exchange(z, z, p.l1, p.l2, 0.2, 5, p.g1, p.g2); });
  });
  add_row({pe}, "logits1 with no class rejected", [=] {
    Pair p;
    const M z(0, B);
    rejects({"logits1"},
            [&] { (void)CoTeachingPlus<T>().exchange(z, z, p.l1, p.l2, 0.2, 5, p.g1, p.g2); });
  });
  add_row({pe}, "forget_rate = 2 rejected when the networks agree everywhere", [=] {
    Pair p;
    rejects({"forget_rate"}, [&] {
      (void)CoTeachingPlus<T>().exchange(p.z1, p.z1, p.l1, p.l2, 2.0, 5, p.g1, p.g2);
    });
  });
  add_row({pe}, "epoch = NaN rejected", [=] {
    Pair p;
    rejects({"epoch"}, [&] {
      (void)CoTeachingPlus<T>(CoTeachingPlusOptions{2})
          .exchange(p.z1, p.z2, p.l1, p.l2, 0.2, nan, p.g1, p.g2);
    });
  });
  add_row({pe}, "grad2 is grad1 itself rejected", [=] {
    Pair p;
    rejects({"grad2"}, [&] {
      (void)CoTeachingPlus<T>().exchange(p.z1, p.z2, p.l1, p.l2, 0.2, 5, p.g1, p.g1);
    });
  });
  add_row({pe, "regula::CoTeachingPlus::disagreement/0"},
          "only disagreeing samples train; NaN logits disagree", [=] {
            Pair p;
            M z2 = p.z1;
            z2.col(3).reverseInPlace();
            z2(0, 5) = std::numeric_limits<T>::quiet_NaN();
            CoTeachingPlus<T> ct;
            (void)ct.exchange(p.z1, z2, p.l1, p.l2, 0.0, 5, p.g1, p.g2);
            for (Index j : ct.disagreement()) CHECK((j == 3 || j == 5));
            for (Index j = 0; j < B; ++j) {
              if (j != 3 && j != 5) CHECK(p.g1.col(j).isZero());
            }
          });
}

void jocor_rows() {
  const std::string j = "regula::JoCoR::";
  for (double lam : {-0.1, 1.5, nan}) {
    add_row({j + "JoCoR/1"}, "lambda = " + std::to_string(lam) + " rejected",
            [lam] { rejects({"lambda"}, [&] { JoCoR<T> x(JoCoROptions{lam}); }); });
  }
  struct In {
    M z1 = normal<T>(C, B, 1), z2 = normal<T>(C, B, 2), g1 = M(C, B), g2 = M(C, B);
    Labels y = labels(B, C);
    V l = V(B);
  };
  using F = std::function<void(JoCoR<T>&, In&)>;
  const std::vector<std::pair<std::string, F>> calls = {
      {j + "per_sample/4", [](JoCoR<T>& x, In& in) { x.per_sample(in.z1, in.z2, in.y, in.l); }},
      {j + "step/6",
       [](JoCoR<T>& x, In& in) { (void)x.step(in.z1, in.z2, in.y, 0.25, in.g1, in.g2); }}};
  for (const auto& call_of : calls) {
    const std::string e = call_of.first;
    const F f = call_of.second;
    add_row({e}, "logits2 of another shape rejected", [f] {
      In in;
      in.z2.resize(C + 1, B);
      JoCoR<T> x;
      rejects({"logits2"}, [&] { f(x, in); });
    });
    add_row({e}, "an empty batch rejected naming logits1", [f] {
      In in;
      in.z1.resize(C, 0);
      in.z2.resize(C, 0);
      in.y.resize(0);
      in.l.resize(0);
      in.g1.resize(C, 0);
      in.g2.resize(C, 0);
      JoCoR<T> x;
      rejects({"logits1"}, [&] { f(x, in); });
    });
    add_row({e}, "logits1 with no class rejected", [f] {
      In in;
      in.z1.resize(0, B);
      in.z2.resize(0, B);
      in.g1.resize(0, B);
      in.g2.resize(0, B);
      JoCoR<T> x;
      rejects({"logits1"}, [&] { f(x, in); });
    });
    add_row({e}, "labels of another length rejected", [f] {
      In in;
      in.y = labels(B + 1, C);
      JoCoR<T> x;
      rejects({"labels"}, [&] { f(x, in); });
    });
    add_row({e}, "a label out of range rejected", [f] {
      In in;
      in.y[2] = C;
      JoCoR<T> x;
      rejects({"labels"}, [&] { f(x, in); });
    });
    add_row({e}, "strided logits give the result of contiguous copies", [f] {
      In in, in2;
      JoCoR<T> x, x2;
      f(x, in);
      Strided<T> s1(C, B, 1), s2(C, B, 2);
      s1.block(C, B) = in.z1;
      s2.block(C, B) = in.z2;
      accepts([&] {
        x2.per_sample(s1.block(C, B), s2.block(C, B), in2.y, in2.l);
        (void)x2.step(s1.block(C, B), s2.block(C, B), in2.y, 0.25, in2.g1, in2.g2);
      });
      CHECK(same(x2.losses(), x.losses()));
    });
  }
  add_row({j + "options/0"}, "options() returns the options",
          [] { CHECK(JoCoR<T>(JoCoROptions{0.25}).options().lambda == 0.25); });
  add_row({j + "per_sample/4"}, "losses of another length rejected", [] {
    In in;
    V l(B + 1);
    rejects({"losses"}, [&] { JoCoR<T>().per_sample(in.z1, in.z2, in.y, l); });
  });
  add_row({j + "step/6"}, "grad1 of another shape rejected", [] {
    In in;
    M g1(C, B + 1);
    rejects({"grad1"}, [&] { (void)JoCoR<T>().step(in.z1, in.z2, in.y, 0.2, g1, in.g2); });
  });
  add_row({j + "step/6"}, "grad2 of another shape rejected", [] {
    In in;
    M g2(C - 1, B);
    rejects({"grad2"}, [&] { (void)JoCoR<T>().step(in.z1, in.z2, in.y, 0.2, in.g1, g2); });
  });
  add_row({j + "step/6"}, "forget_rate = NaN rejected", [] {
    In in;
    rejects({"forget_rate"}, [&] { (void)JoCoR<T>().step(in.z1, in.z2, in.y, nan, in.g1, in.g2); });
  });
  add_row({j + "step/6"}, "grad2 is grad1 itself rejected", [] {
    In in;
    rejects({"grad2"}, [&] { (void)JoCoR<T>().step(in.z1, in.z2, in.y, 0.2, in.g1, in.g1); });
  });
  add_row({j + "step/6", j + "losses/0", j + "selected/0"},
          "the selection is the k smallest joint losses", [] {
            In in;
            JoCoR<T> x;
            const auto r = x.step(in.z1, in.z2, in.y, 0.25, in.g1, in.g2);
            CHECK(r.kept == 6U);
            SmallLossSelector<T> sel;
            CHECK(sel.select(x.losses(), 6) == x.selected());
            for (Index i = 0; i < B; ++i) {
              const bool kept =
                  std::find(x.selected().begin(), x.selected().end(), i) != x.selected().end();
              CHECK(kept != in.g1.col(i).isZero());
            }
          });
  add_row(
      {j + "per_sample/4"}, "identical samples get identical losses wherever they sit (double)",
      [] {
        const Matrix<double> one = normal<double>(5, 1, 11, 3.0),
                             two = normal<double>(5, 1, 12, 3.0);
        Matrix<double> z1(5, 17), z2(5, 17);
        for (Index i = 0; i < 17; ++i) {
          z1.col(i) = one;
          z2.col(i) = two;
        }
        Vector<double> l(17);
        JoCoR<double>().per_sample(z1, z2, Labels::Constant(17, 3), l);
        for (Index i = 1; i < 17; ++i) CHECK(l[i] == l[0]);
      },
      "[known:11]");
  add_row(
      {j + "gradients/5"}, "a selected index out of range rejected",
      [] {
        In in;
        JoCoR<T> x;
        x.per_sample(in.z1, in.z2, in.y, in.l);
        rejects({"selected"}, [&] { (void)x.gradients({0, B}, 2, in.y, in.g1, in.g2); });
      },
      "[known:3]");
  add_row(
      {j + "gradients/5"}, "a call before per_sample rejected",
      [] {
        In in;
        JoCoR<T> x;
        rejects({}, [&] { (void)x.gradients({0, 1}, 2, in.y, in.g1, in.g2); });
      },
      "[known:3]");
  add_row(
      {j + "gradients/5"}, "gradients of another shape than the per_sample call rejected",
      [] {
        In in;
        JoCoR<T> x;
        x.per_sample(in.z1, in.z2, in.y, in.l);
        M g1(C, B - 2);
        rejects({"grad1"}, [&] { (void)x.gradients({0, 1}, 2, in.y, g1, in.g2); });
      },
      "[known:3]");
  add_row(
      {j + "gradients/5"}, "labels out of range rejected",
      [] {
        In in;
        JoCoR<T> x;
        x.per_sample(in.z1, in.z2, in.y, in.l);
        Labels bad = in.y;
        bad[0] = 1000;
        rejects({"labels"}, [&] { (void)x.gradients({0, 1}, 2, bad, in.g1, in.g2); });
      },
      "[known:3]");
  add_row({j + "gradients/5"}, "after per_sample: the step's gradients for the step's selection",
          [] {
            In in, ref;
            JoCoR<T> x, y;
            (void)y.step(ref.z1, ref.z2, ref.y, 0.25, ref.g1, ref.g2);
            x.per_sample(in.z1, in.z2, in.y, in.l);
            double sum = 0;
            accepts([&] { sum = x.gradients(y.selected(), 6, in.y, in.g1, in.g2); });
            CHECK(close(in.g1, ref.g1, 1e-6));
            CHECK(close(in.g2, ref.g2, 1e-6));
            CHECK(sum > 0);
          });
}

void label_noise_rows() {
  const std::string e = "regula::inject_label_noise/4";
  const std::vector<std::int64_t> clean = {0, 1, 2, 3, 0, 1, 2, 3};
  add_row({e}, "num_classes = 1 rejected", [=] {
    rejects({"num_classes"}, [&] { (void)inject_label_noise({0, 0}, 1, {}); });
  });
  for (double r : {-0.1, 1.5, nan}) {
    add_row({e}, "rate = " + std::to_string(r) + " rejected", [=] {
      LabelNoiseOptions o;
      o.rate = r;
      rejects({"rate"}, [&] { (void)inject_label_noise(clean, 4, o); });
    });
  }
  add_row({e}, "a clean label out of range rejected naming clean", [=] {
    rejects({"clean"}, [&] { (void)inject_label_noise({0, 4}, 4, {}); });
    rejects({"clean"}, [&] { (void)inject_label_noise({-1}, 4, {}); });
  });
  LabelNoiseOptions tr;
  tr.kind = LabelNoise::transition;
  add_row({e}, "a transition matrix of another shape rejected", [=] {
    rejects({"transition"},
            [&] { (void)inject_label_noise(clean, 4, tr, Matrix<double>::Identity(3, 3)); });
  });
  add_row({e}, "a negative, NaN or non-stochastic transition row rejected", [=] {
    Matrix<double> t = Matrix<double>::Identity(4, 4);
    t(1, 1) = 2;
    t(1, 2) = -1;
    rejects({"transition"}, [&] { (void)inject_label_noise(clean, 4, tr, t); });
    t = Matrix<double>::Identity(4, 4);
    t(2, 2) = nan;
    rejects({"transition"}, [&] { (void)inject_label_noise(clean, 4, tr, t); });
    t = Matrix<double>::Identity(4, 4) * 0.5;
    rejects({"transition"}, [&] { (void)inject_label_noise(clean, 4, tr, t); });
  });
  add_row({e}, "noise is reproducible, stays in range, and pair noise is y + 1", [=] {
    std::vector<std::int64_t> many(4000);
    for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<std::int64_t>(i % 4);
    LabelNoiseOptions o;
    o.rate = 0.3;
    o.seed = 9;
    const auto a = inject_label_noise(many, 4, o), b = inject_label_noise(many, 4, o);
    CHECK(a.labels == b.labels);
    for (std::size_t i = 0; i < many.size(); ++i) {
      CHECK((a.labels[i] >= 0 && a.labels[i] < 4));
      CHECK((a.is_noisy[i] != 0) == (a.labels[i] != many[i]));
    }
    CHECK(std::abs(a.realized_rate - 0.3) < 0.05);
    o.kind = LabelNoise::pair;
    const auto p = inject_label_noise(many, 4, o);
    for (std::size_t i = 0; i < many.size(); ++i)
      CHECK((p.labels[i] == many[i] || p.labels[i] == (many[i] + 1) % 4));
    CHECK(inject_label_noise({}, 4, o).realized_rate == 0.0);
  });
}

void register_rows() {
  forget_rate_rows();
  small_loss_rows();
  co_teaching_rows();
  jocor_rows();
  label_noise_rows();
}

const Rows rows(register_rows);

}  // namespace
}  // namespace regula::sweep
