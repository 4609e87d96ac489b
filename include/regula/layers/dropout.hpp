/// @file
/// Dropout (Srivastava et al., JMLR 2014) with PyTorch's semantics, a counter-based mask and a
/// backward that recomputes the mask instead of storing it.
#ifndef REGULA_LAYERS_DROPOUT_HPP
#define REGULA_LAYERS_DROPOUT_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/stream.hpp"
#include "regula/kernels/dropout.hpp"
#include "regula/layers/stream_layer.hpp"

namespace regula {

/// Options of Dropout, with PyTorch's names: `p` is the probability of *zeroing* an element.
struct DropoutOptions {
  /// Drop probability in [0, 1] (PyTorch's default 0.5).
  double p = 0.5;
  /// Keep a 1-bit mask in the context (n/8 bytes) instead of recomputing it in backward. Both
  /// give bit-identical gradients; recomputation stores nothing and costs one Philox pass.
  bool store_mask = false;
  /// Sets `p` (chainable).
  DropoutOptions& with_p(double v) noexcept { return detail::set(*this, p, v); }
  /// Sets `store_mask` (chainable).
  DropoutOptions& with_store_mask(bool v) noexcept { return detail::set(*this, store_mask, v); }
};

/// What backward needs from a forward call: where its mask came from (the stream position and
/// keep threshold), the shape, and the 1-bit mask when the options asked for one. Small,
/// caller-owned and reusable: passing the same context to every forward call reuses its mask
/// storage, so only the first call allocates.
class DropoutContext {
 public:
  /// How forward treated its input (random: y = x ⊙ m/(1 − p)).
  using Mode = DrawMode;

  DropoutContext() = default;

  /// How forward treated its input (see Mode).
  [[nodiscard]] Mode mode() const noexcept { return mode_; }
  /// Stream position of the first block the forward call used.
  [[nodiscard]] const Stream& stream() const noexcept { return stream_; }
  /// Rows of the forward's input.
  [[nodiscard]] Index rows() const noexcept { return rows_; }
  /// Columns of the forward's input.
  [[nodiscard]] Index cols() const noexcept { return cols_; }
  /// Keep threshold t: an element is kept when its 16-bit draw is below t.
  [[nodiscard]] std::uint32_t keep_threshold() const noexcept { return keep_threshold_; }
  /// True when the 1-bit mask is stored (DropoutOptions::store_mask in random mode).
  [[nodiscard]] bool has_mask() const noexcept { return has_mask_; }
  /// The stored mask: bit i mod 64 of word ⌊i/64⌋ is element i (i = col·rows + row), 1 = kept.
  [[nodiscard]] const std::vector<std::uint64_t>& mask() const noexcept { return mask_; }
  /// The draw descriptor of the dropout kernels at the recorded stream position.
  [[nodiscard]] kernels::DropoutDraw draw() const noexcept {
    return {stream_.key(), stream_.subsequence(), stream_.offset(), keep_threshold_};
  }
  /// Whether element (row, col) was kept (recomputed from the stream when no mask is stored).
  [[nodiscard]] bool kept(Index row, Index col) const noexcept {
    switch (mode_) {
      case Mode::identity:
        return true;
      case Mode::zero:
        return false;
      case Mode::random:
        break;
    }
    const auto i = static_cast<std::size_t>(col * rows_ + row);
    std::uint64_t keep[2];
    if (has_mask_) {
      keep[0] = mask_[(i / 128) * 2];
      keep[1] = mask_[(i / 128) * 2 + 1];
    } else {
      kernels::dropout_tile_keep_reference(draw(), i / 128, keep);
    }
    return ((keep[(i % 128) / 64] >> (i % 64)) & 1U) != 0;
  }

 private:
  template <class T>
  friend class Dropout;

  void begin(Index rows, Index cols, const Stream& stream, std::uint32_t threshold,
             Mode mode) noexcept {
    rows_ = rows;
    cols_ = cols;
    keep_threshold_ = threshold;
    stream_ = stream;
    has_mask_ = false;
    mode_ = mode;
  }

  Stream stream_{0};
  Index rows_ = 0;
  Index cols_ = 0;
  std::uint32_t keep_threshold_ = 0;
  Mode mode_ = Mode::identity;
  bool has_mask_ = false;
  std::vector<std::uint64_t> mask_;
};

/// Inverted dropout: in training y = x ⊙ m/(1 − p) with m_i ~ Bernoulli(1 − p) i.i.d.; in eval
/// y = x. Matches `torch.nn.Dropout`: p = 0 or eval is the identity and draws nothing; p = 1 gives
/// y = 0·x (so NaN stays NaN); a dropped NaN or ±inf element gives NaN, since y is x times a
/// factor of 0 or 1/(1 − p).
///
/// **Randomness.** Each element uses 16 bits of Philox4x32-10 at a fixed position (see
/// kernels/dropout.hpp), so masks are the same for any SIMD width and thread count, and the
/// stream advances by 16 blocks per started group of 128 elements. The keep probability is
/// quantized to q = round((1 − p)·2¹⁶)/2¹⁶ and the scale is 1/q, so E[y] = x holds exactly;
/// `effective_p()` reports 1 − q (|effective_p() − p| ≤ 2⁻¹⁷). A p so small that q rounds to 1 is
/// the identity; one so close to 1 that q rounds to 0 is p = 1.
///
/// **Shapes.** x is `features × batch` (any matrix with contiguous columns); element order is
/// column-major. y has x's shape and may be x itself (in place), but may not partly overlap it.
///
/// **Threads.** forward and backward are const and allocate nothing (unless a stored mask must
/// grow): one layer serves many threads, each with its own stream and context. With OpenMP the
/// element range is cut into fixed chunks, and results do not depend on the thread count.
///
/// ```cpp
/// regula::Dropout<float> drop(regula::DropoutOptions{0.1});
/// regula::Stream stream(42);
/// auto ctx = drop.forward(x, y, stream);  // y = x ⊙ m/(1 − p)
/// drop.backward(dy, ctx, dx);             // dx = dy ⊙ m/(1 − p), m recomputed
/// ```
template <class T>
class Dropout : public TrainingFlag {
  static_assert(is_scalar_v<T>, "regula::Dropout<T>: T must be float or double");

 public:
  /// The element type.
  using Scalar = T;
  /// What forward returns (or fills) and backward takes.
  using Context = DropoutContext;

  /// @throws regula::invalid_argument if p is not in [0, 1] (NaN included).
  explicit Dropout(DropoutOptions options = {}) : options_(options) {
    detail::check_probability("regula::Dropout", "p", options.p);
    keep_threshold_ = detail::keep_threshold(options.p);
    scale_ = detail::keep_scale<T>(keep_threshold_);
  }

  /// The options it was built with.
  [[nodiscard]] const DropoutOptions& options() const noexcept { return options_; }
  /// The drop probability actually used: 1 − round((1 − p)·2¹⁶)/2¹⁶.
  [[nodiscard]] double effective_p() const noexcept {
    return 1.0 - static_cast<double>(keep_threshold_) / 65536.0;
  }
  /// The factor applied to kept elements, 1/(1 − effective_p()), rounded to T.
  [[nodiscard]] T scale() const noexcept { return scale_; }

  /// Philox blocks a training-mode forward on n elements uses: 16 per started 128 elements when
  /// elements are drawn, 0 in eval mode or when p is 0 or 1.
  [[nodiscard]] std::uint64_t blocks_used(Index n) const noexcept {
    return draw_mode(keep_threshold_) == Context::Mode::random
               ? kernels::dropout_blocks(static_cast<std::size_t>(n))
               : 0;
  }

  /// y = x ⊙ m/(1 − p) in training, y = x in eval. Returns the context backward needs.
  /// @throws regula::invalid_argument if y's shape differs from x's or y partly overlaps x.
  [[nodiscard]] Context forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream) const {
    Context ctx;
    forward(x, y, stream, ctx);
    return ctx;
  }

  /// As above, writing into a caller-owned context whose mask storage is reused.
  void forward(const MatrixCRef<T>& x, MatrixRef<T> y, Stream& stream, Context& ctx) const {
    check_io("x", x, "y", y);
    ctx.begin(x.rows(), x.cols(), stream, keep_threshold_, draw_mode(keep_threshold_));
    if (detail::apply_fixed_mode(ctx.mode_, x, y)) return;
    const auto n = static_cast<std::size_t>(x.size());
    stream.skip(kernels::dropout_blocks(n));
    std::uint64_t* record = nullptr;
    if (options_.store_mask) {
      ctx.mask_.resize(kernels::dropout_mask_words(n));
      ctx.has_mask_ = true;
      record = ctx.mask_.data();
    }
    run(ctx.draw(), x, y, record, nullptr, scale_);
  }

  /// Starts a call on a rows × cols input without touching any data: fills ctx and advances
  /// the stream exactly as forward would. forward_columns then produces the call's output one
  /// block of columns at a time, in any order and as often as needed (a backward pass can
  /// regenerate a block instead of storing it), each block equal to what forward writes there.
  void begin(Index rows, Index cols, Stream& stream, Context& ctx) const noexcept {
    ctx.begin(rows, cols, stream, keep_threshold_, draw_mode(keep_threshold_));
    if (ctx.mode_ == Context::Mode::random)
      stream.skip(kernels::dropout_blocks(static_cast<std::size_t>(rows * cols)));
  }

  /// Columns [col0, col0 + x.cols()) of the call in ctx (from begin or forward): y = x ⊙ m/(1 − p)
  /// with the call's mask, or y = x (identity) or 0·x (p = 1) per ctx's mode. x holds those
  /// columns of the call's input. When `record` is not null and elements are drawn, their keep
  /// bits are written to it at their positions in the call (bits col0·rows …), so it must hold
  /// kernels::dropout_mask_words(rows·cols) words. Runs on the calling thread; allocates nothing.
  /// @throws regula::invalid_argument if the columns do not fit the call, y's shape differs from
  ///         x's or y partly overlaps x (y may be x itself).
  void forward_columns(const Context& ctx, Index col0, const MatrixCRef<T>& x, MatrixRef<T> y,
                       std::uint64_t* record = nullptr) const {
    REGULA_EXPECTS(col0 >= 0, "regula::Dropout::forward_columns", "col0 must be >= 0, got ", col0);
    REGULA_EXPECTS(x.rows() == ctx.rows() && col0 + x.cols() <= ctx.cols(),
                   "regula::Dropout::forward_columns", "x: columns [", col0, ", ", col0 + x.cols(),
                   ") of ", x.rows(), " rows do not fit the call (", ctx.rows(), " x ", ctx.cols(),
                   ")");
    check_io("x", x, "y", y);
    if (detail::apply_fixed_mode(ctx.mode(), x, y)) return;
    const kernels::DropoutDraw d = ctx.draw();
    const T scale = static_cast<T>(65536.0 / ctx.keep_threshold());
    const auto rows = static_cast<std::size_t>(x.rows());
    const std::size_t first = static_cast<std::size_t>(col0) * rows;
    if (x.cols() <= 1 || (x.outerStride() == x.rows() && y.outerStride() == y.rows())) {
      kernels::dropout_segment(d, first, rows * static_cast<std::size_t>(x.cols()), x.data(), scale,
                               y.data(), record);
      return;
    }
    for (Index j = 0; j < x.cols(); ++j) {
      kernels::dropout_segment(d, first + static_cast<std::size_t>(j) * rows, rows, x.col(j).data(),
                               scale, y.col(j).data(), record);
    }
  }

  /// dx = dy ⊙ m/(1 − p) with the mask of the forward call that produced `ctx` (dx = dy if it
  /// ran in eval mode, dx = 0·dy if p = 1). dx may be dy itself.
  /// @throws regula::invalid_argument if dy's shape differs from the forward input's, or dx's
  ///         from dy's, or dx partly overlaps dy.
  void backward(const MatrixCRef<T>& dy, const Context& ctx, MatrixRef<T> dx) const {
    // The mask and scale come from the context itself, so a context of any p is valid here.
    detail::check_backward("regula::Dropout::backward", dy, "dx", dx, ctx.rows(), ctx.cols(),
                           ctx.mode(), ctx.keep_threshold(), ctx.keep_threshold());
    if (detail::apply_fixed_mode(ctx.mode(), dy, dx)) return;
    const T scale = detail::keep_scale<T>(ctx.keep_threshold());
    run(ctx.draw(), dy, dx, nullptr, ctx.has_mask() ? ctx.mask().data() : nullptr, scale);
  }

  /// Elements per parallel chunk (detail::element_chunk): a multiple of the 128-element tile, so
  /// chunks never share a mask word.
  static constexpr std::size_t chunk = detail::element_chunk;

 private:
  static void check_io(const char* in_name, const MatrixCRef<T>& in, const char* out_name,
                       const MatrixRef<T>& out) {
    detail::check_output("regula::Dropout", in_name, in, out_name, out);
  }

  /// Walks the call's elements in fixed, tile-aligned chunks; inside a chunk, column by column
  /// when the columns are not adjacent in memory. Draws the mask (recording it when `record` is
  /// set) unless `stored` provides it.
  static void run(const kernels::DropoutDraw& d, const MatrixCRef<T>& x, MatrixRef<T>& y,
                  std::uint64_t* record, const std::uint64_t* stored, T scale) noexcept {
    const bool streaming =
        static_cast<std::size_t>(x.size()) * sizeof(T) >= kernels::streaming_bytes &&
        x.data() != y.data();
    detail::for_each_element_run(
        x, y, [&](std::size_t i0, std::size_t len, const T* in, T* out) noexcept {
          if (stored != nullptr) {
            kernels::masked_scale_segment(stored, i0, len, in, scale, out, streaming);
          } else {
            kernels::dropout_segment(d, i0, len, in, scale, out, record, streaming);
          }
        });
  }

  DropoutOptions options_;
  std::uint32_t keep_threshold_ = 0;
  T scale_ = T(1);
};

}  // namespace regula

#endif  // REGULA_LAYERS_DROPOUT_HPP
