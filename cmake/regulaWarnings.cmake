# regula_warnings: the warning set of our own tests, benchmarks and examples (never put on the
# public target). -Werror is opt-in through REGULA_WERROR.
add_library(regula_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(regula_warnings INTERFACE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Wold-style-cast
    -Wnon-virtual-dtor -Woverloaded-virtual -Wdouble-promotion -Wnull-dereference
    -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(regula_warnings INTERFACE -Wuseless-cast -Wduplicated-cond -Wlogical-op)
    # GCC 12 reports a false -Wmaybe-uninitialized inside avx512fintrin.h (GCC PR105593), and
    # at -O3 the same false report as -Wuninitialized ('__Y' in _mm512_undefined_*), from
    # xsimd's double exp and from the float-to-double widening of DoubleAccumulator.
    if(REGULA_NATIVE)
      target_compile_options(regula_warnings INTERFACE -Wno-maybe-uninitialized)
      if(CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
        target_compile_options(regula_warnings INTERFACE -Wno-uninitialized)
      endif()
    endif()
  endif()
  if(REGULA_WERROR)
    target_compile_options(regula_warnings INTERFACE -Werror)
  endif()
  if(REGULA_NATIVE)
    target_compile_options(regula_warnings INTERFACE -march=native)
  endif()
elseif(MSVC)
  target_compile_options(regula_warnings INTERFACE /W4 /permissive-)
  if(REGULA_WERROR)
    target_compile_options(regula_warnings INTERFACE /WX)
  endif()
endif()
