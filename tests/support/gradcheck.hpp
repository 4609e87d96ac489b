// Finite-difference gradient check: for a random weighting w of the outputs, L(x) = <w, f(x)>;
// compares the central differences of L with the analytic vector–Jacobian product.
#ifndef REGULA_TESTS_SUPPORT_GRADCHECK_HPP
#define REGULA_TESTS_SUPPORT_GRADCHECK_HPP

#include <algorithm>
#include <cmath>

#include <Eigen/Core>

#include "tolerance.hpp"

namespace regula::test {

/// `f(x, y)` writes the output for input x into y (same shape as `out_shape`); `vjp(w, dx)` writes
/// the gradient of <w, f(x)> with respect to x at `x`. Returns the largest absolute error,
/// scaled by max(1, |gradient|).
template <class F, class VJP>
double gradcheck(const Eigen::MatrixXd& x, Eigen::Index out_rows, Eigen::Index out_cols, F&& f,
                 VJP&& vjp, const Eigen::MatrixXd& w, double h = fd_step) {
  Eigen::MatrixXd analytic(x.rows(), x.cols());
  vjp(w, analytic);
  Eigen::MatrixXd xp = x;
  Eigen::MatrixXd yp(out_rows, out_cols);
  Eigen::MatrixXd ym(out_rows, out_cols);
  double worst = 0.0;
  for (Eigen::Index i = 0; i < x.size(); ++i) {
    const double x0 = xp(i);
    xp(i) = x0 + h;
    f(xp, yp);
    xp(i) = x0 - h;
    f(xp, ym);
    xp(i) = x0;
    const double numeric = (w.cwiseProduct(yp).sum() - w.cwiseProduct(ym).sum()) / (2.0 * h);
    const double err = std::abs(numeric - analytic(i)) / std::max(1.0, std::abs(analytic(i)));
    worst = std::max(worst, err);
  }
  return worst;
}

}  // namespace regula::test

#endif
