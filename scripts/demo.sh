#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs the main demo (README quick start, first command).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target dropout_demo
exec ./build/release/examples/dropout_demo "$@"
