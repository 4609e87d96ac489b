#!/usr/bin/env bash
# Runs regula's benchmarks and the anchor scripts for the named groups in one go and prints a
# table of ratios (see bench/README.md).
#
#   bench/compare.sh [--csv] [--quick] [--plot PNG] GROUP...   GROUP: dropout, ..., or all
#
# Builds the release preset if needed. One thread throughout (OMP_NUM_THREADS=1, torch 1 thread).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=/usr/bin/python3
[ -x "$python" ] || python=python3
# The anchors import torch, ot (POT) and numpy; say which are missing and how to get them.
missing=$("$python" - <<'PY'
import importlib.util
need = {"torch": "python3-torch", "ot": "python3-pot", "numpy": "python3-numpy"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PY
)
if [ -n "$missing" ]; then
  echo "bench/compare.sh: the PyTorch/POT anchors need Python packages that are missing: $missing" >&2
  echo "  install them with: sudo bash scripts/install-deps.sh --bench   (or apt-get install $missing)" >&2
  exit 2
fi
if [ ! -f build/release/build.ninja ]; then
  cmake --preset release >/dev/null
fi
cmake --build --preset release --target benchmarks >/dev/null
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
exec "$python" bench/compare.py --build build/release/bench "$@"
