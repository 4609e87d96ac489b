// The cross-column activation kernel cases for the default instruction set (test_isa.cpp
// compiles them for each other one).
#include "kernels/tile_cases.hpp"
