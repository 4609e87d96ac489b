// Sweep rows of core/ (the stream, the generator, parallel loops, reductions), activations/ and
// optim/.
#include <atomic>
#include <sstream>
#include <type_traits>

#include "sweep/sweep.hpp"
#include <regula/activations/softmax.hpp>
#include <regula/activations/softmax_collapse.hpp>
#include <regula/activations/stablemax.hpp>
#include <regula/core/labels.hpp>
#include <regula/core/parallel.hpp>
#include <regula/core/philox.hpp>
#include <regula/core/reduction.hpp>
#include <regula/core/stream.hpp>
#include <regula/layers/alpha_dropout.hpp>
#include <regula/layers/channel_dropout.hpp>
#include <regula/layers/drop_connect.hpp>
#include <regula/layers/drop_path.hpp>
#include <regula/layers/dropout.hpp>
#include <regula/layers/feature_alpha_dropout.hpp>
#include <regula/layers/gaussian_dropout.hpp>
#include <regula/layers/multi_sample_dropout.hpp>
#include <regula/layers/nested_dropout.hpp>
#include <regula/losses/coverage.hpp>
#include <regula/optim/perp_grad.hpp>
#include <regula/selection/co_teaching.hpp>
#include <regula/selection/forget_rate.hpp>
#include <regula/selection/jocor.hpp>
#include <regula/selection/label_noise.hpp>

namespace regula::sweep {
namespace {

using T = float;
using M = Matrix<T>;
constexpr Index C = 7, B = 5;

using Forward = std::function<void(const MatrixCRef<T>&, MatrixRef<T>)>;

void activation_rows(const std::string& name, Forward f, std::function<M(const M&)> convenience) {
  const std::string e2 = "regula::" + name + "/2", e1 = "regula::" + name + "/1";
  const M z = normal<T>(C, B, 1, 3.0);
  add_row({e2}, "y of another shape rejected", [=] {
    M y(C, B + 1);
    rejects({"y"}, [&] { f(z, y); });
  });
  add_row({e2}, "y overlaps z partly by one element", [=] {
    Overlap<T> o(C, B, 1);
    rejects({"y"}, [&] { f(o.a, o.b); });
  });
  add_row({e2}, "y overlaps z partly by one column", [=] {
    Overlap<T> o(C, B, C);
    rejects({"y"}, [&] { f(o.b, o.a); });
  });
  add_row({e2}, "y is z with another layout rejected", [=] {
    Matrix<T> buf = normal<T>(C * B + C, 1);
    Eigen::Map<M, 0, Eigen::OuterStride<>> zs(buf.data(), C - 1, B, Eigen::OuterStride<>(C));
    Eigen::Map<M> ys(buf.data(), C - 1, B);
    rejects({"y"}, [&] { f(zs, ys); });
  });
  add_row({e2}, "y is z itself: in place equals out of place", [=] {
    M y(C, B), a = z;
    f(z, y);
    accepts([&] { f(a, a); });
    CHECK(same(a, y));
  });
  add_row({e2}, "strided blocks give the result of contiguous copies", [=] {
    M y(C, B);
    f(z, y);
    Strided<T> zs(C, B), ys(C, B, 9);
    zs.block(C, B) = z;
    accepts([&] { f(zs.block(C, B), ys.block(C, B)); });
    CHECK(same(M(ys.block(C, B)), y));
  });
  add_row({e2}, "an empty matrix is a no-op", [=] {
    M a(C, 0), b(0, B);
    accepts([&] {
      f(a, a);
      f(b, b);
    });
    CHECK(a.size() == 0);
  });
  add_row({e2}, "NaN in a column gives NaN in that column only; inf gives NaN", [=] {
    M a = z, y(C, B);
    a(2, 1) = std::numeric_limits<T>::quiet_NaN();
    a(0, 3) = std::numeric_limits<T>::infinity();
    f(a, y);
    CHECK(y.col(1).array().isNaN().all());
    CHECK(y.col(3).array().isNaN().any());
    CHECK(y.col(0).allFinite());
  });
  add_row({e2}, "logits of +-1e30 give finite outputs", [=] {
    const M a = normal<T>(C, B, 3, 1e30);
    M y(C, B);
    f(a, y);
    CHECK(y.allFinite());
  });
  add_row({e1}, "the returning overload equals the writing one", [=] {
    M y(C, B);
    f(z, y);
    CHECK(same(convenience(z), y));
  });
}

using Backward2 = std::function<void(const MatrixCRef<T>&, const MatrixCRef<T>&, MatrixRef<T>)>;

void softmax_backward_rows(const std::string& name, Forward fwd, Backward2 bwd) {
  const std::string e = "regula::" + name + "/3";
  const M z = normal<T>(C, B, 1);
  M y(C, B);
  fwd(z, y);
  const M dy = normal<T>(C, B, 2);
  add_row({e}, "dy of another shape rejected", [=] {
    M dz(C, B);
    rejects({"dy"}, [&] { bwd(y, normal<T>(C + 1, B), dz); });
  });
  add_row({e}, "dz of another shape rejected", [=] {
    M dz(C, B - 1);
    rejects({"dz"}, [&] { bwd(y, dy, dz); });
  });
  add_row({e}, "dz overlaps dy partly", [=] {
    Overlap<T> o(C, B, 1);
    o.a = dy;
    rejects({"dz"}, [&] { bwd(y, o.a, o.b); });
  });
  add_row({e}, "dz overlaps y partly", [=] {
    Overlap<T> o(C, B, 3);
    o.a = y;
    rejects({"dz"}, [&] { bwd(o.a, dy, o.b); });
  });
  add_row({e}, "dz is y itself: in place equals out of place (documented)", [=] {
    M dz(C, B), yy = y;
    bwd(y, dy, dz);
    accepts([&] { bwd(yy, dy, yy); });
    CHECK(same(yy, dz));
  });
  add_row({e}, "dz is dy itself: in place equals out of place", [=] {
    M dz(C, B), a = dy;
    bwd(y, dy, dz);
    accepts([&] { bwd(y, a, a); });
    CHECK(same(a, dz));
  });
  add_row({e}, "strided blocks give the result of contiguous copies", [=] {
    M dz(C, B);
    bwd(y, dy, dz);
    Strided<T> ys(C, B, 1), ds(C, B, 2), os(C, B, 3);
    ys.block(C, B) = y;
    ds.block(C, B) = dy;
    accepts([&] { bwd(ys.block(C, B), ds.block(C, B), os.block(C, B)); });
    CHECK(same(M(os.block(C, B)), dz));
  });
}

using Backward3 = std::function<void(const MatrixCRef<T>&, const MatrixCRef<T>&,
                                     const MatrixCRef<T>&, MatrixRef<T>)>;

void stablemax_backward_rows(const std::string& name, Forward fwd, Backward3 bwd) {
  const std::string e = "regula::" + name + "/4";
  const M z = normal<T>(C, B, 1, 3.0);
  M y(C, B);
  fwd(z, y);
  const M dy = normal<T>(C, B, 2);
  M ref(C, B);
  bwd(z, y, dy, ref);
  add_row({e}, "y of another shape than z rejected", [=] {
    M dz(C, B);
    rejects({"y"}, [&] { bwd(z, normal<T>(C, B + 1), dy, dz); });
  });
  add_row({e}, "dy of another shape than z rejected", [=] {
    M dz(C, B);
    rejects({"dy"}, [&] { bwd(z, y, normal<T>(C - 1, B), dz); });
  });
  add_row({e}, "dz of another shape rejected", [=] {
    M dz(C + 1, B);
    rejects({"dz"}, [&] { bwd(z, y, dy, dz); });
  });
  for (const char* which : {"z", "y", "dy"}) {
    add_row({e}, std::string("dz overlaps ") + which + " partly", [=] {
      Overlap<T> o(C, B, 2);
      const std::string w = which;
      o.a = w == "z" ? z : (w == "y" ? y : dy);
      rejects({"dz"}, [&] {
        if (w == "z") bwd(o.a, y, dy, o.b);
        if (w == "y") bwd(z, o.a, dy, o.b);
        if (w == "dy") bwd(z, y, o.a, o.b);
      });
    });
    add_row({e}, std::string("dz is ") + which + " itself: in place equals out of place", [=] {
      M a = std::string(which) == "z" ? z : (std::string(which) == "y" ? y : dy);
      const std::string w = which;
      accepts([&] {
        if (w == "z") bwd(a, y, dy, a);
        if (w == "y") bwd(z, a, dy, a);
        if (w == "dy") bwd(z, y, a, a);
      });
      CHECK(same(a, ref));
    });
  }
  add_row({e}, "strided blocks give the result of contiguous copies", [=] {
    Strided<T> zs(C, B, 1), ys(C, B, 2), ds(C, B, 3), os(C, B, 4);
    zs.block(C, B) = z;
    ys.block(C, B) = y;
    ds.block(C, B) = dy;
    accepts([&] { bwd(zs.block(C, B), ys.block(C, B), ds.block(C, B), os.block(C, B)); });
    CHECK(same(M(os.block(C, B)), ref));
  });
}

void activations() {
  activation_rows(
      "softmax", [](auto& z, auto y) { softmax(z, y); }, [](const M& z) { return softmax(z); });
  activation_rows(
      "log_softmax", [](auto& z, auto y) { log_softmax(z, y); },
      [](const M& z) { return log_softmax(z); });
  activation_rows(
      "stablemax", [](auto& z, auto y) { stablemax(z, y); },
      [](const M& z) { return stablemax(z); });
  activation_rows(
      "log_stablemax", [](auto& z, auto y) { log_stablemax(z, y); },
      [](const M& z) { return log_stablemax(z); });
  softmax_backward_rows(
      "softmax_backward", [](auto& z, auto y) { softmax(z, y); },
      [](auto& y, auto& dy, auto dz) { softmax_backward(y, dy, dz); });
  softmax_backward_rows(
      "log_softmax_backward", [](auto& z, auto y) { log_softmax(z, y); },
      [](auto& y, auto& dy, auto dz) { log_softmax_backward(y, dy, dz); });
  stablemax_backward_rows(
      "stablemax_backward", [](auto& z, auto y) { stablemax(z, y); },
      [](auto& z, auto& y, auto& dy, auto dz) { stablemax_backward(z, y, dy, dz); });
  stablemax_backward_rows(
      "log_stablemax_backward", [](auto& z, auto y) { log_stablemax(z, y); },
      [](auto& z, auto& y, auto& dy, auto dz) { log_stablemax_backward(z, y, dy, dz); });

  add_row({"regula::softmax_collapse_fraction/2"}, "logits with no sample or no class rejected",
          [] {
            rejects({"logits"}, [] { (void)softmax_collapse_fraction(M(C, 0)); });
            rejects({"logits"}, [] { (void)softmax_collapse_fraction(M(0, B)); });
          });
  add_row({"regula::softmax_collapse_fraction/2", "regula::softmax_collapsed/3"},
          "a margin of 100 collapses in float; NaN columns do not count", [] {
            M z = M::Zero(4, 4);
            z(0, 0) = 100;
            z(1, 1) = 100;
            z(0, 2) = std::numeric_limits<T>::quiet_NaN();
            CHECK(softmax_collapse_fraction(z) == 0.5);
            CHECK(softmax_collapse_fraction(z, CollapseSum::sequential) == 0.5);
            CHECK(softmax_collapsed(z.col(0).data(), 4));
            CHECK_FALSE(softmax_collapsed(z.col(3).data(), 4, CollapseSum::sequential));
          });
  add_row({"regula::softmax_collapse_fraction/2"}, "a strided block is read column by column", [] {
    Strided<T> s(4, 3);
    s.big.setZero();
    s.block(4, 3)(0, 1) = 100;
    CHECK(std::abs(softmax_collapse_fraction(s.block(4, 3)) - 1.0 / 3.0) < 1e-12);
  });
  add_row({"regula::zero_loss_fraction/1"}, "empty losses rejected; exact zeros counted", [] {
    rejects({"losses"}, [] { (void)zero_loss_fraction(Vector<T>(0)); });
    Vector<T> l(4);
    l << 0, 1, -0.0F, std::numeric_limits<T>::quiet_NaN();
    CHECK(zero_loss_fraction(l) == 0.5);
  });
}

void stream_rows() {
  const std::string s = "regula::Stream::";
  add_row({s + "Stream/3", s + "seed/0", s + "subsequence/0", s + "offset/0", s + "key/0"},
          "the stream records its position; key() is philox_key(seed)", [] {
            const Stream st(0x123456789ULL, 7, 9);
            CHECK(st.seed() == 0x123456789ULL);
            CHECK(st.subsequence() == 7U);
            CHECK(st.offset() == 9U);
            CHECK(st.key() == philox_key(0x123456789ULL));
          });
  add_row({s + "substream/1", s + "skip/1", s + "take/1", s + "operator==/2", s + "operator!=/2"},
          "substream restarts at block 0; take returns the old offset", [] {
            Stream st(1, 0, 5);
            const Stream sub = st.substream(3);
            CHECK(sub == Stream(1, 3, 0));
            CHECK(sub != st);
            CHECK(st.take(4) == 5U);
            st.skip(2);
            CHECK(st.offset() == 11U);
            st.skip(~std::uint64_t{0});  // wraps modulo 2^64, as the counter does
            CHECK(st.offset() == 10U);
          });
  add_row({s + "block/1", "regula::philox4x32_10/2", "regula::philox_counter/2",
           "regula::philox_key/1"},
          "blocks are Philox4x32-10 at (offset + j, subsequence); the known-answer vector", [] {
            CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) ==
                  PhiloxBlock{0x6627e8d5U, 0xe169c58dU, 0xbc57ac4cU, 0x9b00dbd8U});
            const Stream st(42, 3, 10);
            CHECK(st.block(2) == philox4x32_10(philox_counter(12, 3), philox_key(42)));
            CHECK(philox_counter(0x100000002ULL, 0x300000004ULL) == PhiloxCounter{2, 1, 4, 3});
          });
  add_row({s + "uniform/2", s + "uniform/0"},
          "uniforms lie in [0, 1), advance by whole blocks, and n = 0 draws nothing", [] {
            Stream a(5), b(5);
            std::vector<float> u(9);
            a.uniform(u.data(), u.size());
            CHECK(a.offset() == 3U);
            for (float x : u) CHECK((x >= 0.0F && x < 1.0F));
            CHECK(b.uniform<float>() == u[0]);
            Stream c(5);
            c.uniform(static_cast<double*>(nullptr), 0);
            CHECK(c.offset() == 0U);
          });
  add_row({s + "normal/2", s + "normal/0"}, "normals are finite and bounded by 6.66", [] {
    Stream a(6), b(6);
    std::vector<double> z(4001);
    a.normal(z.data(), z.size());
    CHECK(a.offset() == 1001U);
    for (double x : z) CHECK(std::abs(x) <= 6.67);
    CHECK(b.normal<double>() == z[0]);
  });
}

void core_rows() {
  stream_rows();
  add_row({"regula::max_threads/0", "regula::parallel_for_chunks/3"},
          "every item is visited once in chunks fixed by the chunk size", [] {
            CHECK(max_threads() >= 1);
            std::vector<int> seen(1001, 0);
            std::atomic<std::size_t> chunks{0};
            parallel_for_chunks(seen.size(), 64,
                                [&](std::size_t c, std::size_t b, std::size_t e) noexcept {
                                  chunks += 1;
                                  if (b != c * 64 || e > seen.size()) return;
                                  for (std::size_t i = b; i < e; ++i) seen[i] += 1;
                                });
            CHECK(chunks == 16U);
            for (int v : seen) CHECK(v == 1);
            parallel_for_chunks(
                0, 64, [&](std::size_t, std::size_t, std::size_t) noexcept { chunks += 100; });
            CHECK(chunks == 16U);
          });
  add_row({"regula::parallel_sum_chunks/3"},
          "the chunked sum adds every chunk once, in chunk order, at most max_sum_chunks of them",
          [] {
            // 100000 items in chunks of 10 would be 10000 chunks: lengthened to 391 items, 256
            // chunks.
            std::atomic<std::size_t> calls{0};
            const double total =
                parallel_sum_chunks(100000, 10, [&](std::size_t b, std::size_t e) noexcept {
                  calls += 1;
                  double acc = 0.0;
                  for (std::size_t i = b; i < e; ++i) acc += static_cast<double>(i);
                  return acc;
                });
            CHECK(calls == max_sum_chunks);
            CHECK(total == 4999950000.0);
            CHECK(parallel_sum_chunks(
                      0, 8, [](std::size_t, std::size_t) noexcept { return 1.0; }) == 0.0);
            CHECK(parallel_sum_chunks(3, 8, [](std::size_t b, std::size_t e) noexcept {
                    return static_cast<double>(e - b);
                  }) == 3.0);
          });
  add_row({"regula::to_string/1", "regula::operator<</2"}, "reductions print with PyTorch's names",
          [] {
            CHECK(std::string(to_string(Reduction::batchmean)) == "batchmean");
            std::ostringstream os;
            os << Reduction::none << ' ' << Reduction::mean << ' ' << Reduction::sum;
            CHECK(os.str() == "none mean sum");
            CHECK(std::string(to_string(static_cast<Reduction>(9))) == "?");
          });
}

void perp_grad_rows() {
  const std::string e = "regula::perp_grad/3";
  const M w = normal<T>(C, B, 1), g = normal<T>(C, B, 2);
  add_row({e}, "g of another shape rejected", [=] {
    M gg(C, B + 1);
    rejects({"g"}, [&] { (void)perp_grad(w, gg); });
  });
  for (double eps : {-1.0, nan}) {
    add_row({e}, "eps = " + std::to_string(eps) + " rejected", [=] {
      M gg = g;
      PerpGradOptions o;
      o.eps = eps;
      rejects({"eps"}, [&] { (void)perp_grad(w, gg, o); });
    });
    add_row({e}, "parallel_tol = " + std::to_string(eps) + " rejected", [=] {
      M gg = g;
      PerpGradOptions o;
      o.parallel_tol = eps;
      rejects({"parallel_tol"}, [&] { (void)perp_grad(w, gg, o); });
    });
  }
  add_row({e}, "eps = inf rejected", [=] {
    M gg = g;
    PerpGradOptions o;
    o.eps = inf;
    rejects({"eps"}, [&] { (void)perp_grad(w, gg, o); });
  });
  add_row({e}, "g overlaps w partly", [=] {
    Overlap<T> o(C, B, 1);
    rejects({"g"}, [&] { (void)perp_grad(o.a, o.b); });
  });
  add_row({e}, "g is w itself", [=] {
    M a = w;
    rejects({"g"}, [&] { (void)perp_grad(a, a); });
  });
  add_row({e}, "strided blocks give the result of contiguous copies; g ends orthogonal to w", [=] {
    M a = g;
    const auto r = perp_grad(w, a);
    Strided<T> ws(C, B, 1), gs(C, B, 2);
    ws.block(C, B) = w;
    gs.block(C, B) = g;
    accepts([&] { (void)perp_grad(ws.block(C, B), gs.block(C, B)); });
    CHECK(same(M(gs.block(C, B)), a));
    CHECK(std::abs((w.array() * a.array()).sum()) < 1e-4F * w.norm() * a.norm());
    CHECK(std::abs(r.norm_after - r.norm_before) < 1e-4 * r.norm_before);
  });
  add_row({e}, "NaN in g gives NaN", [=] {
    M a = g;
    a(0, 0) = std::numeric_limits<T>::quiet_NaN();
    (void)perp_grad(w, a);
    CHECK(a.array().isNaN().any());
  });
}

// Every options struct is a plain struct with a chainable with_<field> setter per field
// (docs/concepts.md, "Options"); each row sets every field away from its default in one chain.
// The loss options with rows of their own are in rows_losses.cpp.
void options_rows() {
  add_row({"regula::DropoutOptions::with_p/1", "regula::DropoutOptions::with_store_mask/1",
           "regula::AlphaDropoutOptions::with_p/1", "regula::GaussianDropoutOptions::with_p/1",
           "regula::DropConnectOptions::with_p/1"},
          "the setters of the one-rate layers' options set their fields", [] {
            const auto d = DropoutOptions{}.with_p(0.25).with_store_mask(true);
            CHECK(d.p == 0.25);
            CHECK(d.store_mask);
            CHECK(AlphaDropoutOptions{}.with_p(0.125).p == 0.125);
            CHECK(GaussianDropoutOptions{}.with_p(0.375).p == 0.375);
            CHECK(DropConnectOptions{}.with_p(0.625).p == 0.625);
          });
  add_row(
      {"regula::ChannelDropoutOptions::with_p/1", "regula::ChannelDropoutOptions::with_channels/1",
       "regula::ChannelDropoutOptions::with_layout/1", "regula::DropPathOptions::with_p/1",
       "regula::DropPathOptions::with_mode/1"},
      "the setters of the structured layers' options set their fields", [] {
        static_assert(std::is_same_v<FeatureAlphaDropoutOptions, ChannelDropoutOptions>);
        const auto c = ChannelDropoutOptions{}.with_p(0.25).with_channels(3).with_layout(
            ChannelLayout::channel_last);
        CHECK(c.p == 0.25);
        CHECK(c.channels == 3);
        CHECK(c.layout == ChannelLayout::channel_last);
        const auto d = DropPathOptions{}.with_p(0.5).with_mode(DropPathMode::batch);
        CHECK(d.p == 0.5);
        CHECK(d.mode == DropPathMode::batch);
      });
  add_row(
      {"regula::MultiSampleDropoutOptions::with_samples/1",
       "regula::MultiSampleDropoutOptions::with_p/1",
       "regula::MultiSampleDropoutOptions::with_rates/1",
       "regula::MultiSampleDropoutOptions::with_reduction/1",
       "regula::NestedDropoutOptions::with_units/1", "regula::NestedDropoutOptions::with_prior/1",
       "regula::NestedDropoutOptions::with_mode/1"},
      "the setters of multi-sample and nested dropout's options set their fields", [] {
        const auto m = MultiSampleDropoutOptions{}
                           .with_samples(3)
                           .with_p(0.25)
                           .with_rates({0.1, 0.2, 0.3})
                           .with_reduction(MultiSampleReduction::mean_of_logits);
        CHECK(m.samples == 3);
        CHECK(m.p == 0.25);
        CHECK(m.rates == std::vector<double>{0.1, 0.2, 0.3});
        CHECK(m.reduction == MultiSampleReduction::mean_of_logits);
        const auto n = NestedDropoutOptions{}
                           .with_units(5)
                           .with_prior(NestedPrior::uniform())
                           .with_mode(NestedIndexMode::per_batch);
        CHECK(n.units == 5);
        CHECK(n.mode == NestedIndexMode::per_batch);
        const NestedDropout<T> layer(n);  // the prior travelled: a uniform prior over 5 units
        CHECK(layer.pmf().size() == 5);
      });
  add_row({"regula::CoTeachingPlusOptions::with_init_epochs/1",
           "regula::CoTeachingPlusOptions::with_empty/1", "regula::ForgetRateOptions::with_tau/1",
           "regula::ForgetRateOptions::with_ramp_epochs/1",
           "regula::ForgetRateOptions::with_exponent/1", "regula::JoCoROptions::with_lambda/1",
           "regula::LabelNoiseOptions::with_kind/1", "regula::LabelNoiseOptions::with_rate/1",
           "regula::LabelNoiseOptions::with_seed/1"},
          "the setters of the selection options set their fields", [] {
            const auto c =
                CoTeachingPlusOptions{}.with_init_epochs(3).with_empty(EmptyDisagreement::skip);
            CHECK(c.init_epochs == 3.0);
            CHECK(c.empty == EmptyDisagreement::skip);
            const auto f = ForgetRateOptions{}.with_tau(0.2).with_ramp_epochs(5).with_exponent(2);
            CHECK(f.tau == 0.2);
            CHECK(f.ramp_epochs == 5.0);
            CHECK(f.exponent == 2.0);
            CHECK(JoCoROptions{}.with_lambda(0.9).lambda == 0.9);
            const auto l =
                LabelNoiseOptions{}.with_kind(LabelNoise::pair).with_rate(0.2).with_seed(7);
            CHECK(l.kind == LabelNoise::pair);
            CHECK(l.rate == 0.2);
            CHECK(l.seed == 7U);
          });
  // with_reduction and with_ignore_index are those of the base detail::LabelLossOptions, which the
  // listing does not name; the row checks them through CoverageLossOptions.
  add_row({"regula::CoverageLossOptions::with_N/1", "regula::PerpGradOptions::with_preserve_norm/1",
           "regula::PerpGradOptions::with_eps/1", "regula::PerpGradOptions::with_parallel_tol/1"},
          "the setters of the coverage and perp_grad options set their fields", [] {
            const auto c =
                CoverageLossOptions{}.with_N(4).with_reduction(Reduction::sum).with_ignore_index(3);
            CHECK(c.N == 4.0);
            CHECK(c.reduction == Reduction::sum);
            CHECK(c.ignore_index == 3);
            const auto g =
                PerpGradOptions{}.with_preserve_norm(false).with_eps(1e-20).with_parallel_tol(1e-6);
            CHECK_FALSE(g.preserve_norm);
            CHECK(g.eps == 1e-20);
            CHECK(g.parallel_tol == 1e-6);
          });
}

void label_view_rows() {
  const std::string v = "regula::LabelView::";
  add_row(
      {v + "LabelView/1", v + "LabelView/3", v + "size/0", v + "operator[]/1", v + "operator()/1",
       v + "bytes/0", v + "byte_extent/0"},
      "binds int32 and int64 vectors, rows, strided maps and std::vectors without a copy", [] {
        Labels y64(4);
        y64 << 3, 0, 2, 1;
        Eigen::RowVectorXi r32(4);
        r32 << 3, 0, 2, 1;
        const std::vector<int> v32{3, 0, 2, 1};
        Eigen::MatrixXi m(2, 4);
        m.row(1) = r32;
        const LabelView views[] = {LabelView(y64),           LabelView(r32),
                                   LabelView(v32),           LabelView(m.row(1)),
                                   LabelView(y64.data(), 4), LabelView(v32.data(), 2, 2)};
        for (const LabelView& l : views) {
          CHECK(l[0] == 3);
          CHECK(l(l.size() - 1) == (l.size() == 2 ? 2 : 1));
        }
        CHECK(views[0].bytes() == reinterpret_cast<const unsigned char*>(y64.data()));  // no copy
        CHECK(views[3].bytes() == reinterpret_cast<const unsigned char*>(&m(1, 0)));
        CHECK(views[0].byte_extent() == 4 * sizeof(std::int64_t));
        CHECK(views[3].byte_extent() == (3 * 2 + 1) * sizeof(int));  // stride 2 ints
        CHECK(views[5].size() == 2);
        CHECK(LabelView(std::vector<std::int64_t>{}).byte_extent() == 0);
      });
}

void register_rows() {
  activations();
  core_rows();
  perp_grad_rows();
  options_rows();
  label_view_rows();
}

const Rows rows(register_rows);

}  // namespace
}  // namespace regula::sweep
