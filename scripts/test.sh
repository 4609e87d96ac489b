#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs the whole test suite (README quick start, second
# command): Debug build with warnings as errors, install, every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --workflow --preset dev
