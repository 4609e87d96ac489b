/// @file
/// regula's version: the one source of truth, read by CMake with file(STRINGS).
#ifndef REGULA_VERSION_HPP
#define REGULA_VERSION_HPP

/// Major version.
#define REGULA_VERSION_MAJOR 0
/// Minor version.
#define REGULA_VERSION_MINOR 2
/// Patch version.
#define REGULA_VERSION_PATCH 0

/// major·10000 + minor·100 + patch, so that `#if REGULA_VERSION >= 100` reads naturally.
#define REGULA_VERSION \
  (REGULA_VERSION_MAJOR * 10000 + REGULA_VERSION_MINOR * 100 + REGULA_VERSION_PATCH)

#endif  // REGULA_VERSION_HPP
