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
    # GCC 12 reports false (maybe-)uninitialized warnings for __Y inside avx512fintrin.h
    # (GCC PR105593). The dev and sanitizer builds, which do not use -march=native, keep both.
    # At -O3 with AVX-512 it also reports Eigen's aligned packet loads in redux (mean(), sum() of
    # heap arrays) as possible null dereferences; the dev and sanitizer builds keep that warning.
    if(REGULA_NATIVE)
      target_compile_options(regula_warnings INTERFACE -Wno-maybe-uninitialized -Wno-uninitialized
                                                       -Wno-null-dereference)
    endif()
  endif()
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # Clang's -Wdouble-promotion flags every implicit float → double or long double conversion,
    # initialisations and the long-double references of the accuracy tests included; GCC's,
    # kept in the GCC builds, flags the arithmetic promotions that cost speed in a float kernel.
    target_compile_options(regula_warnings INTERFACE -Wno-double-promotion)
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
