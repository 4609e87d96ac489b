// Tolerances shared by the tests, per scalar type.
#ifndef REGULA_TESTS_SUPPORT_TOLERANCE_HPP
#define REGULA_TESTS_SUPPORT_TOLERANCE_HPP

namespace regula::test {

template <class T>
struct tol;

template <>
struct tol<float> {
  static constexpr double rel = 1e-5;
  static constexpr double abs = 1e-6;
};

template <>
struct tol<double> {
  static constexpr double rel = 1e-12;
  static constexpr double abs = 1e-14;
};

/// Central-difference step and acceptance for gradient checks, run in double.
inline constexpr double fd_step = 1e-6;
inline constexpr double fd_tol = 1e-8;

}  // namespace regula::test

#endif
