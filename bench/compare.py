#!/usr/bin/env python3
"""Runs the Google Benchmark programs and anchor scripts of the named groups and prints ratios.

Benchmarks are named group/case/impl. Every row whose impl is "regula" is paired with every other
row of the same group and case (memcpy, exp, naive, pytorch, pot, ...):
ratio = reference_seconds / regula_seconds, so above 1 regula is faster than the anchor, and
against a physical limit (memcpy, exp) it is the fraction of the limit reached.
Anchor scripts live in bench/anchors/<group>.py and print JSON lines
{"group", "case", "impl", "seconds", "spread"}; the spread is (max - min) / median of the
repetitions, as this script forms it for the Google Benchmark rows.
"""
import argparse
import csv
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_benchmarks(build, groups, quick):
    rows = []
    for exe in sorted(glob.glob(os.path.join(build, "bench_*"))):
        if not os.access(exe, os.X_OK) or os.path.isdir(exe):
            continue
        pattern = "^(" + "|".join(groups) + ")/" if groups else "."
        args = [exe, "--benchmark_filter=" + pattern, "--benchmark_format=json"]
        if quick:
            args.append("--benchmark_min_time=0.05")
        else:
            args += ["--benchmark_repetitions=5", "--benchmark_min_time=0.2"]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        data = json.loads(out) if out.strip() else {"benchmarks": []}
        # Each repetition's time, by name (the aggregates Google Benchmark adds are skipped: the
        # median and the spread are formed here, as the anchors form theirs).
        times = {}
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate":
                continue
            name = b.get("run_name", b["name"])
            if name.endswith("/real_time"):
                name = name[: -len("/real_time")]
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            times.setdefault(name, []).append(b["real_time"] * scale)
        for name, ts in times.items():
            parts = name.split("/")
            if len(parts) < 3:
                continue
            group, case, impl = parts[0], "/".join(parts[1:-1]), parts[-1]
            seconds, spread = median_spread(ts)
            rows.append({"group": group, "case": case, "impl": impl, "seconds": seconds,
                         "spread": spread, "repetitions": len(ts)})
    return rows


def median_spread(times):
    """The median of the repetitions' times and their spread, (max - min) / median."""
    ts = sorted(times)
    mid = len(ts) // 2
    median = ts[mid] if len(ts) % 2 else 0.5 * (ts[mid - 1] + ts[mid])
    return median, (ts[-1] - ts[0]) / median if median > 0 else 0.0


def run_anchors(groups, quick):
    rows = []
    for group in groups:
        script = os.path.join(HERE, "anchors", group + ".py")
        if not os.path.exists(script):
            continue
        args = [sys.executable, script] + (["--quick"] if quick else [])
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"# anchor {group}.py failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", help="the folder of the bench_* programs (build/release/bench)")
    ap.add_argument("--csv", action="store_true")
    ap.add_argument("--quick", action="store_true", help="short runs, no repetitions")
    ap.add_argument("--plot", metavar="PNG", help="also draw the ratios into PNG (gnuplot)")
    ap.add_argument("--plot-from", metavar="CSV",
                    help="draw a saved --csv output into --plot's PNG instead of running")
    ap.add_argument("--table-from", metavar="CSV",
                    help="print a saved --csv output as the Markdown table instead of running")
    ap.add_argument("groups", nargs="*")
    a = ap.parse_args()
    if a.plot_from or a.table_from:
        if a.plot_from and not a.plot:
            ap.error("--plot-from needs --plot PNG")
        for path in filter(None, (a.plot_from, a.table_from)):
            with open(path) as f:
                table = [(r["group"], r["case"], float(r["regula_seconds"]), r["reference"],
                          float(r["reference_seconds"]), float(r["ratio"]),
                          float(r.get("regula_spread") or 0), float(r.get("reference_spread") or 0))
                         for r in csv.DictReader(f)]
            if path == a.plot_from:
                plot(table, a.plot)
            if path == a.table_from:
                print_markdown(table)
        return
    if not a.build:
        ap.error("--build is needed to run the benchmarks")
    groups = [] if (not a.groups or "all" in a.groups) else a.groups
    rows = run_benchmarks(a.build, groups, a.quick)
    anchor_groups = groups or sorted({r["group"] for r in rows} |
                                     {os.path.splitext(os.path.basename(p))[0]
                                      for p in glob.glob(os.path.join(HERE, "anchors", "*.py"))
                                      if not os.path.basename(p).startswith("_")})
    rows += run_anchors(anchor_groups, a.quick)

    table = []
    for r in rows:
        if r["impl"] != "regula":
            continue
        for ref in rows:
            if ref["group"] == r["group"] and ref["case"] == r["case"] and ref["impl"] != "regula":
                table.append((r["group"], r["case"], r["seconds"], ref["impl"], ref["seconds"],
                              ref["seconds"] / r["seconds"], r.get("spread", 0.0),
                              ref.get("spread", 0.0)))
    if a.plot:
        plot(table, a.plot)
    if a.csv:
        print("group,case,regula_seconds,reference,reference_seconds,ratio,"
              "regula_spread,reference_spread")
        for t in table:
            print(f"{t[0]},{t[1]},{t[2]:.6e},{t[3]},{t[4]:.6e},{t[5]:.4f},{t[6]:.4f},{t[7]:.4f}")
    else:
        print_markdown(table)


def print_markdown(table):
    """One row per (regula row, reference): the medians, each with its spread in parentheses."""
    print("| group | case | regula (spread) | reference | reference time (spread) | ratio |")
    print("|---|---|---:|---|---:|---:|")
    for t in table:
        print(f"| {t[0]} | {t[1]} | {fmt(t[2])} ({100 * t[6]:.0f}%) | {t[3]} | "
              f"{fmt(t[4])} ({100 * t[7]:.0f}%) | {t[5]:.3g} |")


# References that are physical limits (the fraction of the limit reached, at most about 1) and
# those that are other implementations (how many times faster regula is).
LIMITS = ("memcpy", "exp", "fma_peak", "gemm_floor")


def is_limit(reference):
    return any(reference.startswith(l) for l in LIMITS)


def plot(table, png):
    """One horizontal bar per (group, case, reference), log-scaled ratio, grouped by group:
    limits in one colour (the fraction of the limit reached), anchors in another (the speed-up
    over them); the line at 1 is parity. gnuplot (Debian's gnuplot-nox) draws it."""
    if shutil.which("gnuplot") is None:
        sys.exit("--plot needs gnuplot: apt-get install gnuplot-nox")
    if not table:
        sys.exit("--plot: no rows to draw")
    rows = sorted(table, key=lambda t: (t[0], t[1], not is_limit(t[3]), t[3]))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "ratios.dat")
        with open(data, "w") as f:
            for i, t in enumerate(rows):
                label = f"{t[0]}: {t[1]} / {t[3]}".replace('"', "'")
                f.write(f'{i} {t[5]:.6g} {1 if is_limit(t[3]) else 2} "{label}"\n')
        height = max(400, 22 * len(rows) + 120)
        ratios = [t[5] for t in rows if t[5] > 0]
        lo, hi = min(ratios + [1.0]) / 2, max(ratios + [1.0]) * 2
        script = f"""
set terminal pngcairo noenhanced size 1400,{height} font ",10"
set output "{os.path.abspath(png)}"
set title "regula: time ratios (reference time / regula time), one thread"
set logscale x 10
set xlabel "ratio (log scale): below 1 against a limit = fraction of it reached; above 1 against an anchor = times faster"
set ytics nomirror
set yrange [-1:{len(rows)}]
set xrange [{lo:.3g}:{hi:.3g}]
set grid xtics
set style fill solid 0.8
set key outside top center horizontal
set arrow from 1, graph 0 to 1, graph 1 nohead dashtype 2 lc rgb "black"
bar = 0.35
plot "{data}" using (($3 == 1) ? $2 : 1/0):1:({lo:.3g}):($2):($1 - bar):($1 + bar):ytic(4) with boxxyerror lc rgb "#1b9e77" title "physical limit (memcpy, exp row, FMA peak)", \\
     "{data}" using (($3 == 2) ? $2 : 1/0):1:({lo:.3g}):($2):($1 - bar):($1 + bar) with boxxyerror lc rgb "#d95f02" title "anchor (PyTorch, POT, official code, naive loop)"
"""
        gp = os.path.join(tmp, "plot.gp")
        with open(gp, "w") as f:
            f.write(script)
        subprocess.run(["gnuplot", gp], check=True)
    print(f"# plot: {png} ({len(rows)} ratios)", file=sys.stderr)


def fmt(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


if __name__ == "__main__":
    main()
