#!/usr/bin/env bash
# A user who takes regula through pkg-config: builds tests/consumer/main.cpp against the
# installed copy at <prefix> as C++17 and as C++20 (the program's -std first, as a C++20 build
# would write it), after moving the install to check that regula.pc is relocatable, and runs
# both programs.   pkg_config.sh <c++ compiler> <prefix> <work folder>
set -euo pipefail
cxx=$1 prefix=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
command -v pkg-config >/dev/null || { echo "pkg-config not found (scripts/install-deps.sh installs pkgconf)"; exit 1; }
rm -rf "$work"
mkdir -p "$work"
cp -r "$prefix" "$work/moved"  # a copy elsewhere: nothing may point back at <prefix>
export PKG_CONFIG_PATH="$work/moved/share/pkgconfig"
flags=$(pkg-config --cflags regula)
case "$flags" in *-std=*) echo "regula.pc must not set the language level: $flags"; exit 1 ;; esac
case "$flags" in *"$work/moved"*) ;; *) echo "regula.pc does not point at its own copy: $flags"; exit 1 ;; esac
pkg-config --print-requires regula | grep -q '^xsimd' || { echo "regula.pc does not require xsimd"; exit 1; }
for std in c++17 c++20; do
  # shellcheck disable=SC2086
  "$cxx" -std=$std $flags -Wall -Werror -O1 "$here/main.cpp" -o "$work/consumer_$std"
  "$work/consumer_$std"
done
