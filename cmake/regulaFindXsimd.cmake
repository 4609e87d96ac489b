# Finds xsimd 8 and defines REGULA_XSIMD_TARGET.
#
# Debian 12's libxsimd-dev 8.1.0 exports INTERFACE_LINK_LIBRARIES "xtl" without finding xtl, so
# linking the target adds -lxtl and fails (upstream xsimd#869, fixed after 8.1). xtl only matters
# under XSIMD_ENABLE_XTL_COMPLEX, which regula never sets: when no xtl target exists, an empty
# imported one stands in for it. xsimd 8 also lacks the xsimd::xsimd alias.
if(NOT TARGET xsimd AND NOT TARGET xsimd::xsimd)
  find_package(xsimd 8 REQUIRED)
endif()
if(TARGET xsimd::xsimd)
  set(REGULA_XSIMD_TARGET xsimd::xsimd)
else()
  set(REGULA_XSIMD_TARGET xsimd)
endif()
get_target_property(_regula_xsimd_links ${REGULA_XSIMD_TARGET} INTERFACE_LINK_LIBRARIES)
if(_regula_xsimd_links AND "xtl" IN_LIST _regula_xsimd_links AND NOT TARGET xtl)
  find_package(xtl QUIET)
  if(NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
  endif()
endif()
unset(_regula_xsimd_links)
