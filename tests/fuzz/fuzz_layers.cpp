// Fuzz harness of the layers: Dropout, GaussianDropout, AlphaDropout, FeatureAlphaDropout,
// ChannelDropout, DropPath, DropConnect, NestedDropout and MultiSampleDropout — forward, backward,
// eval mode, in-place and strided calls, outputs that overlap their input, and one context reused
// by a sequence of forward calls of different shapes and modes before its backward.
//
// Invariants: dropout values in {0·x, x·scale} with the mask of backward equal to forward's
// (backward of dy = x reproduces y bit for bit); eval is the identity; the stream advances by
// blocks_used(n); forward is deterministic; channel and path masks are constant over their
// broadcast; nested prefixes; DropConnect equal to the dense layer with the mask it reports;
// MultiSampleDropout equal to the loop of M dropout + head + loss passes it documents. Bad
// arguments (shapes, partial overlaps, a context of another shape) give
// regula::invalid_argument and nothing else.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_connect.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/feature_alpha_dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"
#include "regula/losses/cross_entropy.hpp"

#include "fuzz_support.hpp"

namespace {

using namespace regula;
using fuzz::Expect;
using fuzz::Palette;

template <class T>
using CMap = Eigen::Map<const Matrix<T>, 0, Eigen::OuterStride<>>;
template <class T>
using WMap = Eigen::Map<Matrix<T>, 0, Eigen::OuterStride<>>;

/// Where an output lies relative to its input.
enum class Place : std::uint8_t {
  apart,
  apart_strided,
  in_place,
  partial,
  same_data_other_stride,
  count
};

/// An input x (rows × cols, outer stride sx) and an output placed as `place` says, in one buffer.
template <class T>
struct InOut {
  std::vector<T> buf;
  Index rows = 0, cols = 0, sx = 0, sy = 0;
  std::size_t yoff = 0;
  Place place = Place::apart;
  CMap<T> x() const { return {buf.data(), rows, cols, Eigen::OuterStride<>(sx)}; }
  WMap<T> y() { return {buf.data() + yoff, rows, cols, Eigen::OuterStride<>(sy)}; }
  Matrix<T> xcopy() const { return x(); }
};

template <class T>
InOut<T> make_io(fuzz::Input& in, Index rows, Index cols, Palette pal, Place place) {
  InOut<T> io;
  io.rows = rows;
  io.cols = cols;
  io.place = place;
  io.sx = rows + (in.u8() % 4 == 0 ? 1 : 0);
  const auto ext = static_cast<std::size_t>(std::max<Index>(cols, 1) * (io.sx + 2));
  io.buf.assign(3 * ext + 8, T(4242));
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i)
      io.buf[static_cast<std::size_t>(j * io.sx + i)] = fuzz::value<T>(in, pal);
  io.sy = io.sx;
  io.yoff = ext + 4;
  const auto n = static_cast<std::size_t>(rows * cols);
  switch (place) {
    case Place::apart:
      break;
    case Place::apart_strided:
      io.sy = rows + 2;
      break;
    case Place::in_place:
      io.yoff = 0;
      break;
    case Place::partial:
      if (n > 1)
        io.yoff =
            1 +
            in.pick(std::min<std::size_t>(
                n - 1, static_cast<std::size_t>(io.sx * std::max<Index>(cols - 1, 0) + rows - 1)));
      else
        io.place = Place::apart;
      break;
    case Place::same_data_other_stride:  // an empty or one-column view has no other layout
      if (cols > 1 && rows > 0) {
        io.yoff = 0;
        io.sy = io.sx + 1;
      } else {
        io.place = Place::apart;
      }
      break;
    default:
      break;
  }
  return io;
}

/// The expectation for an output placed so: refused when it overlaps partly (or aliases with
/// another layout), accepted apart; in place per `in_place_ok`.
inline Expect place_expect(Place p, Expect in_place_ok = Expect::accept) {
  switch (p) {
    case Place::partial:
    case Place::same_data_other_stride:
      return Expect::reject;
    case Place::in_place:
      return in_place_ok;
    default:
      return Expect::accept;
  }
}

inline Expect both(Expect a, Expect b) {
  if (a == Expect::reject || b == Expect::reject) return Expect::reject;
  if (a == Expect::either || b == Expect::either) return Expect::either;
  return Expect::accept;
}

template <class T>
bool same_bits(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || a == b;
}

template <class T>
T pick_p(fuzz::Input& in, bool allow_one) {
  const double table[] = {0.5, 0.1, 0.0, 0.9, 0.25, 1.0, 1e-6, 1.0 - 1e-6, 0.3, 0.7, 0.05, 0.99};
  double p = table[in.u8() % 12];
  if (in.u8() % 16 == 0) p = fuzz::option(in, {-0.1, 1.1, 0.5});
  if (!allow_one && p == 1.0) p = 0.5;
  return static_cast<T>(p);
}

/// Checks that `y` is `x` under a mask with factor `scale`: each y_i is x_i·scale or x_i·0.
template <class T, class X, class Y>
void check_masked(const char* what, const X& x, const Y& y, T scale) {
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i) {
      const T a = x(i, j), b = y(i, j);
      REGULA_FUZZ_CHECK(same_bits(b, a * scale) || same_bits(b, a * T(0)),
                        "%s: y(%lld, %lld) = %.9g is neither x·scale = %.9g nor 0·x", what,
                        static_cast<long long>(i), static_cast<long long>(j),
                        static_cast<double>(b), static_cast<double>(a * scale));
    }
}

template <class A, class B>
void check_equal(const char* what, const A& a, const B& b) {
  REGULA_FUZZ_CHECK(a.rows() == b.rows() && a.cols() == b.cols(), "%s: shapes differ", what);
  for (Index j = 0; j < a.cols(); ++j)
    for (Index i = 0; i < a.rows(); ++i)
      REGULA_FUZZ_CHECK(same_bits(a(i, j), b(i, j)), "%s: (%lld, %lld) is %.9g, want %.9g", what,
                        static_cast<long long>(i), static_cast<long long>(j),
                        static_cast<double>(a(i, j)), static_cast<double>(b(i, j)));
}

/// The layers whose forward(x, y, stream, ctx) / backward(dy, ctx, dx) are elementwise.
template <class T, class Layer>
void run_elementwise(fuzz::Input& in, const char* what, Layer& layer, Index rows, Index cols,
                     Palette pal, Expect in_place_ok, bool known_alias_gap) {
  typename Layer::Context ctx;
  Stream stream(in.u64(), in.u8(), in.u16());
  // A first call of another shape (and maybe mode) fills the context that the second reuses.
  if (in.flag()) {
    const bool training = layer.is_training();
    if (in.flag()) layer.eval();
    InOut<T> io0 = make_io<T>(in, static_cast<Index>(in.u8() % 9),
                              static_cast<Index>(1 + in.u8() % 5), pal, Place::apart);
    (void)fuzz::call(what, Expect::either, [&] { layer.forward(io0.x(), io0.y(), stream, ctx); });
    layer.train(training);
  }
  auto place = static_cast<Place>(in.pick(static_cast<std::size_t>(Place::count)));
  if (known_alias_gap && (place == Place::partial || place == Place::same_data_other_stride) &&
      fuzz::skip_known("layer-alias")) {
    place = Place::apart;
  }
  InOut<T> io = make_io<T>(in, rows, cols, pal, place);
  const Matrix<T> x = io.xcopy();
  const Stream before = stream;
  fuzz::note("%s<%s> %lld x %lld place=%d training=%d", what, fuzz::type_name(T()),
             static_cast<long long>(rows), static_cast<long long>(cols), static_cast<int>(io.place),
             layer.is_training());
  fuzz::note_matrix("x", x);
  if (!fuzz::call(what, both(place_expect(io.place, in_place_ok), Expect::either),
                  [&] { layer.forward(io.x(), io.y(), stream, ctx); })) {
    REGULA_FUZZ_CHECK(io.place == Place::partial || io.place == Place::same_data_other_stride ||
                          io.place == Place::in_place,
                      "%s: forward refused a call with its output apart", what);
    return;
  }
  REGULA_FUZZ_CHECK(io.place != Place::partial && io.place != Place::same_data_other_stride,
                    "%s: forward accepted an output that partly overlaps its input", what);
  const Matrix<T> y = io.y();
  // Deterministic: the same stream position gives the same output.
  {
    Stream again = before;
    typename Layer::Context c2;
    Matrix<T> y2(rows, cols);
    layer.forward(x, y2, again, c2);
    check_equal("forward twice", y2, y);
    REGULA_FUZZ_CHECK(again == stream, "%s: the stream advanced differently on the same call",
                      what);
  }
  if (!layer.is_training()) check_equal("eval is the identity", y, x);
  // Backward of dy = x must give y again (same mask or noise, same arithmetic), except for
  // AlphaDropout whose forward adds the affine shift.
  const unsigned bwd = in.u8() % 4;
  Matrix<T> dx(rows, cols);
  if (bwd == 3) {  // a gradient of another shape is refused
    const Matrix<T> dy = Matrix<T>::Zero(rows + 1, cols);
    Matrix<T> dx2(rows + 1, cols);
    (void)fuzz::call(what, Expect::reject, [&] { layer.backward(dy, ctx, dx2); });
    return;
  }
  Matrix<T> dy = x;
  if (bwd == 2) {  // in place
    (void)fuzz::call(what, Expect::accept, [&] { layer.backward(dy, ctx, dy); });
    dx = dy;
  } else {
    (void)fuzz::call(what, Expect::accept, [&] { layer.backward(x, ctx, dx); });
  }
  if constexpr (!std::is_same_v<Layer, AlphaDropout<T>> &&
                !std::is_same_v<Layer, FeatureAlphaDropout<T>>)
    check_equal("backward(dy = x) == forward", dx, y);
}

/// FeatureAlphaDropout with drop rate p (valid: AlphaDropout accepted it) on a channel count and
/// layout from the input: the elementwise contract, then every value against its channel's keep
/// bit (a·x + b with a·x rounded first, or a·(0·x) + a·α′ + b) and backward(ones) = a·m.
template <class T>
void run_feature_alpha(fuzz::Input& in, Palette pal, double p, Index rows, Index cols) {
  FeatureAlphaDropoutOptions opt{
      p, static_cast<Index>(in.u8() % 5),
      in.flag() ? ChannelLayout::channel_major : ChannelLayout::channel_last};
  if (!fuzz::call("FeatureAlphaDropout()", fuzz::expect(opt.channels >= 1), [&] {
        const FeatureAlphaDropout<T> probe(opt);
        (void)probe;
      }))
    return;
  FeatureAlphaDropout<T> layer(opt);
  if (in.u8() % 5 == 0) layer.eval();
  if (rows % opt.channels != 0) {
    Matrix<T> x = Matrix<T>::Zero(rows, cols), y(rows, cols);
    Stream s(1);
    (void)fuzz::call("FeatureAlphaDropout", Expect::reject, [&] { (void)layer.forward(x, y, s); });
    REGULA_FUZZ_CHECK(s == Stream(1), "FeatureAlphaDropout: a refused call advanced the stream");
    return;
  }
  run_elementwise<T>(in, "FeatureAlphaDropout", layer, rows, cols, pal, Expect::accept, false);
  const Matrix<T> x = fuzz::make_matrix<T>(in, rows, cols, pal);
  Matrix<T> y(rows, cols), f(rows, cols);
  Stream s(in.u64());
  const RandomContext ctx = layer.forward(x, y, s);
  layer.backward(Matrix<T>::Ones(rows, cols), ctx, f);
  const Index C = opt.channels, S = rows / C;
  for (Index n = 0; n < cols; ++n)
    for (Index c = 0; c < C; ++c)
      for (Index sp = 0; sp < S; ++sp) {
        const Index i = opt.layout == ChannelLayout::channel_major ? c * S + sp : sp * C + c;
        const T xv = x(i, n);
        T want = xv, grad = T(1);
        if (ctx.mode == DrawMode::zero) {
          want = xv * T(0);
          grad = T(0);
        } else if (ctx.mode == DrawMode::random) {
          const bool kept = layer.kept(ctx, c, n);
          volatile T ax = layer.a() * xv;  // rounded before b is added
          want = kept ? ax + layer.b() : layer.a() * (xv * T(0)) + layer.dropped_value();
          grad = kept ? layer.a() : T(0);
        }
        REGULA_FUZZ_CHECK(same_bits(y(i, n), want),
                          "FeatureAlphaDropout: y(%lld, %lld) = %.9g, want %.9g (channel %lld)",
                          static_cast<long long>(i), static_cast<long long>(n),
                          static_cast<double>(y(i, n)), static_cast<double>(want),
                          static_cast<long long>(c));
        REGULA_FUZZ_CHECK(f(i, n) == grad,
                          "FeatureAlphaDropout: backward(ones)(%lld, %lld) = %.9g, want %.9g",
                          static_cast<long long>(i), static_cast<long long>(n),
                          static_cast<double>(f(i, n)), static_cast<double>(grad));
      }
}

template <class T>
void run_dropout(fuzz::Input& in, Palette pal, Index rows, Index cols) {
  const double p = static_cast<double>(pick_p<T>(in, true));
  DropoutOptions opt{p, in.flag()};
  if (!fuzz::call("Dropout()", fuzz::expect(p >= 0.0 && p <= 1.0), [&] {
        const Dropout<T> probe(opt);
        (void)probe;
      }))
    return;
  Dropout<T> drop(opt);
  if (in.u8() % 5 == 0) drop.eval();
  const unsigned entry = in.u8() % 3;
  if (entry == 0) {
    run_elementwise<T>(in, "Dropout", drop, rows, cols, pal, Expect::accept, false);
    return;
  }
  // forward, then the value invariant, the stream advance, kept(), and begin + forward_columns.
  DropoutContext ctx;
  Stream stream(in.u64(), in.u8(), in.u16());
  const Stream before = stream;
  const Matrix<T> x = fuzz::make_matrix<T>(in, rows, cols, pal);
  Matrix<T> y(rows, cols);
  fuzz::note("Dropout<%s> p=%g store_mask=%d %lld x %lld", fuzz::type_name(T()), p, opt.store_mask,
             static_cast<long long>(rows), static_cast<long long>(cols));
  fuzz::note_matrix("x", x);
  drop.forward(x, y, stream, ctx);
  REGULA_FUZZ_CHECK(stream.offset() - before.offset() == drop.blocks_used(x.size()),
                    "Dropout: the stream advanced %llu blocks, blocks_used says %llu",
                    static_cast<unsigned long long>(stream.offset() - before.offset()),
                    static_cast<unsigned long long>(drop.blocks_used(x.size())));
  if (drop.is_training())
    check_masked<T>("Dropout", x, y, drop.scale());
  else
    check_equal("Dropout eval", y, x);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) {
      if (x(i, j) == T(0) || !std::isfinite(x(i, j))) continue;
      const bool kept = y(i, j) != T(0);
      REGULA_FUZZ_CHECK(ctx.kept(i, j) == kept || (drop.scale() * x(i, j) == T(0)),
                        "Dropout: kept(%lld, %lld) disagrees with the output",
                        static_cast<long long>(i), static_cast<long long>(j));
    }
  if (entry == 2 && cols > 0) {
    DropoutContext c2;
    Stream s2 = before;
    drop.begin(rows, cols, s2, c2);
    REGULA_FUZZ_CHECK(s2 == stream, "Dropout::begin advanced the stream differently from forward");
    const Index c0 = static_cast<Index>(in.pick(static_cast<std::size_t>(cols)));
    const Index w = 1 + static_cast<Index>(in.pick(static_cast<std::size_t>(cols - c0)));
    Matrix<T> yb(rows, w);
    (void)fuzz::call("Dropout::forward_columns", Expect::accept,
                     [&] { drop.forward_columns(c2, c0, x.middleCols(c0, w), yb); });
    check_equal("forward_columns == forward", yb, y.middleCols(c0, w));
    Matrix<T> yc(rows, 1);
    (void)fuzz::call("Dropout::forward_columns", Expect::reject,
                     [&] { drop.forward_columns(c2, cols, x.leftCols(1), yc); });
  }
}

template <class T>
void run_nested(fuzz::Input& in, Palette pal, Index cols) {
  NestedDropoutOptions opt;
  opt.units = static_cast<Index>(in.u8() % 12);
  switch (in.u8() % 5) {
    case 0:
      opt.prior = NestedPrior::geometric(fuzz::option(in, {0.9, 0.5, 0.99, 0.1}),
                                         in.flag() ? NestedTail::clamp : NestedTail::renormalize);
      break;
    case 1:
      opt.prior = NestedPrior::half_gaussian(fuzz::option(in, {10.0, 1.0, 0.5, 100.0}),
                                             fuzz::option(in, {0.0, 3.0, -5.0}));
      break;
    case 2:
      opt.prior = NestedPrior::uniform();
      break;
    default: {
      std::vector<double> w(in.u8() % 10);
      for (auto& v : w) v = static_cast<double>(in.u8() % 5) - (in.u8() % 32 == 0 ? 1.0 : 0.0);
      opt.prior = NestedPrior::custom(w);
      if (in.flag()) opt.units = 0;
    }
  }
  opt.mode = in.flag() ? NestedIndexMode::per_sample : NestedIndexMode::per_batch;
  // Validity as documented; a half-Gaussian σ so small that every weight underflows is valid
  // by the docs but is known to be refused (issue 20, item 10), hence "either" there.
  const NestedPrior& pr = opt.prior;
  bool ok = true, unsure = false;
  Index K = opt.units;
  if (pr.kind == NestedPrior::Kind::custom) {
    if (K == 0) K = static_cast<Index>(pr.pmf.size());
    double s = 0.0;
    for (double v : pr.pmf) {
      ok = ok && v >= 0.0 && std::isfinite(v);
      s += v;
    }
    ok = ok && !pr.pmf.empty() && static_cast<std::size_t>(K) == pr.pmf.size() && s > 0.0;
  }
  ok = ok && K >= 1;
  if (pr.kind == NestedPrior::Kind::geometric) ok = ok && pr.rho > 0.0 && pr.rho < 1.0;
  if (pr.kind == NestedPrior::Kind::half_gaussian) {
    ok = ok && pr.sigma > 0.0 && std::isfinite(pr.sigma) && std::isfinite(pr.mu);
    unsure = pr.sigma < 1e-3 || std::abs(pr.mu) > 1e6;
  }
  if (!fuzz::call("NestedDropout()", fuzz::expect(ok, unsure), [&] {
        const NestedDropout<T> probe(opt);
        (void)probe;
      }))
    return;
  NestedDropout<T> nd(opt);
  K = nd.units();
  if (in.u8() % 5 == 0) nd.eval();
  const unsigned entry = in.u8() % 3;
  if (entry == 0) {
    run_elementwise<T>(in, "NestedDropout", nd, K, cols, pal, Expect::accept, false);
    return;
  }
  const Matrix<T> x = fuzz::make_matrix<T>(in, K, cols, pal);
  Matrix<T> y(K, cols);
  if (entry == 2) {
    const Index k = static_cast<Index>(in.pick(static_cast<std::size_t>(K) + 2));
    if (!fuzz::call("NestedDropout::truncate", fuzz::expect(k <= K), [&] { nd.truncate(x, k, y); }))
      return;
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < K; ++i)
        REGULA_FUZZ_CHECK(same_bits(y(i, j), i < k ? x(i, j) : x(i, j) * T(0)),
                          "NestedDropout::truncate: wrong prefix");
    return;
  }
  NestedDropoutContext ctx;
  Stream stream(in.u64());
  const Index frozen = static_cast<Index>(in.pick(static_cast<std::size_t>(K) + 2));
  if (!fuzz::call("NestedDropout", fuzz::expect(frozen <= K),
                  [&] { nd.forward(x, y, stream, ctx, frozen); }))
    return;
  for (Index j = 0; j < cols; ++j) {
    const Index b = ctx.kept(j);
    REGULA_FUZZ_CHECK(
        b >= 1 && b <= K && (b >= frozen || !nd.is_training()),
        "NestedDropout: kept(%lld) = %lld outside [max(1, frozen), K] (K = %lld, frozen = %lld)",
        static_cast<long long>(j), static_cast<long long>(b), static_cast<long long>(K),
        static_cast<long long>(frozen));
    for (Index i = 0; i < K; ++i)
      REGULA_FUZZ_CHECK(same_bits(y(i, j), i < b ? x(i, j) : x(i, j) * T(0)),
                        "NestedDropout: not a prefix mask");
  }
}

template <class T>
void run_drop_connect(fuzz::Input& in, Palette pal, Index in_f, Index batch) {
  const double p = static_cast<double>(pick_p<T>(in, true));
  DropConnectOptions opt{p};
  if (!fuzz::call("DropConnect()", fuzz::expect(p >= 0.0 && p <= 1.0), [&] {
        const DropConnect<T> probe(opt);
        (void)probe;
      }))
    return;
  DropConnect<T> dc(opt);
  if (in.u8() % 5 == 0) dc.eval();
  const Index out_f = static_cast<Index>(1 + in.u8() % 9);
  in_f = std::max<Index>(in_f, 1) + (in.u8() % 8 == 0 ? 64 : 0);  // more than one panel
  const Matrix<T> x = fuzz::make_matrix<T>(in, in_f, batch, pal);
  const Matrix<T> W = fuzz::make_matrix<T>(in, out_f, in_f, pal);
  const Vector<T> b = fuzz::make_matrix<T>(in, out_f, 1, pal);
  const unsigned fault = in.u8() % 8;
  Matrix<T> y(out_f + (fault == 1 ? 1 : 0), batch);
  typename DropConnect<T>::Context ctx;
  Stream stream(in.u64());
  const Stream before = stream;
  fuzz::note("DropConnect<%s> p=%g in=%lld out=%lld batch=%lld fault=%u training=%d",
             fuzz::type_name(T()), p, static_cast<long long>(in_f), static_cast<long long>(out_f),
             static_cast<long long>(batch), fault, dc.is_training());
  if (batch == 0) {  // an empty batch is refused (it reached undefined behaviour in backward)
    (void)fuzz::call("DropConnect", Expect::reject, [&] { dc.forward(x, W, b, y, stream, ctx); });
    return;
  }
  if (fault == 2 && !fuzz::skip_known("layer-alias")) {  // y inside x's storage
    Matrix<T> xs = x;
    Eigen::Map<Matrix<T>> yin(xs.data(), std::min<Index>(out_f, in_f), 1);
    (void)fuzz::call("DropConnect", Expect::reject, [&] {
      dc.forward(xs.topRows(yin.rows()).leftCols(1), W.topLeftCorner(yin.rows(), yin.rows()),
                 b.head(yin.rows()), yin, stream, ctx);
    });
    return;
  }
  if (!fuzz::call("DropConnect", fuzz::expect(fault != 1),
                  [&] { dc.forward(x, W, b, y, stream, ctx); }))
    return;
  Matrix<T> dx(in_f, batch), dW(out_f, in_f);
  Vector<T> db(out_f);
  const Matrix<T> dy = fuzz::make_matrix<T>(in, out_f, batch, Palette::moderate);
  if (fault == 3) {
    Matrix<T> Wbad(out_f, in_f + 1);
    (void)fuzz::call("DropConnect::backward", Expect::reject,
                     [&] { dc.backward(x, Wbad, dy, ctx, dx, dW, db); });
    return;
  }
  if (fault == 4 && !fuzz::skip_known("layer-alias")) {  // dW = W
    Matrix<T> Wc = W;
    (void)fuzz::call("DropConnect::backward", Expect::reject,
                     [&] { dc.backward(x, Wc, dy, ctx, dx, Wc, db); });
    return;
  }
  (void)fuzz::call("DropConnect::backward", Expect::accept,
                   [&] { dc.backward(x, W, dy, ctx, dx, dW, db); });
  if (pal != Palette::moderate) return;
  // The mask the call used, read back with x = 1, dy = 1 on a one-column call at the same position.
  Matrix<T> mask = Matrix<T>::Ones(out_f, in_f);
  if (dc.is_training()) {
    typename DropConnect<T>::Context c1;
    Stream s1 = before;
    const Matrix<T> ones_x = Matrix<T>::Ones(in_f, 1), ones_dy = Matrix<T>::Ones(out_f, 1);
    Matrix<T> y1(out_f, 1), dx1(in_f, 1);
    Vector<T> db1(out_f);
    dc.forward(ones_x, W, b, y1, s1, c1);
    dc.backward(ones_x, W, ones_dy, c1, dx1, mask, db1);
    REGULA_FUZZ_CHECK(s1 == stream, "DropConnect: the stream advance depends on the batch");
    for (Index j = 0; j < in_f; ++j)
      for (Index i = 0; i < out_f; ++i)
        REGULA_FUZZ_CHECK(mask(i, j) == T(0) || mask(i, j) == dc.scale(),
                          "DropConnect: mask value %.9g not in {0, scale}",
                          static_cast<double>(mask(i, j)));
  }
  const Matrix<double> Wm = (mask.array() * W.array()).matrix().template cast<double>();
  const Matrix<double> yref =
      (Wm * x.template cast<double>()).colwise() + b.template cast<double>();
  const Matrix<double> dxref = Wm.transpose() * dy.template cast<double>();
  const Matrix<double> dWref =
      (mask.template cast<double>().array() *
       (dy.template cast<double>() * x.template cast<double>().transpose()).array())
          .matrix();
  const double sc =
      (W.cwiseAbs().template cast<double>() * x.cwiseAbs().template cast<double>()).maxCoeff() *
          static_cast<double>(dc.scale()) +
      static_cast<double>(b.cwiseAbs().maxCoeff()) + 1.0;
  const double tol = fuzz::sum_tol<T>(static_cast<std::size_t>(in_f), sc) * 4.0;
  REGULA_FUZZ_CHECK((y.template cast<double>() - yref).cwiseAbs().maxCoeff() <= tol,
                    "DropConnect: forward differs from the masked dense layer");
  const double sd =
      (W.cwiseAbs().template cast<double>().transpose() * dy.cwiseAbs().template cast<double>())
              .maxCoeff() *
          static_cast<double>(dc.scale()) +
      1.0;
  REGULA_FUZZ_CHECK((dx.template cast<double>() - dxref).cwiseAbs().maxCoeff() <=
                        fuzz::sum_tol<T>(static_cast<std::size_t>(out_f), sd) * 4.0,
                    "DropConnect: dx differs from the masked dense layer");
  const double sw =
      (dy.cwiseAbs().template cast<double>() * x.cwiseAbs().template cast<double>().transpose())
              .maxCoeff() *
          static_cast<double>(dc.scale()) +
      1.0;
  REGULA_FUZZ_CHECK((dW.template cast<double>() - dWref).cwiseAbs().maxCoeff() <=
                        fuzz::sum_tol<T>(static_cast<std::size_t>(batch), sw) * 4.0,
                    "DropConnect: dW differs from mask ⊙ dy xᵀ");
}

template <class T>
void run_multi_sample(fuzz::Input& in, Palette pal) {
  MultiSampleDropoutOptions opt;
  opt.samples = static_cast<Index>(in.u8() % 5);  // 0 is refused
  opt.p = static_cast<double>(pick_p<T>(in, true));
  if (in.u8() % 4 == 0) {
    opt.rates.resize(static_cast<std::size_t>(std::max<Index>(opt.samples, 0)) +
                     (in.u8() % 8 == 0 ? 1 : 0));
    for (auto& r : opt.rates) r = static_cast<double>(pick_p<T>(in, true));
  }
  opt.reduction =
      in.flag() ? MultiSampleReduction::mean_of_losses : MultiSampleReduction::mean_of_logits;
  bool ok = opt.samples >= 1 && opt.p >= 0.0 && opt.p <= 1.0 &&
            (opt.rates.empty() || opt.rates.size() == static_cast<std::size_t>(opt.samples));
  for (double r : opt.rates) ok = ok && r >= 0.0 && r <= 1.0;
  using MSD = MultiSampleDropout<T, PerSampleCrossEntropy<>>;
  if (!fuzz::call("MultiSampleDropout()", fuzz::expect(ok), [&] {
        const MSD probe(opt);
        (void)probe;
      }))
    return;
  MSD msd(opt);
  typename MSD::Context ctx;
  Stream stream(in.u64());
  auto shape = [&](Index& K, Index& B, Index& C) {
    K = static_cast<Index>(in.u8() % 10);
    if (K == 0 && fuzz::skip_known("msd-empty")) K = 1;
    B = static_cast<Index>(in.u8() % 7);
    C = in.u8() % 4 == 0 ? static_cast<Index>(60 + in.u8() % 10)
                         : static_cast<Index>(1 + in.u8() % 6);
  };
  // Up to three forward calls on one context, in any modes and shapes; backward follows the last.
  const unsigned calls = 1 + in.u8() % 3;
  Index K = 0, B = 0, C = 0;
  Matrix<T> h, W;
  Vector<T> b;
  Labels y;
  Stream last = stream;
  bool filled = false, prev_tiled = false;
  for (unsigned c = 0; c < calls; ++c) {
    shape(K, B, C);
    const bool training = in.u8() % 4 != 0;
    msd.train(training);
    if (filled && prev_tiled && !training && fuzz::skip_known("msd-reuse"))
      ctx = typename MSD::Context();
    h = fuzz::make_matrix<T>(in, K, B, pal);
    W = fuzz::make_matrix<T>(in, C, K, pal);
    b = fuzz::make_matrix<T>(in, C, 1, pal);
    y.resize(B);
    for (Index j = 0; j < B; ++j)
      y[j] = static_cast<std::int64_t>(in.pick(static_cast<std::size_t>(C)));
    const bool bad_label = B > 0 && in.u8() % 16 == 0;
    if (bad_label) y[0] = C;
    last = stream;
    fuzz::note(
        "MultiSampleDropout<%s> call %u: M=%lld p=%g rates=%zu reduction=%d K=%lld B=%lld C=%lld "
        "training=%d",
        fuzz::type_name(T()), c, static_cast<long long>(opt.samples), opt.p, opt.rates.size(),
        static_cast<int>(opt.reduction), static_cast<long long>(K), static_cast<long long>(B),
        static_cast<long long>(C), training);
    T loss = T(0);
    const bool accepted =
        fuzz::call("MultiSampleDropout", fuzz::expect(B >= 1 && !bad_label, K == 0),
                   [&] { loss = msd.forward(h, W, b, y, stream, ctx); });
    if (!accepted) {
      filled = false;
      continue;
    }
    filled = true;
    prev_tiled = training && C < 64;
    // Finite h, W and b can still make an infinite logit (or inf − inf in one dot product) once
    // the product's size passes the largest T: the loss is then NaN by IEEE arithmetic. The
    // check needs a bound on every logit below it (the scale 1/(1 − p) included).
    const auto amax = [](const auto& m) {
      return m.size() == 0 ? 0.0 : static_cast<double>(m.cwiseAbs().maxCoeff());
    };
    // The largest factor of a kept element is the layers' own scale (2¹⁶/t of the rounded keep
    // threshold, never 1/(1 − p) computed here): with `rates` set, p is ignored, and a bound
    // taken from p = 1 missed a sample of rate 1 − 1e-6 and its factor 65536 (campaign,
    // 2 December).
    double keep = 1.0;
    if (training) {
      for (std::size_t m = 0; m < static_cast<std::size_t>(opt.samples); ++m)
        keep = std::max(keep, static_cast<double>(msd.dropout(m).scale()));
    }
    const double logit_bound = amax(W) * amax(h) * keep * static_cast<double>(K) + amax(b);
    // The masked copies h·m/(1 − p) must be finite too: one past the largest T is inf, and a
    // zero weight times it is NaN although the bound above is 0 (campaign, 2 December).
    const double largest = static_cast<double>(std::numeric_limits<T>::max());
    const bool logits_finite = logit_bound < 0.5 * largest && amax(h) * keep < 0.5 * largest;
    if (fuzz::all_finite(h) && fuzz::all_finite(W) && fuzz::all_finite(b) && logits_finite) {
      REGULA_FUZZ_CHECK(!std::isnan(loss) && loss >= T(0),
                        "MultiSampleDropout: loss %.9g for finite input",
                        static_cast<double>(loss));
    }
  }
  Matrix<T> dh(K, B), dW(C, K);
  Vector<T> db(C);
  const unsigned bwd = in.u8() % 6;
  if (bwd == 0) {  // outputs of another shape
    Matrix<T> dh2(K + 1, B);
    (void)fuzz::call("MultiSampleDropout::backward", Expect::reject,
                     [&] { msd.backward(W, ctx, dh2, dW, db); });
    return;
  }
  if (bwd == 1 && C > 0 && K > 0 && !fuzz::skip_known("layer-alias")) {  // dW sharing W's storage
    Matrix<T> Wc = W;
    (void)fuzz::call("MultiSampleDropout::backward", Expect::reject,
                     [&] { msd.backward(Wc, ctx, dh, Wc, db); });
    return;
  }
  if (!fuzz::call("MultiSampleDropout::backward", filled ? Expect::accept : Expect::either,
                  [&] { msd.backward(W, ctx, dh, dW, db); })) {
    return;
  }
  if (!filled) return;
  (void)fuzz::call("MultiSampleDropout::backward", Expect::reject,
                   [&] { msd.backward(W, ctx, dh, dW, db); });
  if (pal != Palette::moderate || K == 0) return;
  // The loop the class documents: M dropout passes on the same stream, the head, the loss.
  const Index M = msd.samples();
  Stream s = last;
  const bool training = msd.is_training();
  Matrix<double> dWr = Matrix<double>::Zero(C, K), dhr = Matrix<double>::Zero(K, B);
  Vector<double> dbr = Vector<double>::Zero(C);
  double Lr = 0.0;
  std::vector<Matrix<T>> masked;
  std::vector<DropoutContext> dctx(static_cast<std::size_t>(M));
  if (!training) {
    masked.push_back(h);
  } else {
    for (Index m = 0; m < M; ++m) {
      Matrix<T> hm(K, B);
      (void)msd.dropout(static_cast<std::size_t>(m))
          .forward(h, hm, s, dctx[static_cast<std::size_t>(m)]);
      masked.push_back(hm);
    }
  }
  auto head_loss = [&](const Matrix<T>& hin, double scale, Matrix<double>& G) {
    const Matrix<T> z = (W * hin).colwise() + b;
    Vector<T> l(B);
    Matrix<T> dz(C, B);
    cross_entropy_per_sample(z, y, l, dz);
    G = dz.template cast<double>() * scale;
    return static_cast<double>(l.sum()) * scale;
  };
  const bool by_losses = training && opt.reduction == MultiSampleReduction::mean_of_losses;
  double hscale = 0.0;
  if (by_losses) {
    for (Index m = 0; m < M; ++m) {
      Matrix<double> G;
      Lr += head_loss(masked[static_cast<std::size_t>(m)], 1.0 / static_cast<double>(M * B), G);
      dWr += G * masked[static_cast<std::size_t>(m)].template cast<double>().transpose();
      dbr += G.rowwise().sum();
      const Matrix<T> gh = (W.template cast<double>().transpose() * G).template cast<T>();
      Matrix<T> dm(K, B);
      msd.dropout(static_cast<std::size_t>(m)).backward(gh, dctx[static_cast<std::size_t>(m)], dm);
      dhr += dm.template cast<double>();
    }
  } else {
    Matrix<T> hbar = masked[0];
    for (std::size_t m = 1; m < masked.size(); ++m) hbar += masked[m];
    hbar *= T(1) / static_cast<T>(masked.size());
    Matrix<double> G;
    Lr = head_loss(hbar, 1.0 / static_cast<double>(B), G);
    dWr = G * hbar.template cast<double>().transpose();
    dbr = G.rowwise().sum();
    const Matrix<T> gh = (W.template cast<double>().transpose() * G).template cast<T>();
    if (!training) {
      dhr = gh.template cast<double>();
    } else {
      for (Index m = 0; m < M; ++m) {
        Matrix<T> dm(K, B);
        msd.dropout(static_cast<std::size_t>(m))
            .backward(gh, dctx[static_cast<std::size_t>(m)], dm);
        dhr += dm.template cast<double>() / static_cast<double>(M);
      }
    }
  }
  hscale = 1.0;
  for (std::size_t m = 0; m < static_cast<std::size_t>(M); ++m)
    hscale = std::max(hscale, static_cast<double>(msd.dropout(m).scale()));
  const double eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  const double mag =
      (W.cwiseAbs().template cast<double>() * h.cwiseAbs().template cast<double>()).maxCoeff() *
          hscale +
      static_cast<double>(b.cwiseAbs().maxCoeff()) + 1.0;
  auto close = [&](const char* what, const auto& got, const auto& want, double scale) {
    const double err = (got.template cast<double>() - want).cwiseAbs().maxCoeff();
    const double tol = 64.0 * eps * static_cast<double>(K + C + 4) * scale * mag;
    REGULA_FUZZ_CHECK(err <= tol,
                      "MultiSampleDropout: %s differs from the loop by %.3g (tolerance %.3g)", what,
                      err, tol);
  };
  const double gmax =
      (W.cwiseAbs().maxCoeff() + h.cwiseAbs().maxCoeff() + T(1)) * static_cast<T>(hscale) > T(0)
          ? static_cast<double>(W.cwiseAbs().maxCoeff() + h.cwiseAbs().maxCoeff() + T(1)) * hscale
          : 1.0;
  (void)Lr;
  close("dW", dW, dWr, gmax);
  close("db", db, dbr, 1.0);
  close("dh", dh, dhr, gmax);
}

template <class T>
void run(fuzz::Input& in) {
  const unsigned which = in.u8() % 8;
  const Palette pal = fuzz::palette(in);
  Index rows = static_cast<Index>(in.u8() % 12);
  const Index cols = static_cast<Index>(in.u8() % 9);
  if (in.u8() % 8 == 0) rows += 128;  // past one dropout tile
  switch (which) {
    case 0:
      run_dropout<T>(in, pal, rows, cols);
      break;
    case 1: {
      const double p = static_cast<double>(pick_p<T>(in, true));
      GaussianDropoutOptions opt{p};
      if (!fuzz::call("GaussianDropout()", fuzz::expect(p >= 0.0 && p < 1.0), [&] {
            const GaussianDropout<T> probe(opt);
            (void)probe;
          }))
        return;
      GaussianDropout<T> layer(opt);
      if (in.u8() % 5 == 0) layer.eval();
      run_elementwise<T>(in, "GaussianDropout", layer, rows, cols, pal, Expect::accept, true);
      break;
    }
    case 2: {
      const double p = static_cast<double>(pick_p<T>(in, true));
      AlphaDropoutOptions opt{p};
      if (!fuzz::call("AlphaDropout()", fuzz::expect(p >= 0.0 && p <= 1.0), [&] {
            const AlphaDropout<T> probe(opt);
            (void)probe;
          }))
        return;
      AlphaDropout<T> layer(opt);
      if (in.u8() % 5 == 0) layer.eval();
      run_elementwise<T>(in, "AlphaDropout", layer, rows, cols, pal, Expect::accept, true);
      // FeatureAlphaDropout reads the bytes after AlphaDropout's, so that the inputs written
      // before it existed replay as they did.
      run_feature_alpha<T>(in, pal, p, rows, cols);
      break;
    }
    case 3: {
      const double p = static_cast<double>(pick_p<T>(in, true));
      ChannelDropoutOptions opt{
          p, static_cast<Index>(in.u8() % 5),
          in.flag() ? ChannelLayout::channel_major : ChannelLayout::channel_last};
      if (!fuzz::call("ChannelDropout()", fuzz::expect(p >= 0.0 && p <= 1.0 && opt.channels >= 1),
                      [&] {
                        const ChannelDropout<T> probe(opt);
                        (void)probe;
                      })) {
        return;
      }
      ChannelDropout<T> layer(opt);
      if (in.u8() % 5 == 0) layer.eval();
      if (rows % opt.channels != 0) {
        Matrix<T> x = Matrix<T>::Zero(rows, cols), y(rows, cols);
        Stream s(1);
        (void)fuzz::call("ChannelDropout", Expect::reject, [&] { (void)layer.forward(x, y, s); });
        return;
      }
      run_elementwise<T>(in, "ChannelDropout", layer, rows, cols, pal, Expect::either, true);
      break;
    }
    case 4: {
      const double p = static_cast<double>(pick_p<T>(in, true));
      DropPathOptions opt{p, in.flag() ? DropPathMode::row : DropPathMode::batch};
      if (!fuzz::call("DropPath()", fuzz::expect(p >= 0.0 && p <= 1.0), [&] {
            const DropPath<T> probe(opt);
            (void)probe;
          }))
        return;
      DropPath<T> layer(opt);
      if (in.u8() % 5 == 0) layer.eval();
      if (in.flag()) {
        run_elementwise<T>(in, "DropPath", layer, rows, cols, pal, Expect::accept, true);
        return;
      }
      // forward_residual: out = x + f ⊙ m/(1 − p), the mask read back by backward(ones).
      const Matrix<T> x = fuzz::make_matrix<T>(in, rows, cols, pal),
                      f = fuzz::make_matrix<T>(in, rows, cols, pal);
      Matrix<T> out(rows, cols), d(rows, cols);
      RandomContext ctx;
      Stream s(in.u64());
      (void)fuzz::call("DropPath::forward_residual", Expect::accept,
                       [&] { layer.forward_residual(x, f, out, s, ctx); });
      layer.backward(Matrix<T>::Ones(rows, cols), ctx, d);
      for (Index j = 0; j < cols; ++j)
        for (Index i = 0; i < rows; ++i) {
          REGULA_FUZZ_CHECK(
              d(i, j) == d(0, j) && (opt.mode == DropPathMode::row || d(i, j) == d(0, 0)),
              "DropPath: the mask is not constant over a sample (or the batch)");
          const T want = x(i, j) + f(i, j) * d(i, j);
          const T tol =
              std::numeric_limits<T>::epsilon() * (std::abs(x(i, j)) + std::abs(f(i, j) * d(i, j)));
          REGULA_FUZZ_CHECK(
              same_bits(out(i, j), want) || std::abs(out(i, j) - want) <= tol,
              "DropPath::forward_residual: out(%lld, %lld) = %.9g, want x + f·m/(1 − p) = %.9g",
              static_cast<long long>(i), static_cast<long long>(j), static_cast<double>(out(i, j)),
              static_cast<double>(want));
        }
      break;
    }
    case 5:
      run_drop_connect<T>(in, pal, rows % 12, cols);
      break;
    case 6:
      run_nested<T>(in, pal, cols);
      break;
    default:
      run_multi_sample<T>(in, pal);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::notes().clear();
  fuzz::Input in(data, size);
  if (in.flag())
    run<float>(in);
  else
    run<double>(in);
  return 0;
}
