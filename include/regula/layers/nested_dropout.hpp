/// @file
/// Nested dropout (Rippel, Gelbart & Adams, ICML 2014; as applied by Chen et al., CVPR-W 2021 /
/// TNNLS 2022): keep the first b units of a representation, zero the rest, with b drawn from a
/// prior over 1..K. Also the unit-sweeping state of Rippel et al.
#ifndef REGULA_LAYERS_NESTED_DROPOUT_HPP
#define REGULA_LAYERS_NESTED_DROPOUT_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/simd.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/kernels/nested_dropout.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// How the geometric prior treats the mass beyond K, P(b > K) = ρᴷ.
enum class NestedTail : std::uint8_t {
  clamp,       ///< put it on b = K ("keep everything"): P(b = K) = ρᴷ⁻¹
  renormalize  ///< drop it and rescale: P(b = k) = ρᵏ⁻¹(1 − ρ)/(1 − ρᴷ)
};

/// One truncation index per sample (Rippel et al.) or one shared by the whole batch (Chen et al.).
enum class NestedIndexMode : std::uint8_t { per_sample, per_batch };

/// The prior p(b) over the number of kept units b ∈ {1, …, K}. Build it with the factories.
struct NestedPrior {
  /// The family of the prior over the truncation index.
  enum class Kind : std::uint8_t { geometric, half_gaussian, uniform, custom };
  /// This prior's family.
  Kind kind = Kind::geometric;
  double rho = 0.9;     ///< geometric: P(b = k) = ρᵏ⁻¹(1 − ρ), ρ ∈ (0, 1)
  double mu = 0.0;      ///< half-Gaussian centre
  double sigma = 10.0;  ///< half-Gaussian width, > 0
  /// What happens to mass beyond the last unit.
  NestedTail tail = NestedTail::clamp;
  std::vector<double> pmf;  ///< custom: pmf[k − 1] ∝ P(b = k), nonnegative, finite, not all 0

  /// Rippel et al.'s prior, p(b) = ρᵇ⁻¹(1 − ρ), so P(b ≥ j) = ρʲ⁻¹; the tail beyond K is
  /// clamped onto K or renormalised away (see NestedTail).
  [[nodiscard]] static NestedPrior geometric(double rho, NestedTail tail = NestedTail::clamp) {
    NestedPrior p;
    p.kind = Kind::geometric;
    p.rho = rho;
    p.tail = tail;
    return p;
  }
  /// Chen et al.'s prior (`GaussianDist` in their code): p(b) ∝ exp(−((b − μ)/σ)²), b = 1..K.
  /// There is **no factor ½ in the exponent**, so the effective standard deviation is σ/√2;
  /// with K = 512, σ = 10, μ = 0 the mean number of kept units is 5.97.
  [[nodiscard]] static NestedPrior half_gaussian(double sigma, double mu = 0.0) {
    NestedPrior p;
    p.kind = Kind::half_gaussian;
    p.sigma = sigma;
    p.mu = mu;
    return p;
  }
  /// p(b) = 1/K.
  [[nodiscard]] static NestedPrior uniform() {
    NestedPrior p;
    p.kind = Kind::uniform;
    return p;
  }
  /// p(b) = w[b − 1]/Σw for user weights w (normalised here), one per unit.
  [[nodiscard]] static NestedPrior custom(std::vector<double> weights) {
    NestedPrior p;
    p.kind = Kind::custom;
    p.pmf = std::move(weights);
    return p;
  }
};

/// Options of NestedDropout.
struct NestedDropoutOptions {
  /// K, the number of units (rows of x). 0 with a custom prior means pmf.size().
  Index units = 0;
  /// The prior over the number of kept units (default: geometric, ρ = 0.9, clamped tail).
  NestedPrior prior = {};
  /// One index per sample (default) or one per batch.
  NestedIndexMode mode = NestedIndexMode::per_sample;
  /// Sets `units` (chainable).
  NestedDropoutOptions& with_units(Index v) noexcept { return detail::set(*this, units, v); }
  /// Sets `prior` (chainable).
  NestedDropoutOptions& with_prior(NestedPrior v) noexcept {
    return detail::set(*this, prior, std::move(v));
  }
  /// Sets `mode` (chainable).
  NestedDropoutOptions& with_mode(NestedIndexMode v) noexcept {
    return detail::set(*this, mode, v);
  }
};

/// What backward needs from a forward call: the number of kept units of every sample (or the one
/// shared by the batch), the shape and the stream position the indices came from. Caller-owned and
/// reusable: the index storage grows once, then forward allocates nothing.
class NestedDropoutContext {
 public:
  NestedDropoutContext() = default;
  /// False when forward ran in eval mode (the identity).
  [[nodiscard]] bool random() const noexcept { return random_; }
  /// The stream the index was drawn from.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// Rows of the forward's input.
  [[nodiscard]] Index rows() const noexcept { return rows_; }
  /// Columns of the forward's input.
  [[nodiscard]] Index cols() const noexcept { return cols_; }
  /// Whether one index serves the whole batch.
  [[nodiscard]] bool per_batch() const noexcept { return per_batch_; }
  /// b for sample `col`: units 0..b−1 (0-based rows) were kept. K in eval mode.
  [[nodiscard]] Index kept(Index col) const noexcept {
    if (!random_) return rows_;
    return kept_[per_batch_ ? 0 : static_cast<std::size_t>(col)];
  }
  /// The recorded indices: one per sample, or one for the batch.
  [[nodiscard]] const std::vector<Index>& indices() const noexcept { return kept_; }

 private:
  template <class T>
  friend class NestedDropout;
  Stream stream_{0};
  Index rows_ = 0;
  Index cols_ = 0;
  bool random_ = false;
  bool per_batch_ = false;
  std::vector<Index> kept_;
};

/// Nested dropout: h̃ₖ = hₖ·[k ≤ b] (units numbered from 1), b ~ p(b) over {1, …, K}, **no
/// rescaling** of the kept units. Gradient: ∂L/∂hₖ = ∂L/∂h̃ₖ·[k ≤ b], the same prefix.
/// Eval is the identity; `truncate(x, k, y)` keeps the first k units for budgeted inference.
///
/// **Randomness.** Sample n's index is b = F⁻¹(uₙ) with uₙ element n of
/// `Stream::uniform<double>` at the call's position (per batch: u₀ only): the stream advances
/// ⌈B/2⌉ blocks per call (1 per batch). With `frozen = f` (unit sweeping) b = min(K, f + b′).
///
/// **Dropped units** are multiplied by 0, as Chen et al.'s `feature * mask`: NaN or ±inf there
/// gives NaN.
///
/// ```cpp
/// regula::NestedDropout<float> nd({512, regula::NestedPrior::half_gaussian(10.0),
///                                  regula::NestedIndexMode::per_batch});
/// auto ctx = nd.forward(h, h_tilde, stream);  // ctx.kept(n): units kept for sample n
/// nd.backward(dh_tilde, ctx, dh);
/// ```
template <class T>
class NestedDropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::NestedDropout<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = NestedDropoutContext;

  /// @throws regula::invalid_argument if units < 1 (or ≠ pmf.size() for a custom prior),
  ///         ρ ∉ (0, 1), σ ≤ 0 or not finite, μ not finite, or a custom pmf that is empty, has a
  ///         negative or non-finite weight, or sums to 0.
  explicit NestedDropout(NestedDropoutOptions options) : options_(std::move(options)) {
    constexpr const char* who = "regula::NestedDropout";
    const NestedPrior& p = options_.prior;
    if (p.kind == NestedPrior::Kind::custom) {
      REGULA_EXPECTS(!p.pmf.empty(), who, "pmf must not be empty");
      if (options_.units == 0) options_.units = static_cast<Index>(p.pmf.size());
      REGULA_EXPECTS(static_cast<std::size_t>(options_.units) == p.pmf.size(), who,
                     "pmf must have one weight per unit (", options_.units, "), got ",
                     p.pmf.size());
    }
    REGULA_EXPECTS(options_.units >= 1, who, "units must be at least 1, got ", options_.units);
    const auto K = static_cast<std::size_t>(options_.units);
    std::vector<double> w(K);
    switch (p.kind) {
      case NestedPrior::Kind::geometric: {
        REGULA_EXPECTS(p.rho > 0.0 && p.rho < 1.0, who, "rho must be in (0, 1), got ", p.rho);
        double r = 1.0;  // ρᵏ⁻¹
        for (std::size_t k = 0; k < K; ++k) {
          // Rounded before the clamp below adds to it: the same pmf on every instruction set.
          w[k] = simd::opaque(r * (1.0 - p.rho));
          r *= p.rho;
        }
        if (p.tail == NestedTail::clamp) w[K - 1] += r;  // + ρᴷ: P(b = K) = ρᴷ⁻¹
        break;
      }
      case NestedPrior::Kind::half_gaussian: {
        REGULA_EXPECTS(p.sigma > 0.0 && std::isfinite(p.sigma), who,
                       "sigma must be positive and finite, got ", p.sigma);
        REGULA_EXPECTS(std::isfinite(p.mu), who, "mu must be finite, got ", p.mu);
        // exp(−(dₖ² − d²ₘᵢₙ)/σ²) with dₖ = |k − μ|: relative to the largest term, and with the
        // difference of squares factored as ((dₖ − dₘᵢₙ)/σ)·((dₖ + dₘᵢₙ)/σ) so that no σ, however
        // small or large, squares into an overflow or underflow (σ = 1e-300 puts all the mass on
        // the units nearest μ instead of giving NaN).
        double dmin = std::numeric_limits<double>::infinity();
        for (std::size_t k = 0; k < K; ++k)
          dmin = std::min(dmin, std::abs(static_cast<double>(k + 1) - p.mu));
        for (std::size_t k = 0; k < K; ++k) {
          const double d = std::abs(static_cast<double>(k + 1) - p.mu);
          w[k] = d == dmin ? 1.0 : std::exp(-(((d - dmin) / p.sigma) * ((d + dmin) / p.sigma)));
        }
        break;
      }
      case NestedPrior::Kind::uniform:
        std::fill(w.begin(), w.end(), 1.0);
        break;
      case NestedPrior::Kind::custom: {
        double wmax = 0.0;
        for (std::size_t k = 0; k < K; ++k) {
          REGULA_EXPECTS(std::isfinite(p.pmf[k]) && p.pmf[k] >= 0.0, who,
                         "pmf weights must be finite and nonnegative, got ", p.pmf[k], " at ", k);
          wmax = std::max(wmax, p.pmf[k]);
        }
        REGULA_EXPECTS(wmax > 0.0, who, "pmf weights must not all be 0");
        // Relative to the largest, so that the sum of finite weights stays finite.
        for (std::size_t k = 0; k < K; ++k) w[k] = p.pmf[k] / wmax;
        break;
      }
    }
    double total = 0.0;
    for (const double v : w) total += v;
    // Every prior's weights are at most 1 with one of them 1 (geometric: 1 − ρ > 0), so the sum
    // is positive and finite.
    REGULA_ASSERT(total > 0.0 && std::isfinite(total));
    pmf_.resize(K);
    cdf_.resize(K);
    double acc = 0.0;
    for (std::size_t k = 0; k < K; ++k) {
      pmf_[k] = w[k] / total;
      acc += w[k];
      cdf_[k] = acc / total;
    }
    cdf_[K - 1] = 1.0;
  }

  /// The options it was built with.
  [[nodiscard]] const NestedDropoutOptions& options() const noexcept { return options_; }
  /// K.
  [[nodiscard]] Index units() const noexcept { return options_.units; }
  /// pmf()[k − 1] = P(b = k), normalised.
  [[nodiscard]] const std::vector<double>& pmf() const noexcept { return pmf_; }
  /// cdf()[k − 1] = P(b ≤ k); the last entry is exactly 1.
  [[nodiscard]] const std::vector<double>& cdf() const noexcept { return cdf_; }
  /// P(b ≥ j) for j = 1..K: the probability that unit j (1-based) is kept, which also weights
  /// the gradient it receives: 1 for j ≤ 1, 0 for j > K.
  [[nodiscard]] double survival(Index j) const noexcept {
    if (j <= 1) return 1.0;
    if (j > units()) return 0.0;
    return 1.0 - cdf_[static_cast<std::size_t>(j - 2)];
  }
  /// E[b], the mean number of kept units.
  [[nodiscard]] double mean_kept() const noexcept {
    double m = 0.0;
    for (std::size_t k = 0; k < pmf_.size(); ++k) {
      m += simd::opaque(static_cast<double>(k + 1) * pmf_[k]);
    }
    return m;
  }

  /// h̃ = h ⊙ prefix masks in training, h̃ = h in eval. y may be x itself.
  /// @throws regula::invalid_argument if x does not have K rows or y's shape differs from x's.
  [[nodiscard]] Context forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(x, y, stream, ctx);
    return ctx;
  }

  /// As above, into a reusable context; `frozen` leading units (unit sweeping, see
  /// NestedSweeper::frozen()) are always kept: b = min(K, frozen + b′), b′ ~ p.
  /// @throws regula::invalid_argument also if frozen ∉ [0, K].
  void forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream, Context& ctx,
               Index frozen = 0) const {
    constexpr const char* who = "regula::NestedDropout";
    REGULA_EXPECTS(x.rows() == units(), who, "x must have ", units(), " rows (units), got ",
                   x.rows());
    detail::check_same_shape(who, "y", y, "x", x);
    REGULA_EXPECTS(frozen >= 0 && frozen <= units(), who, "frozen must be in [0, ", units(),
                   "], got ", frozen);
    check_alias(who, "x", x, "y", y);
    ctx.rows_ = x.rows();
    ctx.cols_ = x.cols();
    ctx.stream_ = stream;
    ctx.per_batch_ = options_.mode == NestedIndexMode::per_batch;
    ctx.random_ = is_training();
    if (!is_training()) {
      if (y.data() != x.data()) y = x;
      return;
    }
    const std::size_t draws = ctx.per_batch_ ? 1 : static_cast<std::size_t>(x.cols());
    ctx.kept_.resize(draws);
    // Element n of Stream::uniform<double>: block n/2, one block per pair.
    for (std::size_t n = 0; n < draws; n += 2) {
      double u[2];
      stream.uniform(u, draws - n >= 2 ? 2 : 1);
      for (std::size_t j = 0; j < 2 && n + j < draws; ++j) {
        const auto b = static_cast<Index>(kernels::inverse_cdf(cdf_.data(), cdf_.size(), u[j]));
        ctx.kept_[n + j] = std::min(units(), frozen + b);
      }
    }
    apply(ctx, x, y);
  }

  /// dx = dy ⊙ the prefix masks of the forward call that produced ctx (dx = dy after eval).
  /// dx may be dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's or dx's
  ///         from dy's.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dx) const {
    constexpr const char* who = "regula::NestedDropout::backward";
    REGULA_EXPECTS(dy.rows() == ctx.rows() && dy.cols() == ctx.cols(), who,
                   "dy must have the shape of the forward input (", ctx.rows(), " x ", ctx.cols(),
                   "), got ", dy.rows(), " x ", dy.cols());
    detail::check_same_shape(who, "dx", dx, "dy", dy);
    check_alias(who, "dy", dy, "dx", dx);
    if (!ctx.random()) {
      if (dx.data() != dy.data()) dx = dy;
      return;
    }
    apply(ctx, dy, dx);
  }

  /// y = the first k units of x, the others 0·x (budgeted inference; Chen et al. pick k on a
  /// validation set). Works in train and eval mode and draws nothing.
  /// @throws regula::invalid_argument if k ∉ [0, K], x does not have K rows, or shapes differ.
  void truncate(const MatrixCRef<T>& x, Index k, MatrixRef<T> y) const {
    constexpr const char* who = "regula::NestedDropout::truncate";
    REGULA_EXPECTS(k >= 0 && k <= units(), who, "k must be in [0, ", units(), "], got ", k);
    REGULA_EXPECTS(x.rows() == units(), who, "x must have ", units(), " rows (units), got ",
                   x.rows());
    detail::check_same_shape(who, "y", y, "x", x);
    check_alias(who, "x", x, "y", y);
    const auto rows = static_cast<std::size_t>(x.rows());
    for (Index j = 0; j < x.cols(); ++j) {
      kernels::prefix_keep(x.col(j).data(), rows, static_cast<std::size_t>(k), y.col(j).data());
    }
  }

 private:
  static void check_alias(const char* who, const char* in_name, const MatrixCRef<T>& in,
                          const char* out_name, const MatrixRef<T>& out) {
    detail::check_output(who, in_name, in, out_name, out);
  }

  static void apply(const Context& ctx, const MatrixCRef<T>& x, MatrixRef<T>& y) noexcept {
    const auto rows = static_cast<std::size_t>(x.rows());
    const T* xp = x.data();
    T* yp = y.data();
    const auto xs = static_cast<std::size_t>(x.outerStride());
    const auto ys = static_cast<std::size_t>(y.outerStride());
    detail::for_each_column(x.rows(), x.cols(), [&](std::size_t j) noexcept {
      const auto keep = static_cast<std::size_t>(ctx.kept(static_cast<Index>(j)));
      kernels::prefix_keep(xp + j * xs, rows, keep, yp + j * ys);
    });
  }

  NestedDropoutOptions options_;
  std::vector<double> pmf_;
  std::vector<double> cdf_;
};

/// Unit sweeping (Rippel et al. 2014, §5): once the leading unbroken units have converged they
/// are frozen and the prior is shifted past them, b = f + b′, which gives the next unit back
/// the gradient mass P(b ≥ f + 1) = 1 instead of P(b ≥ f + 1) under the unshifted prior.
///
/// **Convergence test** (the paper gives none as a formula; this is the test used by public
/// ports): call `observe(v)` periodically with the current parameters (or representation on a
/// fixed probe batch) of the first unfrozen unit, f + 1. With v₋ the previous observation,
/// the unit counts as converged when ‖v − v₋‖₂ ≤ tol·max(‖v₋‖₂, ε) holds for `patience`
/// consecutive observations (defaults tol = 1e-3, patience = 10, ε = 1e-12). It is then frozen
/// (f ← f + 1), the history is cleared, and observe() returns true. The caller stops updating
/// the frozen units' parameters (e.g. with `zero_frozen_rows` on their gradient) and passes
/// `frozen()` to NestedDropout::forward.
class NestedSweeper {
 public:
  /// @throws regula::invalid_argument if units < 1, tol ≤ 0 or patience < 1.
  explicit NestedSweeper(Index units, double tol = 1e-3, int patience = 10)
      : units_(units), tol_(tol), patience_(patience) {
    REGULA_EXPECTS(units >= 1, "regula::NestedSweeper", "units must be at least 1, got ", units);
    REGULA_EXPECTS(tol > 0.0, "regula::NestedSweeper", "tol must be positive, got ", tol);
    REGULA_EXPECTS(patience >= 1, "regula::NestedSweeper", "patience must be at least 1, got ",
                   patience);
  }

  /// f, the number of leading units frozen so far.
  [[nodiscard]] Index frozen() const noexcept { return frozen_; }
  /// Whether every unit is frozen.
  [[nodiscard]] bool done() const noexcept { return frozen_ == units_; }
  /// Consecutive converged observations of unit f + 1 so far.
  [[nodiscard]] int streak() const noexcept { return streak_; }

  /// Records the current state of unit f + 1; returns true when it has just been frozen.
  /// @throws regula::invalid_argument if v's size changes between observations of one unit.
  template <class Derived>
  bool observe(const Eigen::MatrixBase<Derived>& v) {
    if (done()) return false;
    const auto n = static_cast<std::size_t>(v.size());
    if (!prev_.empty()) {
      REGULA_EXPECTS(prev_.size() == n, "regula::NestedSweeper::observe", "v must keep its size (",
                     prev_.size(), "), got ", n);
    }
    if (prev_.size() == n) {
      double diff = 0.0;
      double norm = 0.0;
      for (std::size_t i = 0; i < n; ++i) {
        const double x = static_cast<double>(v(static_cast<Index>(i)));
        diff += (x - prev_[i]) * (x - prev_[i]);
        norm += prev_[i] * prev_[i];
      }
      const bool converged = std::sqrt(diff) <= tol_ * std::max(std::sqrt(norm), 1e-12);
      streak_ = converged ? streak_ + 1 : 0;
    }
    prev_.resize(n);
    for (std::size_t i = 0; i < n; ++i) prev_[i] = static_cast<double>(v(static_cast<Index>(i)));
    if (streak_ >= patience_) {
      ++frozen_;
      streak_ = 0;
      prev_.clear();
      return true;
    }
    return false;
  }

  /// Zeroes the rows of the frozen units in a gradient with one row per unit (e.g. of the
  /// encoder's last weight matrix, or dL/dh).
  template <class Derived>
  void zero_frozen_rows(Eigen::MatrixBase<Derived>& grad) const {
    REGULA_EXPECTS(grad.rows() >= frozen_, "regula::NestedSweeper::zero_frozen_rows",
                   "grad must have at least ", frozen_, " rows, got ", grad.rows());
    grad.topRows(frozen_).setZero();
  }

 private:
  Index units_;
  double tol_;
  int patience_;
  Index frozen_ = 0;
  int streak_ = 0;
  std::vector<double> prev_;
};

}  // namespace regula

#endif  // REGULA_LAYERS_NESTED_DROPOUT_HPP
