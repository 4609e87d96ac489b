#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs the main demo (README quick start, first command):
# installs the dependencies and Fashion-MNIST (dataset-fashion-mnist), builds the release preset's
# noisy_labels example and trains an MLP five ways on labels with 50% symmetric noise (3–5
# minutes on one core; pass --smoke for a 1-second check, or any other noisy_labels flag).
# The curves land in noisy_labels_out/ as CSV and, with gnuplot, as PNG.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target noisy_labels
./build/release/examples/noisy_labels "$@"
out=noisy_labels_out
for ((i = 1; i <= $#; i++)); do
  if [ "${!i}" = "--out" ]; then j=$((i + 1)); out="${!j}"; fi
done
if command -v gnuplot >/dev/null && [ -d "$out" ]; then
  bash examples/plot_csv.sh "$out" >/dev/null && echo "plots: $out/*.png"
fi
