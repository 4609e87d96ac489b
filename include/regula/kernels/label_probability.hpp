/// @file
/// Raw-pointer kernels of the label-probability losses, with scalar reference twins: losses
/// ℓ = φ(p) of the label's softmax probability p = softmax(z)_y alone (pass\@N coverage,
/// generalized and symmetric cross-entropy, MAE). Their gradient is cross-entropy's, scaled:
///
///   ∂ℓ/∂z = F·(softmax(z) − e_y),   F = −p·φ'(p),
///
/// so one pass over the column forms log p and log(1 − p) without cancellation, a loss's
/// `terms(log p, log(1 − p), ℓ, F)` gives ℓ and F in double, and one more pass writes the gradient.
/// log p and log(1 − p): when p < 1/2, log p = (z_y − m) − log S and log(1 − p) = log1p(−p);
/// otherwise, with R = Σ_{j≠y} e^{z_j − m} summed directly, log p = −log1p(R/e_y) and
/// log(1 − p) = log R − log S (neither S − e_y nor log S − (z_y − m) cancels). The label's
/// gradient element is −g·F·R/S rather than g·F·(p_y − 1).
#ifndef REGULA_KERNELS_LABEL_PROBABILITY_HPP
#define REGULA_KERNELS_LABEL_PROBABILITY_HPP

#include <cmath>
#include <cstddef>
#include <limits>

#include "regula/core/simd.hpp"
#include "regula/kernels/softmax.hpp"

namespace regula::kernels {

/// A column's label probability in the forms the label-probability losses need (double).
struct LabelProbability {
  /// log p, p = softmax(z)_y.
  double log_p = 0.0;
  /// log(1 − p).
  double log1mp = 0.0;
  /// R = Σ_{j≠y} e^{z_j − m}.
  double other = 0.0;
  /// S = Σ_j e^{z_j − m}.
  double S = 1.0;
};

/// The label probability of one column (see the file's comment); writes e^{z − m} to e when it is
/// not null (the gradient pass scales it in place; e must not overlap z). NaN in the column gives
/// NaN.
template <class T, class A = default_arch>
LabelProbability label_probability(const T* z, std::size_t n, std::size_t y, T* e) noexcept {
  const T m = column_max<T, A>(z, n);
  LabelProbability lp;
  lp.S = static_cast<double>(sum_exp<T, A>(z, n, m, e));
  const double zy = static_cast<double>(z[y]) - static_cast<double>(m);
  double log_s = std::log(lp.S);
  lp.log_p = zy - log_s;
  if (std::exp(lp.log_p) < 0.5) {
    lp.log1mp = std::log1p(-std::exp(lp.log_p));
    lp.other = lp.S - std::exp(zy);
    return lp;
  }
  // p ≥ 1/2: y is the maximum up to a factor 2, and S − e_y and log S − (z_y − m) would cancel.
  double other = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    if (j != y) other += std::exp(static_cast<double>(z[j]) - static_cast<double>(m));
  }
  const double ey = std::exp(zy);
  lp.other = other;
  lp.S = ey + other;
  log_s = std::log(lp.S);
  lp.log_p = -std::log1p(other / ey);
  lp.log1mp = std::log(other) - log_s;
  return lp;
}

/// g·F·(softmax(z) − e_y) into dz, which holds e^{z − m} from label_probability: every element
/// scaled by g·F/S, the label's set to −g·F·R/S.
template <class T, class A = default_arch>
void label_probability_gradient(const LabelProbability& lp, std::size_t n, std::size_t y, double F,
                                T g, T* dz) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const double gF = static_cast<double>(g) * F;
  const T scale = static_cast<T>(gF / lp.S);
  if (std::abs(scale) <= std::numeric_limits<T>::max()) {
    const B sb(scale);
    std::size_t i = 0;
    for (; i + W <= n; i += W) (sb * B::load_unaligned(dz + i)).store_unaligned(dz + i);
    for (; i < n; ++i) dz[i] *= scale;
  } else {
    // g·F/S past the largest T (a loss weight near it, as SCE's α = 1e300 in float): e/S ≤ 1
    // first, so an element whose e is 0 stays 0 instead of inf·0 = NaN; NaN F stays NaN.
    for (std::size_t i = 0; i < n; ++i)
      dz[i] = static_cast<T>(gF * (static_cast<double>(dz[i]) / lp.S));
  }
  dz[y] = static_cast<T>(-gF * (lp.other / lp.S));
}

/// A label-probability loss of one column with label y: `terms(log_p, log1mp, loss, F)` (double)
/// gives ℓ and F; writes g·F·(softmax(z) − e_y) to dz when it is not null (dz must not overlap z).
/// Returns ℓ.
template <class T, class A = default_arch, class Terms>
double label_probability_column(const T* z, std::size_t n, std::size_t y, Terms&& terms, T g,
                                T* dz) noexcept {
  const LabelProbability lp = label_probability<T, A>(z, n, y, dz);
  double loss = 0.0;
  double F = 0.0;
  terms(lp.log_p, lp.log1mp, loss, F);
  if (dz != nullptr) label_probability_gradient<T, A>(lp, n, y, F, g, dz);
  return loss;
}

/// Scalar reference of label_probability_column, wholly in double, element by element.
template <class T, class Terms>
double label_probability_column_reference(const T* z, std::size_t n, std::size_t y, Terms&& terms,
                                          T g, T* dz) noexcept {
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < n; ++j)
    m = static_cast<double>(z[j]) > m ? static_cast<double>(z[j]) : m;
  double S = 0.0;
  double other = 0.0;
  for (std::size_t j = 0; j < n; ++j) {
    const double e = std::exp(static_cast<double>(z[j]) - m);
    S += e;
    if (j != y) other += e;
  }
  const double ey = std::exp(static_cast<double>(z[y]) - m);
  const double log_p =
      ey >= other ? -std::log1p(other / ey) : (static_cast<double>(z[y]) - m) - std::log(S);
  const double log1mp = std::log(other) - std::log(S);
  double loss = 0.0;
  double F = 0.0;
  terms(log_p, log1mp, loss, F);
  if (dz != nullptr) {
    for (std::size_t j = 0; j < n; ++j) {
      const double p = std::exp(static_cast<double>(z[j]) - m) / S;
      dz[j] = static_cast<T>(static_cast<double>(g) * F * (j == y ? -other / S : p));
    }
  }
  return loss;
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_LABEL_PROBABILITY_HPP
