/// @file
/// Sinkhorn distillation (SinKD; Cui et al., LREC-COLING 2024 / TNNLS 2024), in its batch-wise
/// form: an entropic optimal-transport plan between the B student samples and the B teacher
/// samples of a mini-batch, with an L1 cost between their softened distributions.
///
/// With P_s = softmax(Z_s/T), P_t = softmax(Z_t/T) (one column per sample):
///
///   W_ij = ‖P_s[:, i] − P_t[:, j]‖₁   (B × B, in [0, 2])
///   K = exp(−W/ε); N iterations of: divide every row by its sum, then every column by its sum
///   P = the result (unit row and column mass, total mass B);   L = λ·Σ_ij P_ij W_ij
///
/// Defaults of the official code (2018cx/SinKD loss.py, class Sinkhorn): T = 2 (hard-coded
/// there), ε = 0.1, N = 20 (the call site's value), λ = 1e-3 (GLUE/BERT; 8e-4 for GPT-Neo).
///
/// Numerics: the iterations update potentials f, g, with P_ij = exp(f_i + g_j − W_ij/ε),
/// f_i = −LSE_j(g_j − W_ij/ε), g_j = −LSE_i(f_i − W_ij/ε), the same map as the official
/// divisions. When every W_ij/ε ≤ 40 (float) or 500 (double), so that K = exp(−W/ε) and the
/// scalings e^f, e^g are normal numbers, they run as f = −log(K e^g), g = −log(Kᵀ e^f) (B²
/// exponentials once, then matrix–vector products); otherwise (small ε: 1e-3 and below work in
/// float, where exp(−W/ε) underflows), or if a scaling leaves the finite range, in the log
/// domain with SIMD log-sum-exps. W = Σ P_s[:, i] + Σ P_t[:, j] − 2·Σ_c min(P_s[c, i], P_t[c, j])
/// (the L1 distance of non-negative vectors), which is 0 exactly for identical columns.
///
/// Gradient modes (SinkhornGradMode):
/// - `unrolled` (default): the exact gradient of L after N iterations, equal to backpropagating
///   through every normalisation step as the official code does under autograd. regula stores
///   only the 2N potential vectors (2N·B values, not 2N matrices of B²) and walks the steps
///   backwards recomputing each plan from W and the potentials: ∂L/∂W = λP(1 − W/ε) +
///   Σ_k (ḡ^k_j Q^k_ij + f̄^k_i R^k_ij)/ε, with f̄^k = −Σ_j ḡ^k_j Q^k_ij (+ λ Σ_j P W at k = N),
///   ḡ^{k−1}_j = −Σ_i f̄^k_i R^k_ij, Q^k, R^k the column- and row-normalised plans of step k.
///   Cost: 2N·B² exponentials forward and again backward, plus O(B²·C) for W and its gradient.
/// - `envelope`: treats P as a constant and keeps ∂L/∂W = λP. Cheap (no backward iterations) but
///   an approximation here: the envelope theorem applies to the entropic objective at
///   convergence, while SinKD's loss omits the entropy term and stops after N steps.
///
/// Then ∂L/∂P_s[c, i] = Σ_j ∂L/∂W_ij · sign(P_s[c, i] − P_t[c, j]) (sign(0) = 0) and
/// ∂L/∂z_i = (1/T)·p_i ⊙ (g_i − ⟨p_i, g_i⟩). The teacher is a constant.
///
/// Differences from the official code: the log domain (above); T is an option instead of a
/// hard-coded 2; and the wiring bug of its glue_train.py (the module stored as
/// `saliency_function` and only added under a `saliency` token, so `--distill_loss
/// kd+sinkhorn` never adds it) has no counterpart: this function is the loss of loss.py.
///
/// The per-sample variant returns λ·Σ_j P_ij W_ij for every student sample i (they sum to L);
/// the plan couples the samples, so there is no per-sample gradient.
///
/// Option bounds (checked at the boundary, each refusal naming its parameter):
/// - ε ≥ sinkhorn_epsilon_min<T>: 1e-6 in float, 1e-15 in double. The potentials f, g are of
///   the size of W/ε ≤ 2/ε, and the plan's exponents f_i + g_j − W_ij/ε sum three of them, so
///   their rounding is about 6/ε units in the last place: at the bound about 0.4 (float) and 0.7
///   (double), i.e. plan entries still within a factor e^{±1}; a few times below it they
///   overflow (measured: NaN and inf losses from ε = 1e-8 in float and 1e-20 in double, and
///   1/ε itself is inf in float below 3e-39). The unrolled gradient amplifies that rounding
///   further (measured in float on one 2 × 3 input: 3e-3 relative error at ε = 1e-3, a gradient
///   2,500 times too large at 1e-6, NaN at 1e-6 with 1e5 iterations), so a float call with
///   ε < sinkhorn_float_in_double_below = 1e-2 runs entirely in double (the workspace keeps
///   double buffers for it) and rounds its loss, per-sample losses, gradient, cost and plan to
///   float once: they are then exactly the double call's results rounded. At ε ≥ 1e-2 float
///   stays within about 5e-6 of double (measured up to 1e5 iterations).
/// - T in [√min, √max] of T's normal range, as the other distillation losses (1/T normal).
/// - 1 ≤ iterations ≤ sinkhorn_max_iterations = 100000: the unrolled gradient keeps the 2N
///   potential vectors (2N·B values) and costs 4N·B² exponentials; SinKD uses N = 20, and past
///   1e5 steps a call would run for hours (INT_MAX steps asked 32 GiB of potentials before this
///   bound). Without a gradient, or with the envelope gradient, only two potential vectors are
///   kept, whatever N.
///
/// Memory: a SinkhornKDWorkspace holds P_s, P_t, W, the plan and the potentials (all N steps'
/// for the unrolled gradient, two otherwise), and for float calls below 1e-2 the same in double;
/// once sized for a shape (first call) further calls of that shape do not allocate. The overloads
/// without a workspace allocate one per call.
#ifndef REGULA_LOSSES_SINKHORN_KD_HPP
#define REGULA_LOSSES_SINKHORN_KD_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "regula/core/checks.hpp"
#include "regula/core/columns.hpp"
#include "regula/core/error.hpp"
#include "regula/core/matrix.hpp"
#include "regula/core/options.hpp"
#include "regula/core/parallel.hpp"
#include "regula/core/simd.hpp"
#include "regula/kernels/kd.hpp"
#include "regula/kernels/sinkhorn.hpp"
#include "regula/kernels/softmax.hpp"
#include "regula/losses/kd_common.hpp"

namespace regula {

/// The smallest ε sinkhorn_kd accepts in T (see the file comment): below it the rounding of
/// the log-domain exponents, about 6/ε ulps, exceeds 1 and soon overflows.
template <class T>
inline constexpr double sinkhorn_epsilon_min = std::is_same_v<T, float> ? 1e-6 : 1e-15;

/// Below this ε a float sinkhorn_kd runs in double (see the file comment): the float log-domain
/// potentials round by about 6/ε ulps, which the unrolled gradient amplifies.
inline constexpr double sinkhorn_float_in_double_below = 1e-2;

/// The most Sinkhorn iterations sinkhorn_kd accepts (see the file comment).
inline constexpr int sinkhorn_max_iterations = 100000;

/// How sinkhorn_kd differentiates through the Sinkhorn iterations (see the file comment).
enum class SinkhornGradMode : std::uint8_t { unrolled, envelope };

/// Options of sinkhorn_kd, a plain struct with chainable `with_*` setters; defaults of the
/// official SinKD code.
struct SinkhornKDOptions {
  /// T > 0, in [√min, √max] of the scalar type (as for the other distillation losses).
  double temperature = 2.0;
  /// ε, the entropic regularization, ≥ sinkhorn_epsilon_min<T>.
  double epsilon = 0.1;
  /// Sinkhorn iterations, in [1, sinkhorn_max_iterations].
  int iterations = 20;
  /// λ, the weight of the transport loss; finite in the loss's scalar type.
  double lambda = 1e-3;
  /// How the gradient goes through the iterations (see the file comment).
  SinkhornGradMode grad_mode = SinkhornGradMode::unrolled;

  /// Sets `temperature` (chainable).
  SinkhornKDOptions& with_temperature(double t) noexcept {
    return detail::set(*this, temperature, t);
  }
  /// Sets `epsilon` (chainable).
  SinkhornKDOptions& with_epsilon(double e) noexcept { return detail::set(*this, epsilon, e); }
  /// Sets `iterations` (chainable).
  SinkhornKDOptions& with_iterations(int n) noexcept { return detail::set(*this, iterations, n); }
  /// Sets `lambda` (chainable).
  SinkhornKDOptions& with_lambda(double l) noexcept { return detail::set(*this, lambda, l); }
  /// Sets `grad_mode` (chainable).
  SinkhornKDOptions& with_grad_mode(SinkhornGradMode m) noexcept {
    return detail::set(*this, grad_mode, m);
  }
};

template <class T>
class SinkhornKDWorkspace;

namespace detail {
/// A float workspace's buffers for the calls it runs in double (sinkhorn_float_in_double_below).
template <class U>
struct SinkhornInDouble;
/// A double workspace has none.
struct SinkhornNoWide {};

/// The Sinkhorn KD computation behind every call (checks, forward, backward), a friend of the
/// workspace whose buffers it fills.
template <class T>
T sinkhorn_run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
               const SinkhornKDOptions& opt, SinkhornKDWorkspace<T>& ws, VectorRef<T>* losses,
               MatrixRef<T>* dz);
template <class T>
T sinkhorn_run_in_double(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                         const SinkhornKDOptions& opt, SinkhornKDWorkspace<T>& ws,
                         VectorRef<T>* losses, MatrixRef<T>* dz);
}  // namespace detail

/// Caller-owned buffers of sinkhorn_kd; after a call, `cost()` and `plan()` hold W and P.
template <class T>
class SinkhornKDWorkspace {
  static_assert(is_scalar_v<T>, "regula::SinkhornKDWorkspace<T>: T must be float or double");

 public:
  /// W (B × B): W(i, j) = ‖P_s[:, i] − P_t[:, j]‖₁ of the last call.
  [[nodiscard]] const Matrix<T>& cost() const noexcept { return w_; }
  /// The transport plan P (B × B) of the last call: unit column sums, row sums ≈ 1.
  [[nodiscard]] const Matrix<T>& plan() const noexcept { return plan_; }
  /// Sizes the buffers for `classes × batch` logits and `iterations` steps (allocates only if
  /// the shape grows past what was reserved before).
  /// @throws regula::invalid_argument if classes or batch is negative, or iterations is not in
  ///         [0, sinkhorn_max_iterations].
  void reserve(Index classes, Index batch, int iterations) {
    constexpr const char* who = "regula::SinkhornKDWorkspace::reserve";
    REGULA_EXPECTS(classes >= 0, who, "classes must be >= 0, got ", classes);
    REGULA_EXPECTS(batch >= 0, who, "batch must be >= 0, got ", batch);
    REGULA_EXPECTS(iterations >= 0 && iterations <= sinkhorn_max_iterations, who,
                   "iterations must be in [0, ", sinkhorn_max_iterations, "], got ", iterations);
    const Index n = static_cast<Index>(iterations);
    if (ps_.rows() != classes || ps_.cols() != batch) {
      ps_.resize(classes, batch);
      pt_.resize(classes, batch);
      gps_.resize(classes, batch);
    }
    if (w_.rows() != batch) {
      w_.resize(batch, batch);
      wt_.resize(batch, batch);
      wpack_.resize(4 * batch, (batch + 3) / 4);
      plan_.resize(batch, batch);
      wbar_.resize(batch, batch);
      fbar_.resize(batch);
      gbar_.resize(batch);
      tmp_.resize(batch);
    }
    if (f_.rows() != batch || f_.cols() < n) {  // a longer history serves shorter runs
      f_.resize(batch, n);
      g_.resize(batch, n + 1);
    }
  }

 private:
  template <class U>
  friend U detail::sinkhorn_run(const char*, const MatrixCRef<U>&, const MatrixCRef<U>&,
                                const SinkhornKDOptions&, SinkhornKDWorkspace<U>&, VectorRef<U>*,
                                MatrixRef<U>*);
  template <class U>
  friend U detail::sinkhorn_run_in_double(const char*, const MatrixCRef<U>&, const MatrixCRef<U>&,
                                          const SinkhornKDOptions&, SinkhornKDWorkspace<U>&,
                                          VectorRef<U>*, MatrixRef<U>*);
  Matrix<T> ps_, pt_, gps_;
  Matrix<T> w_, wt_, plan_, wbar_;
  Matrix<T> wpack_;  // W̄ packed for the backward tiles: column blk holds (W̄(4blk + r, j))_{j, r<4}
  Matrix<T> f_, g_;
  Vector<T> fbar_, gbar_, tmp_;
  std::conditional_t<std::is_same_v<T, float>, detail::SinkhornInDouble<double>,
                     detail::SinkhornNoWide>
      wide_;
};

namespace detail {

template <class U>
struct SinkhornInDouble {
  SinkhornKDWorkspace<U> ws;
  Matrix<U> z, v, dz;
  Vector<U> losses;
};

/// sinkhorn_run of a float call with ε < sinkhorn_float_in_double_below (its options already
/// checked): the logits converted to double, the whole computation in double with the
/// workspace's double buffers, the loss, per-sample losses, gradient, cost and plan rounded to
/// float once.
template <class T>
T sinkhorn_run_in_double(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
                         const SinkhornKDOptions& opt, SinkhornKDWorkspace<T>& ws,
                         VectorRef<T>* losses, MatrixRef<T>* dz) {
  auto& w = ws.wide_;
  ws.reserve(z.rows(), z.cols(), 0);  // for cost() and plan(), and consistent for later calls
  w.z = z.template cast<double>();
  w.v = v.template cast<double>();
  w.losses.resize(z.cols());
  w.dz.resize(z.rows(), z.cols());
  VectorRef<double> lref(w.losses);
  MatrixRef<double> dref(w.dz);
  const double total = sinkhorn_run<double>(who, w.z, w.v, opt, w.ws, losses ? &lref : nullptr,
                                            dz ? &dref : nullptr);
  if (losses != nullptr) *losses = w.losses.template cast<T>();
  if (dz != nullptr) *dz = w.dz.template cast<T>();
  ws.w_ = w.ws.w_.template cast<T>();
  ws.plan_ = w.ws.plan_.template cast<T>();
  return static_cast<T>(total);
}

template <class T>
T sinkhorn_run(const char* who, const MatrixCRef<T>& z, const MatrixCRef<T>& v,
               const SinkhornKDOptions& opt, SinkhornKDWorkspace<T>& ws, VectorRef<T>* losses,
               MatrixRef<T>* dz) {
  detail::check_temperature<T>(who, opt.temperature);
  detail::check_positive(who, "epsilon", opt.epsilon);
  REGULA_EXPECTS(opt.epsilon >= sinkhorn_epsilon_min<T>, who,
                 "epsilon must be >= ", sinkhorn_epsilon_min<T>, " in ", detail::scalar_name<T>(),
                 " (below, the log-domain exponents round by more than 1 and overflow), got ",
                 opt.epsilon);
  REGULA_EXPECTS(opt.iterations >= 1, who, "iterations must be >= 1, got ", opt.iterations);
  REGULA_EXPECTS(opt.iterations <= sinkhorn_max_iterations, who,
                 "iterations must be <= ", sinkhorn_max_iterations, ", got ", opt.iterations);
  detail::check_finite_in<T>(who, "lambda", opt.lambda);
  detail::check_kd_shapes(who, z, v, losses, dz);
  if constexpr (std::is_same_v<T, float>) {
    if (opt.epsilon < sinkhorn_float_in_double_below) {
      return sinkhorn_run_in_double<T>(who, z, v, opt, ws, losses, dz);
    }
  }
  const Index C = z.rows(), Bn = z.cols();
  const int N = opt.iterations;
  // Only the unrolled backward reads the potentials of every step; otherwise two alternate.
  const bool history = dz != nullptr && opt.grad_mode == SinkhornGradMode::unrolled;
  ws.reserve(C, Bn, history ? N : 1);
  const auto fcol = [&](int k) { return ws.f_.col(history ? k - 1 : 0).data(); };
  const auto gcol = [&](int k) { return ws.g_.col(history ? k : k % 2).data(); };
  const auto n = static_cast<std::size_t>(C);
  const auto b = static_cast<std::size_t>(Bn);
  const T kappa = static_cast<T>(1.0 / opt.temperature);
  const T ie = static_cast<T>(1.0 / opt.epsilon);
  const T lambda = static_cast<T>(opt.lambda);

  // Softened distributions, one column per sample. z/T passes the largest T for |z| > T·max at
  // T < 1, and the softmax of a column holding +inf is NaN throughout: such a column is done
  // again from the logits shifted by their maximum before 1/T, where a logit that overflows
  // is −inf, with probability 0 (NaN logits stay NaN).
  const auto soften = [&](const T* x, T* p) noexcept {
    for (std::size_t c = 0; c < n; ++c) p[c] = x[c] * kappa;
    kernels::softmax_column<T>(p, n, p);
    if (REGULA_UNLIKELY(std::isnan(p[0]))) {
      const T m = kernels::column_max<T>(x, n);
      for (std::size_t c = 0; c < n; ++c) p[c] = (x[c] - m) * kappa;
      kernels::softmax_column<T>(p, n, p);
    }
  };
  for (Index i = 0; i < Bn; ++i) {
    soften(z.col(i).data(), ws.ps_.col(i).data());
    soften(v.col(i).data(), ws.pt_.col(i).data());
  }

  // Cost W(i, j) = ‖P_s[:, i] − P_t[:, j]‖₁ = Σ P_s[:, i] + Σ P_t[:, j] − 2·Σ min (stored
  // transposed in wt_), in 4 × 4 tiles; the column sums go to fbar_ and gbar_ for the moment.
  for (std::size_t i = 0; i < b; ++i) {
    ws.fbar_[static_cast<Index>(i)] =
        kernels::lane_sum<T>(ws.ps_.col(static_cast<Index>(i)).data(), n);
    ws.gbar_[static_cast<Index>(i)] =
        kernels::lane_sum<T>(ws.pt_.col(static_cast<Index>(i)).data(), n);
  }
  const std::size_t row_blocks = (b + 3) / 4;
  parallel_for_chunks(row_blocks, 8, [&](std::size_t, std::size_t begin, std::size_t end) noexcept {
    for (std::size_t blk = begin; blk < end; ++blk) {
      const std::size_t i0 = 4 * blk;
      const T* a[4];
      for (std::size_t r = 0; r < 4; ++r) {
        a[r] = ws.ps_.col(static_cast<Index>(i0 + r < b ? i0 + r : i0)).data();
      }
      const std::size_t rows = b - i0 < 4 ? b - i0 : 4;
      for (std::size_t j0 = 0; j0 < b; j0 += 4) {
        const T* bb[4];
        for (std::size_t k = 0; k < 4; ++k) {
          bb[k] = ws.pt_.col(static_cast<Index>(j0 + k < b ? j0 + k : j0)).data();
        }
        T out[16];
        kernels::min_sum_4x4<T>(a, bb, n, out);
        const std::size_t cols = b - j0 < 4 ? b - j0 : 4;
        for (std::size_t r = 0; r < rows; ++r) {
          const T sa = ws.fbar_[static_cast<Index>(i0 + r)];
          for (std::size_t k = 0; k < cols; ++k) {
            const T d = sa + ws.gbar_[static_cast<Index>(j0 + k)] - T(2) * out[4 * r + k];
            // max keeps a rounding residue from going below 0 and lets NaN through.
            ws.wt_(static_cast<Index>(j0 + k), static_cast<Index>(i0 + r)) = d < T(0) ? T(0) : d;
          }
        }
      }
    }
  });
  ws.w_.noalias() = ws.wt_.transpose();

  // Sinkhorn potentials: g^0 = 0; f^k from g^{k−1} (rows), g^k from f^k (columns), with
  // f_i = −log Σ_j exp(g_j − W_ij/ε) and g_j = −log Σ_i exp(f_i − W_ij/ε).
  ws.g_.col(0).setZero();  // g^0 (gcol(0) either way)
  // Where every W_ij/ε is small enough for K = exp(−W/ε) and the scalings e^f, e^g to stay
  // normal numbers, the iterations run as matrix–vector products with K (B² exponentials once
  // instead of 2N·B², the same map as the log domain); otherwise, or if a scaling over- or
  // underflows, in the log domain.
  const T limit = std::is_same_v<T, float> ? T(40) : T(500);
  bool scaled = true;
  for (Index j = 0; j < Bn && scaled; ++j) {
    const T* wc = ws.w_.col(j).data();
    for (std::size_t i = 0; i < b; ++i) {
      if (!(wc[i] * ie <= limit)) {  // also false for NaN
        scaled = false;
        break;
      }
    }
  }
  if (scaled) {
    ws.plan_ = (ws.w_.array() * (-ie)).exp().matrix();  // K, columns j
    ws.wt_ = ws.plan_.transpose();                      // Kᵀ, columns i
    for (int k = 1; k <= N && scaled; ++k) {
      T* f = fcol(k);
      const T* gp = gcol(k - 1);
      T* g = gcol(k);
      // f = −log(K e^{g^{k−1}}), then g = −log(Kᵀ e^{f}) with e^{f} = 1/(K e^{g^{k−1}}).
      kernels::sinkhorn_scaled_half<T>(ws.plan_.data(), b, gp, true, ws.tmp_.data(), f);
      kernels::sinkhorn_scaled_half<T>(ws.wt_.data(), b, ws.tmp_.data(), false, ws.fbar_.data(), g);
      for (std::size_t i = 0; i < b; ++i)
        scaled = scaled && std::isfinite(f[i]) && std::isfinite(g[i]);
    }
    if (!scaled) ws.wt_ = ws.w_.transpose();
  }
  if (!scaled) {
    ws.g_.col(0).setZero();  // the scaled run may have overwritten g^0 in place
    for (int k = 1; k <= N; ++k) {
      T* f = fcol(k);
      const T* gp = gcol(k - 1);
      T* g = gcol(k);
      kernels::neg_lse_rows<T>(ws.w_.data(), b, b, gp, b, ie, f);  // rows i of W
      kernels::neg_lse_rows<T>(ws.wt_.data(), b, b, f, b, ie, g);  // rows j of Wᵀ
    }
  }

  // Plan and loss; per-row contributions for the per-sample variant.
  const T* fN = fcol(N);
  const T* gN = gcol(N);
  ws.tmp_.setZero();
  double total = 0.0;
  for (Index j = 0; j < Bn; ++j) {
    kernels::sinkhorn_plan_column<T>(ws.w_.col(j).data(), fN, gN[j], ie, b, ws.plan_.col(j).data(),
                                     ws.tmp_.data());
  }
  for (Index i = 0; i < Bn; ++i) {
    const T row = lambda * ws.tmp_[i];
    if (losses != nullptr) (*losses)[i] = row;
    total += static_cast<double>(row);
  }
  if (dz == nullptr) return static_cast<T>(total);

  // ∂L/∂W into wbar.
  if (opt.grad_mode == SinkhornGradMode::envelope) {
    ws.wbar_ = lambda * ws.plan_;
  } else {
    // Direct terms: λP(1 − W/ε); f̄^N_i = λ Σ_j P_ij W_ij, ḡ^N_j = λ Σ_i P_ij W_ij.
    ws.wbar_ = (lambda * ws.plan_.array() * (T(1) - ws.w_.array() * ie)).matrix();
    ws.fbar_ = lambda * ws.tmp_;
    for (Index j = 0; j < Bn; ++j) ws.gbar_[j] = lambda * ws.plan_.col(j).dot(ws.w_.col(j));
    for (int k = N; k >= 1; --k) {
      const T* f = fcol(k);
      const T* g = gcol(k);
      const T* gp = gcol(k - 1);
      // Column step g^k: W̄ += ḡ_j Q/ε, f̄ −= Σ_j ḡ_j Q.
      for (Index j = 0; j < Bn; ++j) {
        kernels::sinkhorn_col_adjoint<T>(ws.w_.col(j).data(), f, g[j], ie, ws.gbar_[j], b,
                                         ws.wbar_.col(j).data(), ws.fbar_.data());
      }
      // Row step f^k: W̄ += f̄_i R/ε, ḡ^{k−1}_j = −Σ_i f̄_i R.
      for (Index j = 0; j < Bn; ++j) {
        ws.gbar_[j] = -kernels::sinkhorn_row_adjoint<T>(ws.w_.col(j).data(), f, gp[j], ie,
                                                        ws.fbar_.data(), b, ws.wbar_.col(j).data());
      }
      ws.fbar_.setZero();
    }
  }

  // ∂L/∂P_s[c, i] = Σ_j W̄_ij sign(P_s[c, i] − P_t[c, j]): W̄ packed four samples i at a time,
  // then blocks of classes (in parallel) × tiles of four samples, each block of P_t (all j)
  // staying in cache while every tile streams it; then through the softmax.
  const std::size_t blocks = (b + 3) / 4;
  for (std::size_t blk = 0; blk < blocks; ++blk) {
    T* wp = ws.wpack_.col(static_cast<Index>(blk)).data();
    for (std::size_t j = 0; j < b; ++j) {
      for (std::size_t r = 0; r < 4; ++r) {
        const std::size_t i = 4 * blk + r;
        wp[4 * j + r] = i < b ? ws.wbar_(static_cast<Index>(i), static_cast<Index>(j)) : T(0);
      }
    }
  }
  constexpr std::size_t cblock = 4 * simd::width<T>;
  parallel_for_chunks(
      (n + cblock - 1) / cblock, 1, [&](std::size_t, std::size_t begin, std::size_t end) noexcept {
        for (std::size_t cb = begin; cb < end; ++cb) {
          const std::size_t c0 = cb * cblock;
          const std::size_t len = n - c0 < cblock ? n - c0 : cblock;
          for (std::size_t blk = 0; blk < blocks; ++blk) {
            const std::size_t i0 = 4 * blk;
            const std::size_t rows = b - i0 < 4 ? b - i0 : 4;
            const T* a[4];
            T* acc[4];
            for (std::size_t r = 0; r < 4; ++r) {
              const auto i = static_cast<Index>(i0 + (r < rows ? r : 0));
              a[r] = ws.ps_.col(i).data() + c0;
              acc[r] = ws.gps_.col(i).data() + c0;
            }
            kernels::sign_accumulate_4<T>(a, rows, ws.pt_.data() + c0, n, b,
                                          ws.wpack_.col(static_cast<Index>(blk)).data(), len, acc);
          }
        }
      });
  MatrixRef<T>& out = *dz;
  detail::for_each_column(C, Bn, [&](std::size_t ii) noexcept {
    const auto i = static_cast<Index>(ii);
    T* dcol = out.col(i).data();
    kernels::softmax_backward_column<T>(ws.ps_.col(i).data(), ws.gps_.col(i).data(), n, dcol);
    for (std::size_t c = 0; c < n; ++c) dcol[c] *= kappa;
  });
  return static_cast<T>(total);
}

}  // namespace detail

/// The Sinkhorn KD loss L = λ·Σ_ij P_ij W_ij of `student` against `teacher` (`classes × batch`);
/// `workspace` keeps W and P (cost(), plan()). See the file comment.
/// @throws regula::invalid_argument on an empty batch, shapes that differ, T outside
///         [√min, √max] of T, ε < sinkhorn_epsilon_min<T>, iterations outside
///         [1, sinkhorn_max_iterations] or a non-finite λ.
template <class T>
T sinkhorn_kd(const MatrixCRef<T>& student, const MatrixCRef<T>& teacher,
              SinkhornKDWorkspace<T>& workspace, const SinkhornKDOptions& options = {}) {
  return detail::sinkhorn_run<T>("regula::sinkhorn_kd", student, teacher, options, workspace,
                                 nullptr, nullptr);
}

/// The Sinkhorn KD loss and its gradient with respect to the student's logits (unrolled or
/// envelope, per `options.grad_mode`) in `dstudent`.
template <class T>
T sinkhorn_kd(const MatrixCRef<T>& student, const MatrixCRef<T>& teacher, MatrixRef<T> dstudent,
              SinkhornKDWorkspace<T>& workspace, const SinkhornKDOptions& options = {}) {
  return detail::sinkhorn_run<T>("regula::sinkhorn_kd", student, teacher, options, workspace,
                                 nullptr, &dstudent);
}

/// Per-sample contributions losses[i] = λ·Σ_j P_ij W_ij (they sum to the loss).
template <class T>
void sinkhorn_kd_per_sample(const MatrixCRef<T>& student, const MatrixCRef<T>& teacher,
                            VectorRef<T> losses, SinkhornKDWorkspace<T>& workspace,
                            const SinkhornKDOptions& options = {}) {
  (void)detail::sinkhorn_run<T>("regula::sinkhorn_kd_per_sample", student, teacher, options,
                                workspace, &losses, nullptr);
}

/// Convenience overloads that allocate a workspace for the call.
template <class DZ, class DV>
[[nodiscard]] typename DZ::Scalar sinkhorn_kd(const Eigen::MatrixBase<DZ>& student,
                                              const Eigen::MatrixBase<DV>& teacher,
                                              const SinkhornKDOptions& options = {}) {
  using T = typename DZ::Scalar;
  SinkhornKDWorkspace<T> ws;
  return sinkhorn_kd<T>(MatrixCRef<T>(student.derived()), MatrixCRef<T>(teacher.derived()), ws,
                        options);
}

/// Loss and gradient, allocating a workspace for the call.
template <class DZ, class DV>
typename DZ::Scalar sinkhorn_kd(const Eigen::MatrixBase<DZ>& student,
                                const Eigen::MatrixBase<DV>& teacher,
                                MatrixRef<typename DZ::Scalar> dstudent,
                                const SinkhornKDOptions& options = {}) {
  using T = typename DZ::Scalar;
  SinkhornKDWorkspace<T> ws;
  return sinkhorn_kd<T>(MatrixCRef<T>(student.derived()), MatrixCRef<T>(teacher.derived()),
                        dstudent, ws, options);
}

}  // namespace regula

#endif  // REGULA_LOSSES_SINKHORN_KD_HPP
