// Sweep rows of the dropout layers (layers/).
#include "sweep/sweep.hpp"
#include <regula/layers/alpha_dropout.hpp>
#include <regula/layers/channel_dropout.hpp>
#include <regula/layers/drop_connect.hpp>
#include <regula/layers/drop_path.hpp>
#include <regula/layers/dropout.hpp>
#include <regula/layers/feature_alpha_dropout.hpp>
#include <regula/layers/gaussian_dropout.hpp>
#include <regula/layers/multi_sample_dropout.hpp>
#include <regula/layers/nested_dropout.hpp>
#include <regula/losses/cross_entropy.hpp>

namespace regula::sweep {
namespace {

using T = float;
using M = Matrix<T>;

/// What the generic rows of a layer with forward(x, y, stream[, ctx]) / backward(dy, ctx, dx)
/// need to know about it.
template <class L>
struct Spec {
  std::string cls;          // "regula::Dropout"
  std::function<L()> make;  // a layer in training mode
  Index rows = 6;           // a valid feature count
  std::string in = "x", out = "y", dout = "dx";
  std::string known_forward_alias, known_backward_alias;  // tags of issue-20 items, or ""
  bool nan_everywhere = true;               // NaN in x gives NaN at every output position
  std::string forward_ctx = "::forward/4";  // the overload that takes a caller's context
  Spec(std::string c, std::function<L()> m) : cls(std::move(c)), make(std::move(m)) {}
};

template <class L>
void elementwise_rows(const Spec<L>& s) {
  const std::string f3 = s.cls + "::forward/3", f4 = s.cls + s.forward_ctx,
                    b3 = s.cls + "::backward/3";
  const Index R = s.rows, C = 5;
  const auto make = s.make;
  const std::string in = s.in, out = s.out, dout = s.dout;

  add_row({f3}, out + " of another shape", [=] {
    const L l = make();
    const M x = normal<T>(R, C);
    M y(R, C + 1);
    Stream st(1);
    rejects({out.c_str()}, [&] { (void)l.forward(x, y, st); });
  });
  add_row(
      {f3}, out + " overlaps " + in + " partly by one element",
      [=] {
        const L l = make();
        Overlap<T> o(R, C, 1);
        Stream st(1);
        rejects({out.c_str()}, [&] { (void)l.forward(o.a, o.b, st); });
      },
      s.known_forward_alias);
  add_row(
      {f3}, out + " overlaps " + in + " partly by one column",
      [=] {
        const L l = make();
        Overlap<T> o(R, C, R);
        Stream st(1);
        rejects({out.c_str()}, [&] { (void)l.forward(o.b, o.a, st); });
      },
      s.known_forward_alias);
  add_row({f3}, out + " is " + in + " itself: in place equals out of place", [=] {
    const L l = make();
    M x = normal<T>(R, C);
    M y(R, C);
    Stream a(9), b(9);
    (void)l.forward(x, y, a);
    accepts([&] { (void)l.forward(x, x, b); });
    CHECK(same(x, y));
    CHECK(a == b);
  });
  add_row({f4}, "strided blocks give the result of contiguous copies", [=] {
    const L l = make();
    Strided<T> xs(R, C, 3), ys(R, C, 4);
    const M x = xs.block(R, C);
    M y(R, C);
    Stream a(5), b(5);
    typename L::Context ca, cb;
    l.forward(x, y, a, ca);
    accepts([&] { l.forward(xs.block(R, C), ys.block(R, C), b, cb); });
    CHECK(same(M(ys.block(R, C)), y));
    // backward through strided blocks as well
    Strided<T> dys(R, C, 7), dxs(R, C, 8);
    const M dy = dys.block(R, C);
    M dx(R, C);
    l.backward(dy, ca, dx);
    accepts([&] { l.backward(dys.block(R, C), cb, dxs.block(R, C)); });
    CHECK(same(M(dxs.block(R, C)), dx));
  });
  add_row({f4}, "an empty batch is a no-op", [=] {
    const L l = make();
    const M x(R, 0);
    M y(R, 0);
    Stream st(1);
    typename L::Context ctx;
    accepts([&] { l.forward(x, y, st, ctx); });
    M dx(R, 0);
    accepts([&] { l.backward(x, ctx, dx); });
    CHECK(y.size() == 0);
  });
  add_row({f3}, "NaN and inf in " + in + " propagate as NaN", [=] {
    const L l = make();
    M x = M::Constant(R, C, std::numeric_limits<T>::quiet_NaN());
    x(0, 0) = std::numeric_limits<T>::infinity();
    M y(R, C);
    Stream st(3);
    (void)l.forward(x, y, st);
    if (s.nan_everywhere) {
      for (Index j = 1; j < C; ++j) {
        for (Index i = 0; i < R; ++i) CHECK(std::isnan(y(i, j)));
      }
    } else {
      CHECK(!(y.array() == y.array()).all());  // at least the kept NaNs stay NaN
    }
  });
  add_row({b3}, "dy of another shape than the forward input (a context from another shape)", [=] {
    const L l = make();
    const M x = normal<T>(R, C);
    M y(R, C);
    Stream st(1);
    const auto ctx = l.forward(x, y, st);
    const M dy = normal<T>(R, C - 1);
    M dx(R, C - 1);
    rejects({"dy"}, [&] { l.backward(dy, ctx, dx); });
  });
  add_row({b3}, dout + " of another shape than dy", [=] {
    const L l = make();
    const M x = normal<T>(R, C);
    M y(R, C);
    Stream st(1);
    const auto ctx = l.forward(x, y, st);
    M dx(R, C + 1);
    rejects({dout.c_str()}, [&] { l.backward(x, ctx, dx); });
  });
  add_row(
      {b3}, dout + " overlaps dy partly",
      [=] {
        const L l = make();
        const M x = normal<T>(R, C);
        M y(R, C);
        Stream st(1);
        const auto ctx = l.forward(x, y, st);
        Overlap<T> o(R, C, 2);
        rejects({dout.c_str()}, [&] { l.backward(o.a, ctx, o.b); });
      },
      s.known_backward_alias);
  add_row({b3}, dout + " is dy itself: in place equals out of place", [=] {
    const L l = make();
    const M x = normal<T>(R, C);
    M y(R, C);
    Stream st(1);
    const auto ctx = l.forward(x, y, st);
    M dy = normal<T>(R, C, 4);
    M dx(R, C);
    l.backward(dy, ctx, dx);
    accepts([&] { l.backward(dy, ctx, dy); });
    CHECK(same(dy, dx));
  });
  add_row({b3}, "a context from an eval forward gives the identity in training", [=] {
    L l = make();
    l.eval();
    const M x = normal<T>(R, C);
    M y(R, C);
    Stream st(1);
    const auto ctx = l.forward(x, y, st);
    l.train();
    const M dy = normal<T>(R, C, 4);
    M dx(R, C);
    accepts([&] { l.backward(dy, ctx, dx); });
    CHECK(same(dx, dy));
  });
}

template <class L>
void train_eval_rows(const std::string& cls, std::function<L()> make) {
  // train/eval/is_training are TrainingFlag's, the base of every layer: one row per layer.
  add_row({"regula::TrainingFlag::train/1", "regula::TrainingFlag::eval/0",
           "regula::TrainingFlag::is_training/0"},
          "train and eval switch the mode of " + cls, [=] {
            L l = make();
            CHECK(l.is_training());
            l.eval();
            CHECK_FALSE(l.is_training());
            l.train();
            CHECK(l.is_training());
            l.train(false);
            CHECK_FALSE(l.is_training());
          });
}

void random_context_rows() {
  add_row({"regula::RandomContext::begin/5"},
          "begin records the shape, stream position, threshold and mode", [] {
            RandomContext ctx;
            const Stream s(7, 3, 11);
            ctx.begin(4, 5, s, 1234U, DrawMode::random);
            CHECK(ctx.rows == 4);
            CHECK(ctx.cols == 5);
            CHECK(ctx.stream.offset() == s.offset());
            CHECK(ctx.stream.subsequence() == s.subsequence());
            CHECK(ctx.keep_threshold == 1234U);
            CHECK(ctx.mode == RandomContext::Mode::random);
            CHECK(ctx.draw().keep_threshold == 1234U);
          });
}

void dropout_rows() {
  using D = Dropout<T>;
  const std::string c = "regula::Dropout";
  for (double p : {-0.1, 1.5, nan, inf}) {
    add_row({c + "::Dropout/1"}, "p = " + std::to_string(p) + " rejected",
            [p] { rejects({"p"}, [&] { D d(DropoutOptions{p}); }); });
  }
  add_row({c + "::Dropout/1"}, "p = 1e-300 is the identity and p = 1 - 1e-17 is p = 1", [] {
    const D a(DropoutOptions{1e-300});
    CHECK(a.effective_p() == 0.0);
    const D b(DropoutOptions{1.0 - 1e-17});
    CHECK(b.effective_p() == 1.0);
  });
  Spec<D> spec{c, [] { return D(DropoutOptions{0.4}); }};
  elementwise_rows(spec);
  add_row({c + "::forward/4", c + "::backward/3"},
          "a stored mask gives the gradient of a recomputed one", [] {
            const D a(DropoutOptions{0.4, true}), b(DropoutOptions{0.4, false});
            const M x = normal<T>(7, 9);
            M ya(7, 9), yb(7, 9), da(7, 9), db(7, 9);
            Stream sa(3), sb(3);
            DropoutContext ca, cb;
            a.forward(x, ya, sa, ca);
            b.forward(x, yb, sb, cb);
            a.backward(x, ca, da);
            b.backward(x, cb, db);
            CHECK(same(ya, yb));
            CHECK(same(da, db));
          });
  train_eval_rows<D>(c, [] { return D(DropoutOptions{0.4}); });
  add_row({c + "::options/0", c + "::effective_p/0", c + "::scale/0", c + "::blocks_used/1"},
          "accessors report the quantized rate", [] {
            D d(DropoutOptions{0.3});
            CHECK(d.options().p == 0.3);
            CHECK(std::abs(d.effective_p() - 0.3) <= 0x1p-17);
            CHECK(d.scale() == static_cast<T>(1.0 / (1.0 - d.effective_p())));
            CHECK(d.blocks_used(129) == 32);
            d.eval();
            CHECK(d.blocks_used(129) == 0);
          });
  add_row({c + "::begin/4", c + "::forward_columns/5"}, "blocks of columns equal the forward call",
          [] {
            const D d(DropoutOptions{0.5});
            const M x = normal<T>(5, 8);
            M y(5, 8), z(5, 8);
            Stream a(4), b(4);
            (void)d.forward(x, y, a);
            DropoutContext ctx;
            d.begin(5, 8, b, ctx);
            CHECK(a == b);
            accepts([&] {
              d.forward_columns(ctx, 3, x.middleCols(3, 5), z.middleCols(3, 5));
              d.forward_columns(ctx, 0, x.leftCols(3), z.leftCols(3));
            });
            CHECK(same(y, z));
          });
  add_row({c + "::forward_columns/5"}, "col0 = -1 rejected", [] {
    const D d(DropoutOptions{0.5});
    DropoutContext ctx;
    Stream st(1);
    d.begin(5, 8, st, ctx);
    const M x = normal<T>(5, 2);
    M y(5, 2);
    rejects({"col0"}, [&] { d.forward_columns(ctx, -1, x, y); });
  });
  add_row({c + "::forward_columns/5"}, "columns past the call rejected", [] {
    const D d(DropoutOptions{0.5});
    DropoutContext ctx;
    Stream st(1);
    d.begin(5, 8, st, ctx);
    const M x = normal<T>(5, 2);
    M y(5, 2);
    rejects({"x"}, [&] { d.forward_columns(ctx, 7, x, y); });
  });
  add_row({c + "::forward_columns/5"}, "y overlaps x partly", [] {
    const D d(DropoutOptions{0.5});
    DropoutContext ctx;
    Stream st(1);
    d.begin(5, 8, st, ctx);
    Overlap<T> o(5, 2, 1);
    rejects({"y"}, [&] { d.forward_columns(ctx, 0, o.a, o.b); });
  });
  add_row({"regula::DropoutContext::mode/0", "regula::DropoutContext::stream/0",
           "regula::DropoutContext::rows/0", "regula::DropoutContext::cols/0",
           "regula::DropoutContext::keep_threshold/0", "regula::DropoutContext::has_mask/0",
           "regula::DropoutContext::mask/0", "regula::DropoutContext::kept/2",
           "regula::DropoutContext::draw/0"},
          "the context records the call and kept() matches the output", [] {
            const D d(DropoutOptions{0.5, true});
            const M x = M::Constant(9, 30, 1.0F);
            M y(9, 30);
            Stream st(8);
            const Stream start = st;
            const auto ctx = d.forward(x, y, st);
            CHECK(ctx.mode() == DropoutContext::Mode::random);
            CHECK(ctx.stream() == start);
            CHECK(ctx.rows() == 9);
            CHECK(ctx.cols() == 30);
            CHECK(ctx.keep_threshold() == 32768U);
            CHECK(ctx.has_mask());
            CHECK(ctx.mask().size() == 6);
            CHECK(ctx.draw().first_block == start.offset());
            CHECK(ctx.draw().keep_threshold == 32768U);
            for (Index j = 0; j < 30; ++j) {
              for (Index i = 0; i < 9; ++i) CHECK(ctx.kept(i, j) == (y(i, j) != 0.0F));
            }
          });
}

void structured_rows() {
  {
    using G = GaussianDropout<T>;
    const std::string c = "regula::GaussianDropout";
    for (double p : {-0.5, 1.0, nan}) {
      add_row({c + "::GaussianDropout/1"}, "p = " + std::to_string(p) + " rejected",
              [p] { rejects({"p"}, [&] { G g(GaussianDropoutOptions{p}); }); });
    }
    Spec<G> spec{c, [] { return G(GaussianDropoutOptions{0.3}); }};
    spec.known_forward_alias = spec.known_backward_alias = "[known:5]";
    elementwise_rows(spec);
    train_eval_rows<G>(c, [] { return G(GaussianDropoutOptions{0.3}); });
    add_row({c + "::options/0", c + "::stddev/0"}, "accessors", [] {
      const G g(GaussianDropoutOptions{0.5});
      CHECK(g.options().p == 0.5);
      CHECK(g.stddev() == 1.0);
    });
  }
  {
    using A = AlphaDropout<T>;
    const std::string c = "regula::AlphaDropout";
    for (double p : {-0.5, 1.5, nan}) {
      add_row({c + "::AlphaDropout/1"}, "p = " + std::to_string(p) + " rejected",
              [p] { rejects({"p"}, [&] { A a(AlphaDropoutOptions{p}); }); });
    }
    Spec<A> spec{c, [] { return A(AlphaDropoutOptions{0.3}); }};
    spec.known_forward_alias = "[known:5]";
    spec.nan_everywhere = false;  // a dropped element is a·α′ + b whatever x was, as in PyTorch
    elementwise_rows(spec);
    train_eval_rows<A>(c, [] { return A(AlphaDropoutOptions{0.3}); });
    add_row({c + "::options/0", c + "::effective_p/0", c + "::a/0", c + "::b/0",
             c + "::dropped_value/0"},
            "accessors: a dropped element is a*alpha' + b", [] {
              const A a(AlphaDropoutOptions{0.25});
              CHECK(a.options().p == 0.25);
              CHECK(a.effective_p() == 0.25);
              CHECK(std::abs(a.dropped_value() - (a.a() * static_cast<T>(A::alpha_prime) + a.b())) <
                    1e-6F);
            });
  }
  {
    using Ch = ChannelDropout<T>;
    const std::string c = "regula::ChannelDropout";
    for (double p : {-0.5, 1.5, nan}) {
      add_row({c + "::ChannelDropout/1"}, "p = " + std::to_string(p) + " rejected", [p] {
        rejects({"p"}, [&] { Ch a(ChannelDropoutOptions{p, 2}); });
      });
    }
    add_row({c + "::ChannelDropout/1"}, "channels = 0 rejected", [] {
      rejects({"channels"}, [&] { Ch a(ChannelDropoutOptions{0.5, 0}); });
    });
    add_row({c + "::forward/3"}, "channels not dividing the feature count rejected", [] {
      const Ch l(ChannelDropoutOptions{0.5, 4});
      const M x = normal<T>(6, 3);
      M y(6, 3);
      Stream st(1);
      rejects({"channels"}, [&] { (void)l.forward(x, y, st); });
    });
    Spec<Ch> spec{c, [] { return Ch(ChannelDropoutOptions{0.5, 3}); }};
    spec.known_forward_alias = spec.known_backward_alias = "[known:5]";
    elementwise_rows(spec);
    train_eval_rows<Ch>(c, [] { return Ch(ChannelDropoutOptions{0.5, 3}); });
    add_row({c + "::options/0", c + "::scale/0", c + "::kept/3"}, "kept() matches the output", [] {
      const Ch l(ChannelDropoutOptions{0.5, 3, ChannelLayout::channel_last});
      CHECK(l.options().channels == 3);
      CHECK(l.scale() == 2.0F);
      const M x = M::Constant(6, 7, 1.0F);
      M y(6, 7);
      Stream st(2);
      const auto ctx = l.forward(x, y, st);
      for (Index n = 0; n < 7; ++n) {
        for (Index ch = 0; ch < 3; ++ch) CHECK(l.kept(ctx, ch, n) == (y(3 + ch, n) != 0.0F));
      }
    });
  }
  {
    using F = FeatureAlphaDropout<T>;
    const std::string c = "regula::FeatureAlphaDropout";
    for (double p : {-0.5, 1.5, nan}) {
      add_row({c + "::FeatureAlphaDropout/1"}, "p = " + std::to_string(p) + " rejected", [p] {
        rejects({"p"}, [&] { F a(FeatureAlphaDropoutOptions{p, 2}); });
      });
    }
    add_row({c + "::FeatureAlphaDropout/1"}, "channels = 0 rejected", [] {
      rejects({"channels"}, [&] { F a(FeatureAlphaDropoutOptions{0.5, 0}); });
    });
    add_row({c + "::forward/3"}, "channels not dividing the feature count rejected", [] {
      const F l(FeatureAlphaDropoutOptions{0.5, 4});
      const M x = normal<T>(6, 3);
      M y(6, 3);
      Stream st(1);
      rejects({"channels"}, [&] { (void)l.forward(x, y, st); });
      CHECK(st.offset() == 0);
    });
    Spec<F> spec{c, [] { return F(FeatureAlphaDropoutOptions{0.3, 3}); }};
    spec.nan_everywhere = false;  // a dropped channel is a·α′ + b whatever x was, as in PyTorch
    elementwise_rows(spec);
    train_eval_rows<F>(c, [] { return F(FeatureAlphaDropoutOptions{0.3, 3}); });
    add_row({c + "::options/0", c + "::effective_p/0", c + "::a/0", c + "::b/0",
             c + "::dropped_value/0", c + "::kept/3"},
            "accessors: kept() matches the output, a dropped channel is a*alpha' + b", [] {
              const F l(FeatureAlphaDropoutOptions{0.25, 3, ChannelLayout::channel_last});
              CHECK(l.options().channels == 3);
              CHECK(l.effective_p() == 0.25);
              const AlphaDropout<T> ref(AlphaDropoutOptions{0.25});
              CHECK(l.a() == ref.a());
              CHECK(l.b() == ref.b());
              CHECK(l.dropped_value() == ref.dropped_value());
              const M x = M::Constant(6, 7, 1.0F);
              M y(6, 7);
              Stream st(2);
              const auto ctx = l.forward(x, y, st);
              for (Index n = 0; n < 7; ++n) {
                for (Index ch = 0; ch < 3; ++ch)
                  CHECK(l.kept(ctx, ch, n) == (y(3 + ch, n) != l.dropped_value()));
              }
            });
  }
  {
    using P = DropPath<T>;
    const std::string c = "regula::DropPath";
    for (double p : {-0.5, 1.5, nan}) {
      add_row({c + "::DropPath/1"}, "p = " + std::to_string(p) + " rejected",
              [p] { rejects({"p"}, [&] { P a(DropPathOptions{p}); }); });
    }
    Spec<P> spec{c, [] { return P(DropPathOptions{0.5}); }};
    spec.in = "branch";
    spec.dout = "dbranch";
    spec.known_forward_alias = spec.known_backward_alias = "[known:5]";
    elementwise_rows(spec);
    train_eval_rows<P>(c, [] { return P(DropPathOptions{0.5}); });
    const std::string fr = c + "::forward_residual/5";
    add_row({fr}, "branch of another shape than x", [] {
      const P l(DropPathOptions{0.5});
      const M x = normal<T>(4, 5), br = normal<T>(4, 6);
      M out(4, 5);
      Stream st(1);
      RandomContext ctx;
      rejects({"branch"}, [&] { l.forward_residual(x, br, out, st, ctx); });
    });
    add_row({fr}, "out of another shape than x", [] {
      const P l(DropPathOptions{0.5});
      const M x = normal<T>(4, 5), br = normal<T>(4, 5);
      M out(5, 5);
      Stream st(1);
      RandomContext ctx;
      rejects({"out"}, [&] { l.forward_residual(x, br, out, st, ctx); });
    });
    add_row(
        {fr}, "out overlaps x partly",
        [] {
          const P l(DropPathOptions{0.5});
          Overlap<T> o(4, 5, 4);
          const M br = normal<T>(4, 5);
          Stream st(1);
          RandomContext ctx;
          rejects({"out"}, [&] { l.forward_residual(o.a, br, o.b, st, ctx); });
        },
        "[known:5]");
    add_row(
        {fr}, "out overlaps branch partly",
        [] {
          const P l(DropPathOptions{0.5});
          Overlap<T> o(4, 5, 1);
          const M x = normal<T>(4, 5);
          Stream st(1);
          RandomContext ctx;
          rejects({"out"}, [&] { l.forward_residual(x, o.a, o.b, st, ctx); });
        },
        "[known:5]");
    add_row({fr}, "out is x or branch itself: in place equals out of place", [] {
      const P l(DropPathOptions{0.5});
      const M x = normal<T>(4, 9), br = normal<T>(4, 9, 3);
      M ref(4, 9), a = x, b = br;
      Stream s0(2), s1(2), s2(2);
      RandomContext c0, c1, c2;
      l.forward_residual(x, br, ref, s0, c0);
      accepts([&] {
        l.forward_residual(a, br, a, s1, c1);
        l.forward_residual(x, b, b, s2, c2);
      });
      CHECK(same(a, ref));
      CHECK(same(b, ref));
    });
    add_row({c + "::options/0", c + "::scale/0", c + "::kept/2"}, "kept() matches the output", [] {
      const P l(DropPathOptions{0.5});
      CHECK(l.options().p == 0.5);
      CHECK(l.scale() == 2.0F);
      const M x = M::Constant(3, 20, 1.0F);
      M y(3, 20);
      Stream st(2);
      const auto ctx = l.forward(x, y, st);
      for (Index n = 0; n < 20; ++n) CHECK(l.kept(ctx, n) == (y(0, n) != 0.0F));
    });
  }
  add_row({"regula::RandomContext::draw/0"}, "draw() is the recorded stream position", [] {
    RandomContext ctx;
    ctx.stream = Stream(5, 6, 7);
    ctx.keep_threshold = 99;
    const auto d = ctx.draw();
    CHECK(d.subsequence == 6U);
    CHECK(d.first_block == 7U);
    CHECK(d.keep_threshold == 99U);
  });
}

void drop_connect_rows() {
  using DC = DropConnect<T>;
  const std::string c = "regula::DropConnect";
  for (double p : {-0.5, 1.5, nan}) {
    add_row({c + "::DropConnect/1"}, "p = " + std::to_string(p) + " rejected",
            [p] { rejects({"p"}, [&] { DC a(DropConnectOptions{p}); }); });
  }
  train_eval_rows<DC>(c, [] { return DC(DropConnectOptions{0.5}); });
  add_row({c + "::options/0", c + "::scale/0"}, "accessors", [] {
    const DC l(DropConnectOptions{0.5});
    CHECK(l.options().p == 0.5);
    CHECK(l.scale() == 2.0F);
  });
  const std::string f = c + "::forward/6", b = c + "::backward/7";
  struct Case {
    M x = normal<T>(4, 4, 1), W = normal<T>(4, 4, 2);
    Vector<T> bias = normal<T>(4, 1, 3);
    M y = M(4, 4);
    Stream st{1};
    DropConnectContext<T> ctx;
  };
  add_row({f}, "W with another column count than x's rows", [] {
    Case k;
    const M W = normal<T>(4, 3);
    rejects({"W"}, [&] { DC().forward(k.x, W, k.bias, k.y, k.st, k.ctx); });
  });
  add_row({f}, "b of another size than W's rows", [] {
    Case k;
    const Vector<T> bias(3);
    rejects({"b"}, [&] { DC().forward(k.x, k.W, bias, k.y, k.st, k.ctx); });
  });
  add_row({f}, "y of another shape", [] {
    Case k;
    M y(4, 5);
    rejects({"y"}, [&] { DC().forward(k.x, k.W, k.bias, y, k.st, k.ctx); });
  });
  add_row(
      {f}, "y is x itself (not documented as in place)",
      [] {
        Case k;
        rejects({"y"}, [&] { DC().forward(k.x, k.W, k.bias, k.x, k.st, k.ctx); });
      },
      "[known:6]");
  add_row(
      {f}, "y overlaps W partly",
      [] {
        Case k;
        Overlap<T> o(4, 4, 2);
        rejects({"y"}, [&] { DC().forward(k.x, o.a, k.bias, o.b, k.st, k.ctx); });
      },
      "[known:6]");
  add_row({f, b}, "strided blocks give the result of contiguous copies", [] {
    Case k;
    Strided<T> xs(4, 3, 1), ws(5, 4, 2), ys(5, 3, 3), dys(5, 3, 4), dxs(4, 3, 5), dws(5, 4, 6);
    const M x = xs.block(4, 3), W = ws.block(5, 4), dy = dys.block(5, 3);
    const Vector<T> bias = normal<T>(5, 1);
    M y(5, 3), dx(4, 3), dW(5, 4);
    Vector<T> db(5), db2(5);
    Stream s1(3), s2(3);
    DropConnectContext<T> c1, c2;
    const DC l(DropConnectOptions{0.5});
    l.forward(x, W, bias, y, s1, c1);
    l.backward(x, W, dy, c1, dx, dW, db);
    accepts([&] {
      l.forward(xs.block(4, 3), ws.block(5, 4), bias, ys.block(5, 3), s2, c2);
      l.backward(xs.block(4, 3), ws.block(5, 4), dys.block(5, 3), c2, dxs.block(4, 3),
                 dws.block(5, 4), db2);
    });
    CHECK(close(M(ys.block(5, 3)), y, 1e-6));
    CHECK(close(M(dxs.block(4, 3)), dx, 1e-6));
    CHECK(close(M(dws.block(5, 4)), dW, 1e-6));
  });
  for (const char* which : {"W", "x", "dy", "dx", "dW", "db"}) {
    add_row({b}, std::string(which) + " of another shape than the forward call's", [which] {
      Case k;
      const DC l;
      l.forward(k.x, k.W, k.bias, k.y, k.st, k.ctx);
      M W = k.W, x = k.x, dy = normal<T>(4, 4), dx(4, 4), dW(4, 4);
      Vector<T> db(4);
      const std::string w = which;
      if (w == "W") W.resize(4, 3);
      if (w == "x") x.resize(4, 5);
      if (w == "dy") dy.resize(3, 4);
      if (w == "dx") dx.resize(4, 2);
      if (w == "dW") dW.resize(2, 4);
      if (w == "db") db.resize(5);
      rejects({which}, [&] { l.backward(x, W, dy, k.ctx, dx, dW, db); });
    });
  }
  add_row(
      {b}, "dW is W itself",
      [] {
        Case k;
        const DC l;
        l.forward(k.x, k.W, k.bias, k.y, k.st, k.ctx);
        M dy = normal<T>(4, 4), dx(4, 4);
        Vector<T> db(4);
        rejects({"dW"}, [&] { l.backward(k.x, k.W, dy, k.ctx, dx, k.W, db); });
      },
      "[known:6]");
  add_row(
      {b}, "dx overlaps dy partly",
      [] {
        Case k;
        const DC l;
        l.forward(k.x, k.W, k.bias, k.y, k.st, k.ctx);
        Overlap<T> o(4, 4, 1);
        M dW(4, 4);
        Vector<T> db(4);
        rejects({"dx"}, [&] { l.backward(k.x, k.W, o.a, k.ctx, o.b, dW, db); });
      },
      "[known:6]");
  add_row({b}, "a context from an eval forward gives the mean network's gradients", [] {
    Case k;
    DC l;
    l.eval();
    l.forward(k.x, k.W, k.bias, k.y, k.st, k.ctx);
    l.train();
    const M dy = normal<T>(4, 4, 9);
    M dx(4, 4), dW(4, 4);
    Vector<T> db(4);
    accepts([&] { l.backward(k.x, k.W, dy, k.ctx, dx, dW, db); });
    CHECK(close(dx, M(k.W.transpose() * dy), 1e-5));
    CHECK(close(dW, M(dy * k.x.transpose()), 1e-5));
  });
}

using MSD = MultiSampleDropout<T, PerSampleCrossEntropy<>>;

struct MsdCase {
  Index K, B, C;
  M h, W;
  Vector<T> b;
  Labels y;
  Stream st{3};
  MultiSampleDropoutContext<T> ctx;
  MsdCase(Index k, Index bb, Index c)
      : K(k),
        B(bb),
        C(c),
        h(normal<T>(k, bb, 1)),
        W(normal<T>(c, k, 2, 0.3)),
        b(normal<T>(c, 1, 3)),
        y(labels(bb, c)) {}
};

void multi_sample_rows() {
  const std::string c = "regula::MultiSampleDropout";
  const std::string ctor = c + "::MultiSampleDropout/2", f = c + "::forward/6",
                    b = c + "::backward/5";
  add_row({ctor}, "samples = 0 rejected", [] {
    rejects({"samples"}, [] { MSD m(MultiSampleDropoutOptions{0, 0.5}); });
  });
  for (double p : {-0.1, 1.5, nan}) {
    add_row({ctor}, "p = " + std::to_string(p) + " rejected", [p] {
      rejects({"p"}, [&] { MSD m(MultiSampleDropoutOptions{2, p}); });
    });
  }
  add_row({ctor}, "rates of another size than samples rejected", [] {
    rejects({"rates"}, [] { MSD m(MultiSampleDropoutOptions{2, 0.5, {0.1, 0.2, 0.3}}); });
  });
  add_row({ctor}, "a NaN rate rejected", [] {
    rejects({"rates"}, [] { MSD m(MultiSampleDropoutOptions{2, 0.5, {0.1, nan}}); });
  });
  train_eval_rows<MSD>(c, [] { return MSD(MultiSampleDropoutOptions{2, 0.5}); });
  add_row({c + "::options/0", c + "::samples/0", c + "::loss/0", c + "::dropout/1"}, "accessors",
          [] {
            const MSD m(MultiSampleDropoutOptions{3, 0.5, {0.1, 0.2, 0.3}});
            CHECK(m.options().samples == 3);
            CHECK(m.samples() == 3);
            CHECK(m.loss().options.label_smoothing == 0.0);
            CHECK(std::abs(m.dropout(2).effective_p() - 0.3) < 1e-4);
          });
  for (Index C : {Index(5), Index(70)}) {
    const std::string tag = " (C = " + std::to_string(C) + ")";
    add_row({f}, "h with no sample rejected" + tag, [C] {
      MsdCase k(6, 1, C);
      const M h(6, 0);
      const Labels y(0);
      rejects({"h"}, [&] { (void)MSD({2, 0.5}).forward(h, k.W, k.b, y, k.st, k.ctx); });
    });
    add_row(
        {f}, "h with no feature rejected" + tag,
        [C] {
          MsdCase k(6, 4, C);
          const M h(0, 4), W(C, 0);
          rejects({"h"}, [&] { (void)MSD({2, 0.5}).forward(h, W, k.b, k.y, k.st, k.ctx); });
        },
        C < 64 ? "[known:2]" : "");
    add_row({f}, "W with another column count than h's rows" + tag, [C] {
      MsdCase k(6, 4, C);
      const M W = normal<T>(C, 5);
      rejects({"W"}, [&] { (void)MSD({2, 0.5}).forward(k.h, W, k.b, k.y, k.st, k.ctx); });
    });
    add_row({f}, "b of another size than W's rows" + tag, [C] {
      MsdCase k(6, 4, C);
      const Vector<T> bias(C + 1);
      rejects({"b"}, [&] { (void)MSD({2, 0.5}).forward(k.h, k.W, bias, k.y, k.st, k.ctx); });
    });
    add_row({f}, "labels of another length" + tag, [C] {
      MsdCase k(6, 4, C);
      const Labels y = labels(5, C);
      rejects({"labels"}, [&] { (void)MSD({2, 0.5}).forward(k.h, k.W, k.b, y, k.st, k.ctx); });
    });
    add_row({f}, "a label out of range (from the loss)" + tag, [C] {
      MsdCase k(6, 4, C);
      k.y[2] = C;
      rejects({"labels"}, [&] { (void)MSD({2, 0.5}).forward(k.h, k.W, k.b, k.y, k.st, k.ctx); });
    });
    add_row({f, b}, "strided blocks give the result of contiguous copies" + tag, [C] {
      MsdCase k(6, 4, C), k2(6, 4, C);
      Strided<T> hs(6, 4, 1), ws(C, 6, 2), dhs(6, 4, 3), dws(C, 6, 4);
      k.h = hs.block(6, 4);
      k.W = ws.block(C, 6);
      const MSD m({2, 0.5});
      const T l1 = m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
      M dh(6, 4), dW(C, 6);
      Vector<T> db(C), db2(C);
      m.backward(k.W, k.ctx, dh, dW, db);
      T l2 = 0;
      accepts([&] {
        l2 = m.forward(hs.block(6, 4), ws.block(C, 6), k2.b, k2.y, k2.st, k2.ctx);
        m.backward(ws.block(C, 6), k2.ctx, dhs.block(6, 4), dws.block(C, 6), db2);
      });
      CHECK(l1 == l2);
      CHECK(close(M(dhs.block(6, 4)), dh, 1e-6));
      CHECK(close(M(dws.block(C, 6)), dW, 1e-6));
    });
    add_row({b}, "a second backward on one context rejected" + tag, [C] {
      MsdCase k(6, 4, C);
      const MSD m({2, 0.5});
      (void)m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
      M dh(6, 4), dW(C, 6);
      Vector<T> db(C);
      m.backward(k.W, k.ctx, dh, dW, db);
      rejects({"ctx"}, [&] { m.backward(k.W, k.ctx, dh, dW, db); });
    });
    for (const char* which : {"W", "dh", "dW", "db"}) {
      add_row({b}, std::string(which) + " of another shape than the forward call's" + tag,
              [C, which] {
                MsdCase k(6, 4, C);
                const MSD m({2, 0.5});
                (void)m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
                M W = k.W, dh(6, 4), dW(C, 6);
                Vector<T> db(C);
                const std::string w = which;
                if (w == "W") W.resize(C, 5);
                if (w == "dh") dh.resize(6, 3);
                if (w == "dW") dW.resize(C, 7);
                if (w == "db") db.resize(C + 2);
                rejects({which}, [&] { m.backward(W, k.ctx, dh, dW, db); });
              });
    }
    add_row(
        {b}, "dW is W itself" + tag,
        [C] {
          MsdCase k(6, 4, C);
          const MSD m({2, 0.5});
          (void)m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
          M dh(6, 4);
          Vector<T> db(C);
          rejects({"dW"}, [&] { m.backward(k.W, k.ctx, dh, k.W, db); });
        },
        C >= 64 ? "[known:7]" : "");
    add_row({b}, "dh overlaps W partly" + tag, [C] {
      MsdCase k(6, 4, C);
      Overlap<T> o(C, 6, 3);
      o.a = k.W;
      const MSD m({2, 0.5});
      (void)m.forward(k.h, o.a, k.b, k.y, k.st, k.ctx);
      Eigen::Map<M> dh(o.buffer.data() + 1, 6, 4);
      M dW(C, 6);
      Vector<T> db(C);
      rejects({"dh"}, [&] { m.backward(o.a, k.ctx, dh, dW, db); });
    });
    add_row(
        {b}, "a context reused by an eval forward after a training one" + tag,
        [C] {
          MsdCase k(6, 4, C), fresh(6, 4, C);
          MSD m({2, 0.5});
          (void)m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
          m.eval();
          const T l = m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
          const T lf = m.forward(fresh.h, fresh.W, fresh.b, fresh.y, fresh.st, fresh.ctx);
          M dh(6, 4), dW(C, 6), dhf(6, 4), dWf(C, 6);
          Vector<T> db(C), dbf(C);
          m.backward(fresh.W, fresh.ctx, dhf, dWf, dbf);
          accepts([&] { m.backward(k.W, k.ctx, dh, dW, db); });
          CHECK(l == lf);
          CHECK(close(dh, dhf, 1e-6));
          CHECK(close(dW, dWf, 1e-6));
        },
        C < 64 ? "[known:1]" : "");
    add_row({f}, "NaN in h gives a NaN loss" + tag, [C] {
      MsdCase k(6, 4, C);
      k.h(0, 0) = std::numeric_limits<T>::quiet_NaN();
      const T l = MSD({2, 0.0}).forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
      CHECK(std::isnan(l));
    });
  }
  add_row(
      {"regula::MultiSampleDropoutContext::per_sample/0",
       "regula::MultiSampleDropoutContext::logits/0", "regula::MultiSampleDropoutContext::loss/0",
       "regula::MultiSampleDropoutContext::sample/1",
       "regula::MultiSampleDropoutContext::training/0"},
      "the context holds the losses and logits of the call", [] {
        MsdCase k(6, 4, 70);
        const MSD m({3, 0.5});
        const T l = m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
        CHECK(k.ctx.per_sample().size() == 12);
        CHECK(k.ctx.logits().rows() == 70);
        CHECK(k.ctx.logits().cols() == 12);
        CHECK(k.ctx.loss() == l);
        CHECK(std::abs(k.ctx.per_sample().mean() - l) < 1e-5F * (1 + std::abs(l)));
        CHECK(k.ctx.sample(2).mode() == DropoutContext::Mode::random);
        CHECK(k.ctx.training());
      });
  add_row({"regula::MultiSampleDropoutContext::ready/0"},
          "ready from a forward call until its backward", [] {
            MsdCase k(6, 4, 5);
            const MSD m({2, 0.5});
            CHECK_FALSE(k.ctx.ready());
            (void)m.forward(k.h, k.W, k.b, k.y, k.st, k.ctx);
            CHECK(k.ctx.ready());
            M dh(6, 4), dW(5, 6);
            Vector<T> db(5);
            m.backward(k.W, k.ctx, dh, dW, db);
            CHECK_FALSE(k.ctx.ready());
          });
  add_row({"regula::MultiSampleDropout::backward/5"},
          "a context that holds no forward call rejected", [] {
            MsdCase k(6, 4, 5);
            const MSD m({2, 0.5});
            M dh(6, 4), dW(5, 6);
            Vector<T> db(5);
            rejects({"ctx"}, [&] { m.backward(k.W, k.ctx, dh, dW, db); });
          });
}

void nested_rows() {
  using N = NestedDropout<T>;
  const std::string c = "regula::NestedDropout";
  const std::string ctor = c + "::NestedDropout/1";
  add_row({ctor}, "units = 0 rejected",
          [] { rejects({"units"}, [] { N n(NestedDropoutOptions{0}); }); });
  for (double rho : {0.0, 1.0, nan}) {
    add_row({ctor, "regula::NestedPrior::geometric/2"},
            "rho = " + std::to_string(rho) + " rejected", [rho] {
              rejects({"rho"}, [&] { N n(NestedDropoutOptions{4, NestedPrior::geometric(rho)}); });
            });
  }
  for (double sigma : {0.0, -1.0, nan, inf}) {
    add_row({ctor, "regula::NestedPrior::half_gaussian/2"},
            "sigma = " + std::to_string(sigma) + " rejected", [sigma] {
              rejects({"sigma"}, [&] {
                N n(NestedDropoutOptions{4, NestedPrior::half_gaussian(sigma)});
              });
            });
  }
  add_row({ctor}, "mu = inf rejected", [] {
    rejects({"mu"}, [] { N n(NestedDropoutOptions{4, NestedPrior::half_gaussian(1.0, inf)}); });
  });
  add_row(
      {ctor, "regula::NestedPrior::half_gaussian/2"},
      "sigma = 1e-300 is valid: all mass on the first unit",
      [] {
        accepts([] {
          const N n(NestedDropoutOptions{4, NestedPrior::half_gaussian(1e-300)});
          CHECK(n.pmf()[0] == 1.0);
        });
      },
      "[known:10]");
  add_row({ctor, "regula::NestedPrior::custom/1"}, "an empty custom pmf rejected", [] {
    rejects({"pmf"}, [] { N n(NestedDropoutOptions{0, NestedPrior::custom({})}); });
  });
  add_row({ctor}, "a custom pmf of another size than units rejected", [] {
    rejects({"pmf"}, [] { N n(NestedDropoutOptions{3, NestedPrior::custom({1, 2})}); });
  });
  for (double w : {-1.0, nan, inf}) {
    add_row({ctor}, "a custom weight " + std::to_string(w) + " rejected", [w] {
      rejects({"pmf"}, [&] { N n(NestedDropoutOptions{0, NestedPrior::custom({1, w})}); });
    });
  }
  add_row({ctor}, "a custom pmf of zeros rejected", [] {
    rejects({"pmf"}, [] { N n(NestedDropoutOptions{0, NestedPrior::custom({0, 0})}); });
  });
  add_row({ctor}, "a custom pmf whose sum overflows is normalised or rejected by name", [] {
    try {
      const N n(NestedDropoutOptions{0, NestedPrior::custom({1e308, 1e308})});
      CHECK(std::abs(n.pmf()[0] - 0.5) < 1e-12);
    } catch (const invalid_argument& e) {
      CHECK(names(e.what(), "pmf"));
    }
  });
  add_row({"regula::NestedPrior::uniform/0", c + "::pmf/0", c + "::cdf/0", c + "::survival/1",
           c + "::mean_kept/0", c + "::units/0", c + "::options/0"},
          "the uniform prior's pmf, cdf, survival and mean", [] {
            const N n(NestedDropoutOptions{4, NestedPrior::uniform()});
            CHECK(n.units() == 4);
            CHECK(n.options().units == 4);
            CHECK(n.pmf()[2] == 0.25);
            CHECK(n.cdf()[3] == 1.0);
            CHECK(n.survival(0) == 1.0);
            CHECK(n.survival(3) == 0.5);
            CHECK(n.survival(5) == 0.0);
            CHECK(n.mean_kept() == 2.5);
          });
  Spec<N> spec{c, [] { return N(NestedDropoutOptions{6}); }};
  spec.forward_ctx = "::forward/5";
  elementwise_rows(spec);
  train_eval_rows<N>(c, [] { return N(NestedDropoutOptions{6}); });
  add_row({c + "::forward/3"}, "x with another row count than units rejected", [] {
    const N n(NestedDropoutOptions{6});
    const M x = normal<T>(5, 3);
    M y(5, 3);
    Stream st(1);
    rejects({"x"}, [&] { (void)n.forward(x, y, st); });
  });
  for (Index frozen : {Index(-1), Index(7)}) {
    add_row({c + "::forward/5"}, "frozen = " + std::to_string(frozen) + " rejected", [frozen] {
      const N n(NestedDropoutOptions{6});
      const M x = normal<T>(6, 3);
      M y(6, 3);
      Stream st(1);
      NestedDropoutContext ctx;
      rejects({"frozen"}, [&] { n.forward(x, y, st, ctx, frozen); });
    });
  }
  const std::string tr = c + "::truncate/3";
  for (Index k : {Index(-1), Index(7)}) {
    add_row({tr}, "k = " + std::to_string(k) + " rejected", [k] {
      const N n(NestedDropoutOptions{6});
      const M x = normal<T>(6, 3);
      M y(6, 3);
      rejects({"k"}, [&] { n.truncate(x, k, y); });
    });
  }
  add_row({tr}, "y overlaps x partly", [] {
    const N n(NestedDropoutOptions{6});
    Overlap<T> o(6, 3, 1);
    rejects({"y"}, [&] { n.truncate(o.a, 2, o.b); });
  });
  add_row({tr}, "x with another row count than units", [] {
    const N n(NestedDropoutOptions{6});
    const M x = normal<T>(4, 3);
    M y(4, 3);
    rejects({"x"}, [&] { n.truncate(x, 2, y); });
  });
  add_row({tr}, "in place and on strided blocks: the first k units", [] {
    const N n(NestedDropoutOptions{6});
    Strided<T> xs(6, 3);
    M x = xs.block(6, 3);
    M ref = x;
    ref.bottomRows(4).setZero();
    accepts([&] { n.truncate(xs.block(6, 3), 2, xs.block(6, 3)); });
    CHECK(same(M(xs.block(6, 3)), ref));
  });
  add_row({"regula::NestedDropoutContext::random/0", "regula::NestedDropoutContext::stream/0",
           "regula::NestedDropoutContext::rows/0", "regula::NestedDropoutContext::cols/0",
           "regula::NestedDropoutContext::per_batch/0", "regula::NestedDropoutContext::kept/1",
           "regula::NestedDropoutContext::indices/0"},
          "the context records the kept prefixes of the output", [] {
            const N n(NestedDropoutOptions{6});
            const M x = M::Constant(6, 9, 1.0F);
            M y(6, 9);
            Stream st(4);
            const Stream start = st;
            const auto ctx = n.forward(x, y, st);
            CHECK(ctx.random());
            CHECK(ctx.stream() == start);
            CHECK(ctx.rows() == 6);
            CHECK(ctx.cols() == 9);
            CHECK_FALSE(ctx.per_batch());
            CHECK(ctx.indices().size() == 9);
            for (Index j = 0; j < 9; ++j) CHECK(ctx.kept(j) == static_cast<Index>(y.col(j).sum()));
          });
  const std::string sw = "regula::NestedSweeper";
  add_row({sw + "::NestedSweeper/3"}, "units = 0 rejected",
          [] { rejects({"units"}, [] { NestedSweeper s(0); }); });
  for (double tol : {0.0, -1.0, nan}) {
    add_row({sw + "::NestedSweeper/3"}, "tol = " + std::to_string(tol) + " rejected",
            [tol] { rejects({"tol"}, [&] { NestedSweeper s(4, tol); }); });
  }
  add_row({sw + "::NestedSweeper/3"}, "patience = 0 rejected",
          [] { rejects({"patience"}, [] { NestedSweeper s(4, 1e-3, 0); }); });
  add_row({sw + "::observe/1"}, "v changing size rejected", [] {
    NestedSweeper s(4);
    (void)s.observe(Vector<double>::Ones(3));
    rejects({"v"}, [&] { (void)s.observe(Vector<double>::Ones(4)); });
  });
  add_row({sw + "::observe/1", sw + "::frozen/0", sw + "::done/0", sw + "::streak/0"},
          "a constant unit freezes after patience observations", [] {
            NestedSweeper s(1, 1e-3, 2);
            CHECK_FALSE(s.observe(Vector<double>::Ones(3)));
            CHECK_FALSE(s.observe(Vector<double>::Ones(3)));
            CHECK(s.streak() == 1);
            CHECK(s.observe(Vector<double>::Ones(3)));
            CHECK(s.frozen() == 1);
            CHECK(s.done());
          });
  add_row({sw + "::zero_frozen_rows/1"}, "grad with fewer rows than frozen units rejected", [] {
    NestedSweeper s(4, 1e-3, 1);
    (void)s.observe(Vector<double>::Ones(2));
    (void)s.observe(Vector<double>::Ones(2));
    (void)s.observe(Vector<double>::Ones(2));
    (void)s.observe(Vector<double>::Ones(2));
    REQUIRE(s.frozen() == 2);
    Matrix<double> g = Matrix<double>::Ones(1, 3);
    rejects({"grad"}, [&] { s.zero_frozen_rows(g); });
    Matrix<double> g2 = Matrix<double>::Ones(3, 2);
    s.zero_frozen_rows(g2);
    CHECK(g2.topRows(2).isZero());
    CHECK(g2(2, 0) == 1.0);
  });
}

void register_rows() {
  random_context_rows();
  dropout_rows();
  structured_rows();
  drop_connect_rows();
  multi_sample_rows();
  nested_rows();
}

const Rows rows(register_rows);

}  // namespace
}  // namespace regula::sweep
