// Guards a region in which Eigen must not allocate. The test translation unit defines
// EIGEN_RUNTIME_NO_MALLOC before including Eigen; any heap allocation inside the guard then
// fails an Eigen assertion (active because tests are built without NDEBUG... or with it removed).
#ifndef REGULA_TESTS_SUPPORT_NO_MALLOC_HPP
#define REGULA_TESTS_SUPPORT_NO_MALLOC_HPP

#ifndef EIGEN_RUNTIME_NO_MALLOC
#error "define EIGEN_RUNTIME_NO_MALLOC before including Eigen in this test"
#endif

#include <Eigen/Core>

namespace regula::test {

/// While alive, any Eigen heap allocation aborts the test.
class NoMalloc {
 public:
  NoMalloc() { Eigen::internal::set_is_malloc_allowed(false); }
  ~NoMalloc() { Eigen::internal::set_is_malloc_allowed(true); }
  NoMalloc(const NoMalloc&) = delete;
  NoMalloc& operator=(const NoMalloc&) = delete;
};

}  // namespace regula::test

#endif
