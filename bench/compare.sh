#!/usr/bin/env bash
# Runs regula's benchmarks and the anchor scripts for the named groups in one go and prints a
# table of ratios (see bench/README.md).
#
#   bench/compare.sh [--csv] [--quick] GROUP...      GROUP: dropout, ..., or all
#
# Builds the release preset if needed. One thread throughout (OMP_NUM_THREADS=1, torch 1 thread).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -f build/release/build.ninja ]; then
  cmake --preset release >/dev/null
fi
cmake --build --preset release --target benchmarks >/dev/null
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" bench/compare.py --build build/release/bench "$@"
