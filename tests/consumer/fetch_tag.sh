#!/usr/bin/env bash
# A user who takes a release through FetchContent by its tag, as README.md shows: clones the
# source repository, fetches the tag v<version of include/regula/version.hpp> from that clone
# and builds and runs tests/consumer/main.cpp, which prints the version it compiled against.
# Where the repository holds that tag (the release), the tag's own version.hpp must give the
# same version; a clone without tags (CI's) tags its HEAD in the throwaway clone instead, so
# that the mechanism is tested either way. Exit 77 (skipped) outside a git checkout.
#   fetch_tag.sh <c++ compiler> <source dir> <work folder> <cmake> <generator>
set -euo pipefail
cxx=$1 src=$2 work=$3 cmake=$4 generator=$5
here=$(cd "$(dirname "$0")" && pwd)
git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || { echo "not a git checkout: skipped"; exit 77; }
version_of() {  # major.minor.patch of a version.hpp on stdin
  awk '/#define REGULA_VERSION_(MAJOR|MINOR|PATCH) /{v = v (v == "" ? "" : ".") $3} END{print v}'
}
version=$(version_of <"$src/include/regula/version.hpp")
tag=v$version
rm -rf "$work"
mkdir -p "$work"
git clone --quiet --no-local "$src" "$work/repo"
if git -C "$work/repo" rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
  [ "$(git -C "$work/repo" cat-file -t "$tag")" = tag ] || { echo "$tag is not an annotated tag"; exit 1; }
  at_tag=$(git -C "$work/repo" show "$tag:include/regula/version.hpp" | version_of)
  echo "release tag $tag found (version.hpp there: $at_tag)"
  [ "$at_tag" = "$version" ] || { echo "$tag holds version $at_tag"; exit 1; }
else
  echo "no tag $tag in this clone: tagging its HEAD in the throwaway clone"
  git -C "$work/repo" -c user.name=test -c user.email=test@localhost tag -a "$tag" -m "test release $tag"
fi
"$cmake" -S "$here/fetch_tag" -B "$work/build" -G "$generator" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_COMPILER="$cxx" -DREGULA_GIT="file://$work/repo" -DREGULA_TAG="$tag" >/dev/null
"$cmake" --build "$work/build" >/dev/null
out=$("$work/build/consumer")
echo "$out"
[ "$out" = "regula $version consumer: ok" ] || { echo "expected regula $version consumer: ok"; exit 1; }
