#!/usr/bin/env bash
# Formats every C++ source that git tracks (and new ones it does not ignore) with clang-format 14
# and the repository's .clang-format; `--check` changes nothing and fails, listing the files,
# when one is not formatted (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.hpp' '*.cpp' '*.h')
if [ "${1:-}" = "--check" ]; then
  clang-format-14 --dry-run --Werror "${files[@]}"
  echo "formatting: ${#files[@]} files as .clang-format says"
else
  clang-format-14 -i "${files[@]}"
fi
