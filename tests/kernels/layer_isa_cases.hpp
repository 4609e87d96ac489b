// Reproducibility of the layers' values across instruction sets, compiled into every binary that
// includes it: test_kernels_dropout (the build's own flags) and test_isa_sse2/avx2/avx512. Each
// binary hashes the outputs of fixed calls and compares the hash with one constant, so a build
// whose arithmetic rounds differently (a fused multiply-add where another rounds twice) fails.
// Outputs that come from matrix products are checked against the product error bound that
// docs/random.md states instead.
#ifndef REGULA_TESTS_KERNELS_LAYER_ISA_CASES_HPP
#define REGULA_TESTS_KERNELS_LAYER_ISA_CASES_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "regula/layers/alpha_dropout.hpp"
#include "regula/layers/channel_dropout.hpp"
#include "regula/layers/drop_connect.hpp"
#include "regula/layers/drop_path.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/feature_alpha_dropout.hpp"
#include "regula/layers/gaussian_dropout.hpp"
#include "regula/layers/multi_sample_dropout.hpp"
#include "regula/layers/nested_dropout.hpp"

#include "support/catch.hpp"

namespace regula::test::isa {

/// FNV-1a over the bits of every value, every NaN hashed as one value (payloads are not part of
/// the promise).
class Hash {
 public:
  template <class T>
  void add(const T* v, Index n) {
    for (Index i = 0; i < n; ++i) {
      T x = v[i];
      if (std::isnan(x)) x = std::numeric_limits<T>::quiet_NaN();
      unsigned char bytes[sizeof(T)];
      std::memcpy(bytes, &x, sizeof(T));
      for (const unsigned char b : bytes) h_ = (h_ ^ b) * 0x100000001B3ULL;
    }
  }
  template <class M>
  void add(const M& m) {
    for (Index j = 0; j < m.cols(); ++j) add(m.col(j).data(), m.rows());
  }
  void add_bit(bool b) { h_ = (h_ ^ (b ? 1U : 0U)) * 0x100000001B3ULL; }
  [[nodiscard]] std::uint64_t value() const noexcept { return h_; }

 private:
  std::uint64_t h_ = 0xCBF29CE484222325ULL;
};

/// Inputs exact in float: k/256 for integers |k| ≤ 2000 from a fixed permutation, with a NaN, an
/// infinity and a subnormal among them.
template <class T>
Matrix<T> inputs(Index rows, Index cols, std::uint32_t salt) {
  Matrix<T> x(rows, cols);
  for (Index i = 0; i < x.size(); ++i) {
    const auto k =
        static_cast<std::int64_t>((static_cast<std::uint64_t>(i) * 2654435761ULL + salt) % 4001) -
        2000;
    x(i) = static_cast<T>(k) / T(256);
  }
  if (x.size() > 10) {
    x(3) = std::numeric_limits<T>::quiet_NaN();
    x(7) = std::numeric_limits<T>::infinity();
    x(9) = std::numeric_limits<T>::denorm_min();
  }
  return x;
}

/// Hashes of the elementwise layers' outputs on fixed inputs: 37 × 29 elements (whole four-tile
/// steps, single tiles and ragged column ends; 36 rows of 6 channels for ChannelDropout and
/// FeatureAlphaDropout), as a
/// block of a larger matrix so columns are not adjacent.
template <class T>
std::uint64_t elementwise_hash(const char* layer) {
  const std::string name(layer);
  const Index R = name == "ChannelDropout" || name == "FeatureAlphaDropout" ? 36 : 37, C = 29;
  Matrix<T> xbig = inputs<T>(R + 3, C, 11);
  const auto x = xbig.topRows(R);
  const Matrix<T> r = inputs<T>(R, C, 5);
  Matrix<T> y(R, C), dx(R, C);
  const Matrix<T> dy = inputs<T>(R, C, 23);
  Hash h;
  Stream s(2024, 7, 3);
  if (name == "Dropout") {
    const Dropout<T> d(DropoutOptions{0.3});
    const auto ctx = d.forward(x, y, s);
    d.backward(dy, ctx, dx);
  } else if (name == "AlphaDropout") {
    const AlphaDropout<T> d(AlphaDropoutOptions{0.2});
    const auto ctx = d.forward(x, y, s);
    d.backward(dy, ctx, dx);
  } else if (name == "ChannelDropout") {
    const ChannelDropout<T> d(ChannelDropoutOptions{0.3, 6, ChannelLayout::channel_last});
    const auto ctx = d.forward(x, y, s);
    d.backward(dy, ctx, dx);
  } else if (name == "FeatureAlphaDropout") {
    const FeatureAlphaDropout<T> d(FeatureAlphaDropoutOptions{0.2, 6});
    const auto ctx = d.forward(x, y, s);
    d.backward(dy, ctx, dx);
  } else if (name == "DropPath") {
    const DropPath<T> d(DropPathOptions{0.3});
    RandomContext ctx;
    d.forward_residual(r, x, y, s, ctx);
    d.backward(dy, ctx, dx);
  } else if (name == "NestedDropout") {
    const NestedDropout<T> d(NestedDropoutOptions{R, NestedPrior::geometric(0.9)});
    const auto ctx = d.forward(x, y, s);
    d.backward(dy, ctx, dx);
    const double mean = d.mean_kept();  // a double, the same on every ISA too
    h.add(&mean, 1);
  }
  h.add(y);
  h.add(dx);
  return h.value();
}

/// Inputs without NaN or infinity, for the product bounds.
template <class T>
Matrix<T> finite_inputs(Index rows, Index cols, std::uint32_t salt) {
  Matrix<T> x = inputs<T>(rows, cols, salt);
  for (Index i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x(i))) x(i) = T(0.75);
  }
  return x;
}

/// γₙ = n·u/(1 − n·u), u the unit roundoff of T: the bound of any n-term sum of rounded products
/// in any order, fused or not, relative to the sum of the terms' magnitudes.
template <class T>
double gamma(Index n) {
  const double u = static_cast<double>(std::numeric_limits<T>::epsilon()) / 2;
  const double nu = static_cast<double>(n) * u;
  return nu / (1 - nu);
}

/// A loss that ignores the logits: the product-bound test looks at the logits only.
struct ZeroLoss {
  template <class T>
  void operator()(const MatrixCRef<T>&, const LabelView&, VectorRef<T> loss,
                  MatrixRef<T> dz) const {
    loss.setZero();
    dz.setZero();
  }
};

}  // namespace regula::test::isa

/// The one constant per layer and type that every build must reproduce (produced by the SSE2
/// build; AVX2+FMA and AVX-512 builds must give the same).
struct IsaExpected {
  const char* layer;
  std::uint64_t f32;
  std::uint64_t f64;
};

inline constexpr IsaExpected isa_expected[] = {
    {"Dropout", 0x8C84A0F6EE43CA16ULL, 0xB81E47C709DB3039ULL},
    {"AlphaDropout", 0x5B2BEA08A66E9FB1ULL, 0x72769659D308DC03ULL},
    {"ChannelDropout", 0x9044067F7467CB04ULL, 0x5A0B295821DD409DULL},
    {"FeatureAlphaDropout", 0x408A2345D8E64120ULL, 0x351EC50EBB7F0EDBULL},
    {"DropPath", 0x62A54AD0208F47CDULL, 0xA5048F710787072DULL},
    {"NestedDropout", 0x918A822C07A050EDULL, 0xAA41F4C75674A576ULL},
};

TEMPLATE_TEST_CASE("Elementwise layers give the same bits on every instruction set",
                   "[layers][isa][repro]", float, double) {
  using T = TestType;
  for (const IsaExpected& e : isa_expected) {
    const std::uint64_t got = regula::test::isa::elementwise_hash<T>(e.layer);
    const std::uint64_t want = std::is_same_v<T, float> ? e.f32 : e.f64;
    INFO(e.layer << " (" << (std::is_same_v<T, float> ? "float" : "double") << "): hash 0x"
                 << std::hex << got);
    CHECK(got == want);
  }
}

TEMPLATE_TEST_CASE("Gaussian dropout values are the two-rounding formula on every instruction set",
                   "[layers][isa][repro]", float, double) {
  // The factor 1 + σz was fused into one rounding on FMA builds. Here the expected value rounds
  // σz through a volatile, so equality holds on every ISA only if the layer rounds twice too; z
  // itself comes from the C library's log, cos and sin, which is why this layer is checked
  // against the formula rather than a constant shared across machines.
  using T = TestType;
  const regula::GaussianDropout<T> gd(regula::GaussianDropoutOptions{0.45});
  const regula::Index R = 37, C = 29;
  const regula::Matrix<T> x = regula::test::isa::inputs<T>(R, C, 11);
  regula::Matrix<T> y(R, C), want(R, C), dx(R, C);
  const regula::Stream start(2024, 7, 3);
  regula::Stream s = start;
  const auto ctx = gd.forward(x, y, s);
  regula::Index fused_would_differ = 0;
  for (regula::Index i = 0; i < x.size(); ++i) {
    regula::Stream at(start.seed(), start.subsequence(),
                      start.offset() + static_cast<std::uint64_t>(i / 4));
    double z[4];
    at.normal(z, 4);
    volatile double sz = gd.stddev() * z[i % 4];
    want(i) = x(i) * static_cast<T>(1.0 + sz);
    if (static_cast<T>(std::fma(gd.stddev(), z[i % 4], 1.0)) != static_cast<T>(1.0 + sz))
      ++fused_would_differ;
  }
  regula::test::isa::Hash a, b;
  a.add(y);
  b.add(want);
  CHECK(a.value() == b.value());
  gd.backward(x, ctx, dx);
  regula::test::isa::Hash c;
  c.add(dx);
  CHECK(c.value() == b.value());
  if (std::is_same_v<T, double>) CHECK(fused_would_differ > 0);  // the test can tell the two apart
}

TEMPLATE_TEST_CASE("DropConnect values are within the product error bound of the exact ones",
                   "[layers][isa][repro]", float, double) {
  // Eigen's products sum in an order and with fused multiply-adds that depend on the instruction
  // set: the values are not bitwise identical across builds, but every element is within
  // γₙ·Σ|terms| of the exact value (n terms), so two builds agree within twice that.
  using T = TestType;
  using regula::Index;
  using LD = long double;
  const Index in = 150, out = 7, B = 5;
  const regula::Matrix<T> W = regula::test::isa::finite_inputs<T>(out, in, 1);
  const regula::Matrix<T> x = regula::test::isa::finite_inputs<T>(in, B, 2);
  const regula::Matrix<T> dy = regula::test::isa::finite_inputs<T>(out, B, 4);
  const regula::Vector<T> b = regula::test::isa::finite_inputs<T>(out, 1, 3);
  const regula::DropConnect<T> dc(regula::DropConnectOptions{0.4});
  regula::DropConnectContext<T> ctx;
  regula::Matrix<T> y(out, B), dx(in, B), dW(out, in);
  regula::Vector<T> db(out);
  regula::Stream s(99, 1);
  dc.forward(x, W, b, y, s, ctx);
  dc.backward(x, W, dy, ctx, dx, dW, db);
  regula::kernels::KeepBits bits{ctx.random.draw()};
  regula::Matrix<T> Wm(out, in);  // the masked weights, one rounding each: the same on every ISA
  for (Index i = 0; i < W.size(); ++i)
    Wm(i) = W(i) * (bits(static_cast<std::uint64_t>(i)) ? dc.scale() : T(0));
  double worst = 0;  // the largest error as a fraction of its bound
  for (Index n = 0; n < B; ++n) {
    for (Index j = 0; j < out; ++j) {
      LD exact = b(j), mag = std::abs(static_cast<LD>(b(j)));
      for (Index k = 0; k < in; ++k) {
        exact += static_cast<LD>(Wm(j, k)) * x(k, n);
        mag += std::abs(static_cast<LD>(Wm(j, k)) * x(k, n));
      }
      const double bound = regula::test::isa::gamma<T>(in + 2) * static_cast<double>(mag);
      worst = std::max(worst, static_cast<double>(std::abs(y(j, n) - exact)) / bound);
    }
    for (Index k = 0; k < in; ++k) {
      LD exact = 0, mag = 0;
      for (Index j = 0; j < out; ++j) {
        exact += static_cast<LD>(Wm(j, k)) * dy(j, n);
        mag += std::abs(static_cast<LD>(Wm(j, k)) * dy(j, n));
      }
      const double bound = regula::test::isa::gamma<T>(out + 1) * static_cast<double>(mag);
      if (bound > 0)
        worst = std::max(worst, static_cast<double>(std::abs(dx(k, n) - exact)) / bound);
    }
  }
  for (Index k = 0; k < in; ++k) {
    for (Index j = 0; j < out; ++j) {
      const LD f = bits(static_cast<std::uint64_t>(k * out + j)) ? static_cast<LD>(dc.scale()) : 0;
      LD exact = 0, mag = 0;
      for (Index n = 0; n < B; ++n) {
        exact += static_cast<LD>(dy(j, n)) * x(k, n) * f;
        mag += std::abs(static_cast<LD>(dy(j, n)) * x(k, n) * f);
      }
      const double bound = regula::test::isa::gamma<T>(B + 2) * static_cast<double>(mag);
      if (bound > 0) {
        worst = std::max(worst, static_cast<double>(std::abs(dW(j, k) - exact)) / bound);
      } else {
        CHECK(dW(j, k) == T(0));
      }
    }
  }
  INFO("largest error / bound: " << worst);
  CHECK(worst <= 1.0);
}

TEMPLATE_TEST_CASE("Multi-sample dropout logits are within the product error bound, on both paths",
                   "[layers][isa][repro]", float, double) {
  using T = TestType;
  using regula::Index;
  using LD = long double;
  for (const Index C : {Index{5}, Index{70}}) {  // the tiled narrow-head path and the GEMM path
    const Index K = 45, B = 13, M = 3;
    const regula::Matrix<T> h = regula::test::isa::finite_inputs<T>(K, B, 6);
    const regula::Matrix<T> W = regula::test::isa::finite_inputs<T>(C, K, 7);
    const regula::Vector<T> b = regula::test::isa::finite_inputs<T>(C, 1, 8);
    const Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1> labels =
        Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>::Zero(B);
    regula::MultiSampleDropoutOptions o;
    o.samples = M;
    o.p = 0.3;
    const regula::MultiSampleDropout<T, regula::test::isa::ZeroLoss> msd(o);
    typename regula::MultiSampleDropout<T, regula::test::isa::ZeroLoss>::Context ctx;
    regula::Stream s(5);
    (void)msd.forward(h, W, b, labels, s, ctx);
    const auto& z = ctx.logits();
    REQUIRE(z.cols() == M * B);
    double worst = 0;
    for (Index m = 0; m < M; ++m) {
      const auto& dc = ctx.sample(static_cast<std::size_t>(m));
      const T scale = msd.dropout(static_cast<std::size_t>(m)).scale();
      for (Index n = 0; n < B; ++n) {
        for (Index c = 0; c < C; ++c) {
          LD exact = b(c), mag = std::abs(static_cast<LD>(b(c)));
          for (Index k = 0; k < K; ++k) {
            const T hk = h(k, n) * (dc.kept(k, n) ? scale : T(0));  // one rounding, as the layer's
            exact += static_cast<LD>(W(c, k)) * hk;
            mag += std::abs(static_cast<LD>(W(c, k)) * hk);
          }
          const double bound = regula::test::isa::gamma<T>(K + 2) * static_cast<double>(mag);
          worst = std::max(worst, static_cast<double>(std::abs(z(c, m * B + n) - exact)) / bound);
        }
      }
    }
    INFO("C " << C << ": largest error / bound: " << worst);
    CHECK(worst <= 1.0);
  }
}

#endif  // REGULA_TESTS_KERNELS_LAYER_ISA_CASES_HPP
