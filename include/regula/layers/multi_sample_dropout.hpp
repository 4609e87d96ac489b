/// @file
/// Multi-sample dropout (Inoue, arXiv 1905.09788, 2019): M dropout samples of the features with
/// independent masks through one shared linear head, with the per-sample losses averaged.
#ifndef REGULA_LAYERS_MULTI_SAMPLE_DROPOUT_HPP
#define REGULA_LAYERS_MULTI_SAMPLE_DROPOUT_HPP

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/labels.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/multi_sample_dropout.hpp"
#include "regula/layers/dropout.hpp"
#include "regula/layers/random_context.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// How the M samples are combined. The two are **not** equivalent: with a linear head,
/// mean_of_logits is one pass with the averaged mask (1/M)Σₘ mₘ/(1 − p), a weaker regulariser
/// (per-unit variance p/((1 − p)M)) than the paper's average of M per-mask losses.
enum class MultiSampleReduction : std::uint8_t {
  mean_of_losses,  ///< L = (1/M) Σₘ meanₙ ℓ(zₘₙ, yₙ) (Inoue 2019)
  mean_of_logits   ///< L = meanₙ ℓ((1/M) Σₘ zₘₙ, yₙ) (a common variant)
};

/// Options of MultiSampleDropout.
struct MultiSampleDropoutOptions {
  /// M, the number of dropout samples (the paper uses up to 8; gains saturate around 8).
  Index samples = 8;
  /// The drop probability of every sample (PyTorch's meaning), used when `rates` is empty.
  double p = 0.5;
  /// Optional per-sample drop probabilities p₁..p_M (e.g. 0.1, …, 0.5).
  std::vector<double> rates = {};
  /// How the M copies' losses combine (mean of losses or loss of the mean logits).
  MultiSampleReduction reduction = MultiSampleReduction::mean_of_losses;
  /// Sets `samples` (chainable).
  MultiSampleDropoutOptions& with_samples(Index v) noexcept {
    return detail::set(*this, samples, v);
  }
  /// Sets `p` (chainable).
  MultiSampleDropoutOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
  /// Sets `rates` (chainable).
  MultiSampleDropoutOptions& with_rates(std::vector<double> v) noexcept {
    return detail::set(*this, rates, std::move(v));
  }
  /// Sets `reduction` (chainable).
  MultiSampleDropoutOptions& with_reduction(MultiSampleReduction v) noexcept {
    return detail::set(*this, reduction, v);
  }
};

/// What backward needs from a forward call, and the buffers of the fused path: the M masked
/// copies stacked as one K × M·B matrix, the logits and their gradient (C × M·B), the per-sample
/// losses and the stream position of every mask. Caller-owned and reusable: it grows on the
/// first call (or a larger shape) and is reused after that. Every forward call resets all of it
/// (shape, train/eval mode, path), and backward refuses a context that does not hold one
/// complete forward call of the same layer configuration.
template <class T>
class MultiSampleDropoutContext {
 public:
  /// The per-sample losses ℓₘₙ, entry m·B + n (mean_of_losses; B entries for mean_of_logits
  /// and eval).
  [[nodiscard]] const Vector<T>& per_sample() const noexcept { return losses_; }
  /// The logits, C × M·B (mean_of_losses), C × B (mean_of_logits: the averaged logits; eval).
  [[nodiscard]] const Matrix<T>& logits() const noexcept { return z_; }
  /// The reduced loss L.
  [[nodiscard]] T loss() const noexcept { return loss_; }
  /// The dropout context of sample m (its mask is recomputed from it).
  [[nodiscard]] const DropoutContext& sample(std::size_t m) const noexcept { return drops_[m]; }
  /// Whether the forward that filled the context was a training one.
  [[nodiscard]] bool training() const noexcept { return training_; }
  /// True between a forward call that completed and the backward call that consumed it.
  [[nodiscard]] bool ready() const noexcept { return filled_ && !consumed_; }

 private:
  template <class, class>
  friend class MultiSampleDropout;
  Matrix<T> hs_;   // K × M·B masked copies (K × B input copy in eval); G = Wᵀ dZ in backward.
                   // Tiled path: the copy of h and, after it, two K × tile scratch blocks
  Matrix<T> z_;    // logits
  Matrix<T> dz_;   // ∂L/∂logits (already scaled by the reduction)
  Matrix<T> zt_;   // N × C logits, for heads with few classes
  Matrix<T> dwt_;  // K × C, ∂L/∂Wᵀ for heads with few classes
  Matrix<T> wt_;   // K × C, Wᵀ (tiled backward)
  Vector<T> losses_;
  std::vector<DropoutContext> drops_;
  std::vector<std::uint64_t> bits_;  // tiled backward: keep bits of one sample's call
  Index k_ = 0, b_ = 0, c_ = 0, m_ = 0;
  T loss_ = T(0);
  MultiSampleReduction reduction_ = MultiSampleReduction::mean_of_losses;
  bool training_ = false;
  bool tiled_ = false;
  bool filled_ = false;  // set only once forward has completed (not if the loss threw)
  bool consumed_ = false;
};

/// Multi-sample dropout with a shared linear head z = W h̃ + b and a per-sample loss ℓ.
///
/// Training, mean_of_losses (the paper): h̃ₘ = h ⊙ mₘ/(1 − pₘ) for m = 1..M with independent
/// masks, zₘ = W h̃ₘ + b, L = (1/(M·B)) Σₘ Σₙ ℓ(zₘₙ, yₙ). Gradients:
/// ∂L/∂W = Σₘ Gₘ h̃ₘᵀ, ∂L/∂b = Σₘ Gₘ 1, ∂L/∂h = Σₘ (mₘ/(1 − pₘ)) ⊙ Wᵀ Gₘ, with
/// Gₘ = ∂ℓ/∂zₘ/(M·B). mean_of_logits: z̄ = W h̄ + b with h̄ = (1/M) Σₘ h̃ₘ,
/// L = (1/B) Σₙ ℓ(z̄ₙ, yₙ). Eval: dropout is off, so the head runs once: z = W h + b.
///
/// **Fused path.** Heads with 64 classes or more (mean_of_losses; every head for
/// mean_of_logits): the M masked copies are written side by side into one K × M·B matrix, so the
/// forward is one GEMM (C × K)·(K × M·B) instead of M, and backward two more (∂L/∂W and WᵀG);
/// ∂L/∂h sums the M masked blocks of WᵀG with the masks recomputed from the stream.
/// **Tiled path.** Heads with fewer than 64 classes do so little arithmetic per masked element
/// that the K × M·B copy, written and read three times, would cost more than the products, and a
/// GEMM register tile would be mostly empty: the masked input is made one cache-sized block of
/// columns at a time and its keep bits recorded (forward: z = W h̃ per block by a narrow-head
/// kernel, kernels::narrow_product); backward forms the masked input and WᵀG on the fly from h and
/// those bits (kernels::masked_outer_accumulate, kernels::masked_transposed_product_column).
/// Nothing of size M·B·K is stored and each mask is drawn once. Both paths give the loop's result
/// up to rounding.
///
/// **Randomness.** Sample m is exactly `Dropout<T>({pₘ}).forward(h, ·, stream)` called for
/// m = 1..M in turn on the caller's stream: the result equals a loop of M dropout + head + loss
/// passes on the same stream.
///
/// **The loss** is any functor (copied into the layer) callable as
/// ```cpp
/// loss(const MatrixCRef<T>& logits,    // C × N, one column per sample
///      const LabelView& labels,        // N class indices (core/labels.hpp)
///      VectorRef<T> per_sample,        // out: N losses ℓ(zₙ, yₙ)
///      MatrixRef<T> dlogits);          // out: C × N, column n = ∂ℓ(zₙ, yₙ)/∂zₙ (unreduced)
/// ```
/// The call operator must be const. It may throw on bad labels. It is called on B columns at a
/// time.
///
/// **Shapes.** h is K × B (features × batch), W is C × K (out × in, as torch.nn.Linear), b has C
/// entries, labels B; K, B and C are at least 1.
///
/// **Aliasing.** backward's outputs dh, dW and db may not share memory with W or with each other
/// (dW is written before W is read again); forward's inputs may not lie in ctx's own buffers.
///
/// **Reproducibility.** The masks are Dropout's, the same bits on every instruction set and
/// thread count; the logits, loss and gradients come from matrix products (Eigen's GEMM or the
/// narrow-head kernels) whose order of sums and fused multiply-adds depend on the instruction
/// set, so they agree across builds to the product error bound of docs/random.md.
template <class T, class Loss>
class MultiSampleDropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::MultiSampleDropout<T, Loss>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = MultiSampleDropoutContext<T>;
  /// Class indices, one per sample.
  /// The labels' view (core/labels.hpp): any int32 or int64 vector, or a std::vector, no copy.
  using Labels = LabelView;

  /// @throws regula::invalid_argument if samples < 1, p ∉ [0, 1], rates is neither empty nor of
  ///         size M, or a rate ∉ [0, 1].
  explicit MultiSampleDropout(MultiSampleDropoutOptions options = {}, Loss loss = Loss{})
      : options_(std::move(options)), loss_(std::move(loss)) {
    constexpr const char* who = "regula::MultiSampleDropout";
    REGULA_EXPECTS(options_.samples >= 1, who, "samples (M) must be at least 1, got ",
                   options_.samples);
    detail::check_probability(who, "p", options_.p);
    REGULA_EXPECTS(options_.rates.empty() ||
                       options_.rates.size() == static_cast<std::size_t>(options_.samples),
                   who, "rates must be empty or have one rate per sample (", options_.samples,
                   "), got ", options_.rates.size());
    const auto M = static_cast<std::size_t>(options_.samples);
    drops_.reserve(M);
    for (std::size_t m = 0; m < M; ++m) {
      const double p = options_.rates.empty() ? options_.p : options_.rates[m];
      REGULA_EXPECTS(p >= 0.0 && p <= 1.0, who, "rates[", m, "] must be in [0, 1], got ", p);
      drops_.emplace_back(DropoutOptions{p});
    }
  }

  /// The options it was built with.
  [[nodiscard]] const MultiSampleDropoutOptions& options() const noexcept { return options_; }
  /// The number of dropout copies M.
  [[nodiscard]] Index samples() const noexcept { return options_.samples; }
  /// The loss applied to each copy.
  [[nodiscard]] const Loss& loss() const noexcept { return loss_; }
  /// The dropout layer of sample m (its effective rate and scale).
  [[nodiscard]] const Dropout<T>& dropout(std::size_t m) const noexcept { return drops_[m]; }

  /// Runs the M samples (or, in eval, the head once), the loss and its gradient with respect to
  /// the logits; returns L. Allocates only when ctx must grow (and inside Eigen's GEMM for
  /// products too large for its stack buffers).
  /// @throws regula::invalid_argument on an empty h or W, shapes that do not match (naming h, W,
  ///         b or labels), an input inside ctx's buffers, or whatever the loss throws (ctx then
  ///         holds no forward call).
  T forward(const MatrixCRef<T>& h, const MatrixCRef<T>& W, const VectorCRef<T>& b,
            const Labels& labels, Stream& stream, Context& ctx) const {
    constexpr const char* who = "regula::MultiSampleDropout";
    check_head(who, h, W, b);
    REGULA_EXPECTS(labels.size() == h.cols(), who, "labels must have one entry per sample (",
                   h.cols(), "), got ", labels.size());
    detail::check_disjoint(who, "ctx.logits()", ctx.z_, "h", h);
    detail::check_disjoint(who, "ctx.logits()", ctx.z_, "W", W);
    detail::check_disjoint(who, "ctx.logits()", ctx.z_, "b", b);
    detail::check_disjoint(who, "ctx.per_sample()", ctx.losses_, "h", h);
    detail::check_disjoint(who, "ctx.per_sample()", ctx.losses_, "W", W);
    detail::check_disjoint(who, "ctx.per_sample()", ctx.losses_, "b", b);
    // Every field of ctx is set here, before any path returns, so that no state of an earlier
    // call (another shape, mode or path) survives into backward.
    ctx.k_ = h.rows();
    ctx.b_ = h.cols();
    ctx.c_ = W.rows();
    ctx.m_ = samples();
    ctx.reduction_ = options_.reduction;
    ctx.training_ = is_training();
    ctx.tiled_ = is_training() && tiled(W.rows());
    ctx.filled_ = false;
    ctx.consumed_ = false;
    const T L = run_forward(h, W, b, labels, stream, ctx);
    ctx.filled_ = true;
    return L;
  }

  /// Writes ∂L/∂h (K × B), ∂L/∂W (C × K) and ∂L/∂b (C) for the forward call that filled ctx
  /// (outputs are overwritten, not accumulated). Uses ctx's stacked buffer as scratch, so each
  /// forward call supports one backward call.
  /// @throws regula::invalid_argument if ctx holds no complete forward call, was already used by
  ///         a backward call, or comes from a layer with another M, reduction or rates; if W or
  ///         an output does not match the forward shapes; or if dh, dW or db shares memory with W
  ///         or another output.
  void backward(const MatrixCRef<T>& W, Context& ctx, MatrixRef<T> dh, MatrixRef<T> dW,
                VectorRef<T> db) const {
    constexpr const char* who = "regula::MultiSampleDropout::backward";
    REGULA_EXPECTS(
        ctx.filled_, who,
        "ctx holds no forward call (never filled, or its forward threw); run forward first");
    REGULA_EXPECTS(!ctx.consumed_, who,
                   "ctx was already used by a backward call; run forward again");
    REGULA_EXPECTS(ctx.m_ == samples(), who, "ctx was filled by a layer with ", ctx.m_,
                   " samples (M), this one has ", samples());
    REGULA_EXPECTS(ctx.reduction_ == options_.reduction, who,
                   "ctx was filled by a layer with another reduction");
    if (ctx.training_) {
      for (std::size_t m = 0; m < static_cast<std::size_t>(samples()); ++m) {
        REGULA_EXPECTS(ctx.drops_[m].keep_threshold() == detail::keep_threshold(rate(m)), who,
                       "ctx was filled by a layer with another drop rate for sample ", m);
      }
    }
    REGULA_EXPECTS(W.rows() == ctx.c_ && W.cols() == ctx.k_, who, "W must be ", ctx.c_, " x ",
                   ctx.k_, " as in forward, got ", W.rows(), " x ", W.cols());
    REGULA_EXPECTS(dh.rows() == ctx.k_ && dh.cols() == ctx.b_, who, "dh must be ", ctx.k_, " x ",
                   ctx.b_, ", got ", dh.rows(), " x ", dh.cols());
    REGULA_EXPECTS(dW.rows() == ctx.c_ && dW.cols() == ctx.k_, who, "dW must be ", ctx.c_, " x ",
                   ctx.k_, ", got ", dW.rows(), " x ", dW.cols());
    REGULA_EXPECTS(db.size() == ctx.c_, who, "db must have ", ctx.c_, " entries, got ", db.size());
    detail::check_no_overlap(
        who, {detail::region("W", W)},
        {detail::region("dh", dh), detail::region("dW", dW), detail::region("db", db)});
    ctx.consumed_ = true;
    run_backward(W, ctx, dh, dW, db);
  }

 private:
  /// The drop probability of sample m.
  [[nodiscard]] double rate(std::size_t m) const noexcept {
    return options_.rates.empty() ? options_.p : options_.rates[m];
  }

  T run_forward(const MatrixCRef<T>& h, const MatrixCRef<T>& W, const VectorCRef<T>& b,
                const Labels& labels, Stream& stream, Context& ctx) const {
    const Index K = h.rows();
    const Index B = h.cols();
    const Index M = samples();
    if (!is_training()) {
      resize(ctx.hs_, K, B);
      ctx.hs_ = h;
      return head(W, b, labels, ctx.hs_, ctx, T(1) / static_cast<T>(B));
    }
    ctx.drops_.resize(static_cast<std::size_t>(M));
    if (ctx.tiled_) return forward_tiled(h, W, b, labels, stream, ctx);
    resize(ctx.hs_, K, M * B);
    for (Index m = 0; m < M; ++m) {
      const auto mu = static_cast<std::size_t>(m);
      drops_[mu].forward(h, ctx.hs_.middleCols(m * B, B), stream, ctx.drops_[mu]);
    }
    if (options_.reduction == MultiSampleReduction::mean_of_logits) {
      // h̄ = Σₘ h̃ₘ/M, kept in the first block; each copy is divided before it is added, so
      // that copies near the largest T do not overflow the sum (the mean itself is finite).
      auto hbar = ctx.hs_.leftCols(B);
      const T inv = T(1) / static_cast<T>(M);
      hbar *= inv;
      for (Index m = 1; m < M; ++m) hbar += ctx.hs_.middleCols(m * B, B) * inv;
      return head(W, b, labels, ctx.hs_.leftCols(B), ctx, T(1) / static_cast<T>(B));
    }
    return head(W, b, labels, ctx.hs_, ctx, T(1) / static_cast<T>(M * B));
  }

  void run_backward(const MatrixCRef<T>& W, Context& ctx, MatrixRef<T>& dh, MatrixRef<T>& dW,
                    VectorRef<T>& db) const {
    if (ctx.tiled_) {
      backward_tiled(W, ctx, dh, dW, db);
      return;
    }
    const Index B = ctx.b_;
    const bool stacked =
        ctx.training_ && options_.reduction == MultiSampleReduction::mean_of_losses;
    const Index N = stacked ? samples() * B : B;
    auto hs = ctx.hs_.leftCols(N);
    if (narrow(ctx.c_)) {
      resize(ctx.dwt_, ctx.k_, ctx.c_);
      ctx.dwt_.noalias() = hs * ctx.dz_.transpose();
      dW = ctx.dwt_.transpose();
    } else {
      dW.noalias() = ctx.dz_ * hs.transpose();
    }
    db.noalias() = ctx.dz_.rowwise().sum();
    hs.noalias() = W.transpose() * ctx.dz_;  // G, K × N
    if (!ctx.training_) {
      dh = hs;
      return;
    }
    const T inv_m = T(1) / static_cast<T>(samples());
    for (Index m = 0; m < samples(); ++m) {
      const auto mu = static_cast<std::size_t>(m);
      const DropoutContext& dc = ctx.drops_[mu];
      const Index src = stacked ? m * B : 0;  // mean_of_logits: every sample sees G/M
      const T extra = stacked ? T(1) : inv_m;
      accumulate(dc, drops_[mu], ctx.hs_.data() + src * ctx.k_, static_cast<std::size_t>(ctx.k_),
                 extra, m == 0, dh);
    }
  }

  /// Heads with fewer classes than a GEMM register tile has rows are multiplied the other way
  /// round (zᵀ = h̃ᵀWᵀ, ∂L/∂Wᵀ = h̃ Gᵀ), so that the long M·B or K side fills the tile.
  static bool narrow(Index classes) noexcept { return classes < 64; }
  /// Whether a training forward takes the tiled path (see the class comment).
  [[nodiscard]] bool tiled(Index classes) const noexcept {
    return narrow(classes) && options_.reduction == MultiSampleReduction::mean_of_losses;
  }
  /// Columns per block of the tiled path: a K × n block of about 64 KiB, which stays in L2
  /// through the products that read it.
  static Index tile_columns(Index K, Index B) noexcept {
    const Index n =
        static_cast<Index>((std::size_t{64} << 10) / (sizeof(T) * static_cast<std::size_t>(K)));
    return n < 1 ? 1 : (n > B ? B : n);
  }

  T forward_tiled(const MatrixCRef<T>& h, const MatrixCRef<T>& W, const VectorCRef<T>& b,
                  const Labels& labels, Stream& stream, Context& ctx) const {
    const Index K = ctx.k_, B = ctx.b_, C = ctx.c_, M = samples();
    const Index nb = tile_columns(K, B);
    // hs_ = [h | block | block]: backward reads h again, the blocks are scratch.
    resize(ctx.hs_, K, B + 2 * nb);
    ctx.hs_.leftCols(B) = h;
    resize(ctx.z_, C, M * B);
    resize(ctx.wt_, K, C);
    ctx.wt_ = W.transpose();
    const std::size_t words = kernels::dropout_mask_words(static_cast<std::size_t>(K * B));
    ctx.bits_.resize(static_cast<std::size_t>(M) * words);
    for (Index m = 0; m < M; ++m) {
      const auto mu = static_cast<std::size_t>(m);
      drops_[mu].begin(K, B, stream, ctx.drops_[mu]);
      std::uint64_t* bits = ctx.bits_.data() + mu * words;
      for (Index j0 = 0; j0 < B; j0 += nb) {
        const Index n = nb < B - j0 ? nb : B - j0;
        auto block = ctx.hs_.middleCols(B, n);
        drops_[mu].forward_columns(ctx.drops_[mu], j0, h.middleCols(j0, n), block, bits);
        kernels::narrow_product(
            static_cast<std::size_t>(K), static_cast<std::size_t>(C), static_cast<std::size_t>(n),
            block.data(), static_cast<std::size_t>(K), ctx.wt_.data(), static_cast<std::size_t>(K),
            ctx.z_.col(m * B + j0).data(), static_cast<std::size_t>(C));
      }
    }
    return losses(b, labels, ctx, T(1) / static_cast<T>(M * B));
  }

  void backward_tiled(const MatrixCRef<T>& W, Context& ctx, MatrixRef<T>& dh, MatrixRef<T>& dW,
                      VectorRef<T>& db) const {
    const Index K = ctx.k_, B = ctx.b_, C = ctx.c_, M = samples();
    const Index nb = tile_columns(K, B);
    resize(ctx.dwt_, K, C);
    ctx.dwt_.setZero();
    ctx.wt_ = W.transpose();  // sized by forward; W has forward's shape (checked)
    const std::size_t words = kernels::dropout_mask_words(static_cast<std::size_t>(K * B));
    db.noalias() = ctx.dz_.rowwise().sum();
    const auto h = ctx.hs_.leftCols(B);
    for (Index m = 0; m < M; ++m) {
      const auto mu = static_cast<std::size_t>(m);
      const DropoutContext& dc = ctx.drops_[mu];
      const std::uint64_t* bits = ctx.bits_.data() + mu * words;
      for (Index j0 = 0; j0 < B; j0 += nb) {
        const Index n = nb < B - j0 ? nb : B - j0;
        const auto dz = ctx.dz_.middleCols(m * B + j0, n);
        if (dc.mode() == DropoutContext::Mode::random) {
          // ∂L/∂Wᵀ += h̃ Gᵀ and ∂L/∂h = Σ masked WᵀG, the masked input and WᵀG formed on the fly
          // from h and the recorded keep bits.
          kernels::masked_outer_accumulate(
              bits, static_cast<std::size_t>(j0 * K), static_cast<std::size_t>(K),
              static_cast<std::size_t>(C), static_cast<std::size_t>(n), h.col(j0).data(),
              static_cast<std::size_t>(h.outerStride()), dz.data(),
              static_cast<std::size_t>(dz.outerStride()), drops_[mu].scale(), ctx.dwt_.data(),
              static_cast<std::size_t>(K));
          for (Index j = 0; j < n; ++j) {
            kernels::masked_transposed_product_column(
                bits, static_cast<std::size_t>((j0 + j) * K), static_cast<std::size_t>(K),
                static_cast<std::size_t>(C), ctx.wt_.data(), static_cast<std::size_t>(K),
                dz.col(j).data(), drops_[mu].scale(), m > 0, dh.col(j0 + j).data());
          }
        } else {  // p = 0 or 1: nothing was drawn
          auto block = ctx.hs_.middleCols(B, n);
          auto g = ctx.hs_.middleCols(B + nb, n);
          apply_fixed_mode(dc, h.middleCols(j0, n), false, block);
          ctx.dwt_.noalias() += block * dz.transpose();
          g.noalias() = W.transpose() * dz;
          apply_fixed_mode(dc, g, m > 0, dh.middleCols(j0, n));
        }
      }
    }
    dW = ctx.dwt_.transpose();
  }

  /// y (=|+=) x (identity mode) or 0·x (zero mode: NaN and ±inf give NaN, as in Dropout).
  template <class X, class Y>
  static void apply_fixed_mode(const DropoutContext& dc, const X& x, bool add, Y&& y) noexcept {
    const T factor = dc.mode() == DropoutContext::Mode::zero ? T(0) : T(1);
    if (add) {
      y += x * factor;
    } else {
      y = x * factor;
    }
  }

  static void resize(Matrix<T>& m, Index rows, Index cols) {
    if (m.rows() != rows || m.cols() != cols) m.resize(rows, cols);
  }

  static void check_head(const char* who, const MatrixCRef<T>& h, const MatrixCRef<T>& W,
                         const VectorCRef<T>& b) {
    REGULA_EXPECTS(h.cols() >= 1, who, "h must have at least one sample (column), got ", h.cols());
    REGULA_EXPECTS(h.rows() >= 1, who, "h must have at least one feature (row), got ", h.rows());
    REGULA_EXPECTS(W.rows() >= 1, who, "W must have at least one row (class), got ", W.rows());
    REGULA_EXPECTS(W.cols() == h.rows(), who, "W must have one column per feature of h (", h.rows(),
                   "), got ", W.cols());
    REGULA_EXPECTS(b.size() == W.rows(), who, "b must have one entry per row of W (", W.rows(),
                   "), got ", b.size());
  }

  /// z = W·hin + b, the loss on every block of B columns, dz scaled by `scale`; returns L.
  template <class In>
  T head(const MatrixCRef<T>& W, const VectorCRef<T>& b, const Labels& labels, const In& hin,
         Context& ctx, T scale) const {
    const Index N = hin.cols();
    resize(ctx.z_, W.rows(), N);
    if (narrow(W.rows())) {
      resize(ctx.zt_, N, W.rows());
      ctx.zt_.noalias() = hin.transpose() * W.transpose();
      ctx.z_ = ctx.zt_.transpose();
    } else {
      ctx.z_.noalias() = W * hin;
    }
    return losses(b, labels, ctx, scale);
  }

  /// Adds b to the logits in ctx.z_, runs the loss on every block of B columns and scales dz by
  /// `scale`; returns L.
  T losses(const VectorCRef<T>& b, const Labels& labels, Context& ctx, T scale) const {
    const Index N = ctx.z_.cols();
    const Index B = ctx.b_;
    resize(ctx.dz_, ctx.z_.rows(), N);
    if (ctx.losses_.size() != N) ctx.losses_.resize(N);
    ctx.z_.colwise() += b;
    for (Index m = 0; m < N / B; ++m) {
      const MatrixCRef<T> z(ctx.z_.middleCols(m * B, B));
      loss_(z, labels, VectorRef<T>(ctx.losses_.segment(m * B, B)),
            MatrixRef<T>(ctx.dz_.middleCols(m * B, B)));
    }
    ctx.dz_ *= scale;
    ctx.loss_ =
        static_cast<T>(ctx.losses_.template cast<double>().sum() * static_cast<double>(scale));
    return ctx.loss_;
  }

  /// dh (=|+=) extra · g ⊙ m/(1 − p) with the mask of dc.
  static void accumulate(const DropoutContext& dc, const Dropout<T>& drop, const T* gp,
                         std::size_t gs, T extra, bool first, MatrixRef<T>& dh) noexcept {
    using Mode = DropoutContext::Mode;
    const auto rows = static_cast<std::size_t>(dh.rows());
    const auto cols = static_cast<std::size_t>(dh.cols());
    const auto hs = static_cast<std::size_t>(dh.outerStride());
    T* hp = dh.data();
    T factor = extra;
    if (dc.mode() == Mode::random) factor *= drop.scale();
    if (dc.mode() == Mode::zero) factor = T(0);
    if (dc.mode() != Mode::random) {
      for (std::size_t j = 0; j < cols; ++j) {
        for (std::size_t i = 0; i < rows; ++i) {
          const T v = gp[j * gs + i] * factor;
          hp[j * hs + i] = first ? v : hp[j * hs + i] + v;
        }
      }
      return;
    }
    const kernels::DropoutDraw d = dc.draw();
    const std::size_t n = rows * cols;
    const bool flat = cols <= 1 || hs == rows;  // g is a compact block: stride = rows
    // The first sample writes dh (no zero fill), the others add to it.
    auto segment = [&](std::size_t i0, std::size_t len, const T* x, T* y) noexcept {
      if (first) {
        kernels::dropout_segment<T>(d, i0, len, x, factor, y, nullptr);
      } else {
        kernels::dropout_accumulate_segment<T>(d, i0, len, x, factor, y);
      }
    };
    detail::parallel_column_segments(
        n, Dropout<T>::chunk, rows, gs, hs, flat,
        [&](std::size_t i, std::size_t len, std::size_t go, std::size_t ho) noexcept {
          segment(i, len, gp + go, hp + ho);
        });
  }

  MultiSampleDropoutOptions options_;
  Loss loss_;
  std::vector<Dropout<T>> drops_;
};

}  // namespace regula

#endif  // REGULA_LAYERS_MULTI_SAMPLE_DROPOUT_HPP
