#!/usr/bin/env bash
# Turns the curve files the examples write into PNGs with gnuplot (Debian: gnuplot-nox).
#   examples/plot_csv.sh DIR|FILE.csv ...
# Every column is plotted against the first one; a PNG is written beside each CSV. Per-run
# detail files (run_*.csv) are skipped when a directory is given.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v gnuplot >/dev/null || { echo "gnuplot not found: sudo apt-get install gnuplot-nox" >&2; exit 1; }
files=()
for a in "$@"; do
  if [ -d "$a" ]; then
    for f in "$a"/*.csv; do
      case "$(basename "$f")" in run_*) ;; *) files+=("$f") ;; esac
    done
  else
    files+=("$a")
  fi
done
[ ${#files[@]} -gt 0 ] || { echo "usage: $0 DIR|FILE.csv ..." >&2; exit 2; }
for f in "${files[@]}"; do
  ncol=$(head -1 "$f" | tr ',' '\n' | wc -l)
  stem="$(basename "$f" .csv)"
  dir="$(basename "$(cd "$(dirname "$f")" && pwd)")"
  ylab="${stem//_/ }"
  gnuplot -e "file='$f'; out='${f%.csv}.png'; ncol=$ncol; ttl='$dir: ${stem//_/ }'; ylab='$ylab'" \
    "$here/common/plot.gp"
  echo "${f%.csv}.png"
done
