#!/usr/bin/env bash
# Installs what regula's build, tests, benchmarks and examples need, from Debian 12's archive.
# Run as root (or with sudo). Packages already present are not downloaded again.
#
#   scripts/install-deps.sh [--bench] [package...]
# libopenblas0-pthread gives Debian's libtorch and NumPy an optimized BLAS (the default is the
# reference BLAS), so that the PyTorch anchors of the benchmarks are realistic.
# clang-14, libclang-rt-14-dev (libclang_rt.fuzzer, ASan, UBSan) and libomp-14-dev (clang's
# OpenMP) build the fuzz harnesses (scripts/fuzz.sh) and the asan-ubsan preset; clang-format-14
# checks the formatting (scripts/format.sh).
set -euo pipefail
packages=(cmake g++ ninja-build libeigen3-dev libxsimd-dev catch2 libbenchmark-dev
          librandom123-dev libopenmpi-dev openmpi-bin libtorch-dev
          libopenblas0-pthread zlib1g-dev gnuplot-nox dataset-fashion-mnist
          clang-14 libclang-rt-14-dev libomp-14-dev clang-format-14 pkgconf doxygen)
# `--bench` adds what bench/compare.sh's PyTorch and POT anchors and the golden-data scripts
# (tests/golden/gen_*.py) import: torch, ot (POT) and NumPy, from Debian's archive.
extra=()
for a in "$@"; do
  case "$a" in
    --bench) extra+=(python3-torch python3-pot python3-numpy) ;;
    *) extra+=("$a") ;;
  esac
done
missing=()
for p in "${packages[@]}" "${extra[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
