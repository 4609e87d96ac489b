// The one place that includes Catch2, so a move to Catch2 v3 touches only this file.
#ifndef REGULA_TESTS_SUPPORT_CATCH_HPP
#define REGULA_TESTS_SUPPORT_CATCH_HPP

#include <catch2/catch.hpp>

#endif
