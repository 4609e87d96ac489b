#!/usr/bin/env bash
# The API reference with Doxygen (Debian's doxygen; scripts/install-deps.sh installs it):
# build/apidocs/html/index.html. Fails on any warning (docs/Doxyfile).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v doxygen >/dev/null || { echo "doxygen not found: apt-get install doxygen"; exit 1; }
mkdir -p build/apidocs
doxygen docs/Doxyfile
echo "API reference: build/apidocs/html/index.html"
