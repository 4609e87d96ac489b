/// @file
/// Raw-pointer kernels of ⊥Grad (the perpendicular gradient of Prieto et al., ICLR 2025): the
/// dot products ⟨w, g⟩, ⟨w, w⟩, ⟨g, g⟩ accumulated in double from products formed in double,
/// the projection g − c·w and the rescale, each with a scalar reference twin.
#ifndef REGULA_KERNELS_PERP_GRAD_HPP
#define REGULA_KERNELS_PERP_GRAD_HPP

#include <cstddef>

#include "regula/core/simd.hpp"
#include "regula/kernels/reduce.hpp"

namespace regula::kernels {

/// The three dot products of ⊥Grad over n values.
struct PerpGradDots {
  double wg = 0.0;  ///< ⟨w, g⟩
  double ww = 0.0;  ///< ⟨w, w⟩
  double gg = 0.0;  ///< ⟨g, g⟩
};

/// Adds ⟨w, g⟩, ⟨w, w⟩ and ⟨g, g⟩ over w[0..n), g[0..n) to `d`.
template <class T, class A = default_arch>
void perp_grad_dots(const T* w, const T* g, std::size_t n, PerpGradDots& d) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  DoubleAccumulator<T, A> wg, ww, gg;
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B wb = B::load_unaligned(w + i);
    const B gb = B::load_unaligned(g + i);
    wg.add_product(wb, gb);
    ww.add_product(wb, wb);
    gg.add_product(gb, gb);
  }
  double swg = wg.sum(), sww = ww.sum(), sgg = gg.sum();
  for (; i < n; ++i) {
    const double wi = static_cast<double>(w[i]);
    const double gi = static_cast<double>(g[i]);
    swg += wi * gi;
    sww += wi * wi;
    sgg += gi * gi;
  }
  d.wg += swg;
  d.ww += sww;
  d.gg += sgg;
}

/// Scalar reference of perp_grad_dots (left to right, in double).
template <class T>
void perp_grad_dots_reference(const T* w, const T* g, std::size_t n, PerpGradDots& d) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    const double wi = static_cast<double>(w[i]);
    const double gi = static_cast<double>(g[i]);
    d.wg += wi * gi;
    d.ww += wi * wi;
    d.gg += gi * gi;
  }
}

/// g ← g − c·w over n values; returns Σ g_new² (in double).
template <class T, class A = default_arch>
double perp_grad_project(const T* w, T* g, std::size_t n, T c) noexcept {
  using B = xsimd::batch<T, A>;
  constexpr std::size_t W = B::size;
  const B cb(c);
  DoubleAccumulator<T, A> pp;
  std::size_t i = 0;
  for (; i + W <= n; i += W) {
    const B p = xsimd::fnma(cb, B::load_unaligned(w + i), B::load_unaligned(g + i));
    p.store_unaligned(g + i);
    pp.add_product(p, p);
  }
  double s = pp.sum();
  for (; i < n; ++i) {
    g[i] = g[i] - c * w[i];
    s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
  }
  return s;
}

/// Scalar reference of perp_grad_project.
template <class T>
double perp_grad_project_reference(const T* w, T* g, std::size_t n, T c) noexcept {
  double s = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    g[i] = g[i] - c * w[i];
    s += static_cast<double>(g[i]) * static_cast<double>(g[i]);
  }
  return s;
}

}  // namespace regula::kernels

#endif  // REGULA_KERNELS_PERP_GRAD_HPP
