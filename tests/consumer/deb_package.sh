#!/usr/bin/env bash
# The Debian package as a user meets it (CI, as root on a clean Debian 12): configure without
# tests, `cpack -G DEB`, check the package's architecture, dependencies and files, install it with
# apt-get, build and run tests/consumer/main.cpp through find_package and through pkg-config
# against /usr, then remove the package again.   deb_package.sh <work folder>
set -euo pipefail
work=${1:-build/deb}
src=$(cd "$(dirname "$0")/../.." && pwd)
here=$src/tests/consumer
rm -rf "$work"
cmake -S "$src" -B "$work/build" -DREGULA_BUILD_TESTS=OFF -DREGULA_BUILD_EXAMPLES=OFF >/dev/null
(cd "$work/build" && cpack -G DEB >/dev/null)
deb=$(ls "$work"/build/libregula-dev_*_all.deb)
echo "package: $deb"
arch=$(dpkg-deb -f "$deb" Architecture) depends=$(dpkg-deb -f "$deb" Depends)
echo "Architecture: $arch; Depends: $depends"
[ "$arch" = all ] || { echo "expected Architecture: all"; exit 1; }
case "$depends" in *libeigen3-dev*libxsimd-dev*) ;; *) echo "missing dependencies"; exit 1 ;; esac
files=$(dpkg-deb -c "$deb")
for f in ./usr/include/regula/regula.hpp ./usr/share/cmake/regula/regulaConfig.cmake \
         ./usr/share/pkgconfig/regula.pc; do
  grep -q " $f\$" <<<"$files" || { echo "the package lacks $f"; exit 1; }
done
apt-get install -y -q "$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")" >/dev/null
trap 'apt-get remove -y -q libregula-dev >/dev/null' EXIT
version=$(pkg-config --modversion regula)
echo "installed; pkg-config says regula $version"
cmake -S "$here/find_package" -B "$work/find_package" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/find_package" >/dev/null
"$work/find_package/consumer"
# shellcheck disable=SC2046
g++ -std=c++17 $(pkg-config --cflags regula) -Wall -Werror -O1 "$here/main.cpp" -o "$work/consumer_pc"
"$work/consumer_pc"
