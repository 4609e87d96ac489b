#!/usr/bin/env python3
"""Runs the Google Benchmark programs and anchor scripts of the named groups and prints ratios.

Benchmarks are named group/case/impl. Every row whose impl is "regula" is paired with every other
row of the same group and case (memcpy, exp, naive, pytorch, pot, ...):
ratio = reference_seconds / regula_seconds, so above 1 regula is faster than the anchor, and
against a physical limit (memcpy, exp) it is the fraction of the limit reached.
Anchor scripts live in bench/anchors/<group>.py and print JSON lines
{"group", "case", "impl", "seconds"}.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

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
            args += ["--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true",
                     "--benchmark_min_time=0.2"]
        out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
        data = json.loads(out) if out.strip() else {"benchmarks": []}
        for b in data["benchmarks"]:
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            name = b.get("run_name", b["name"])
            if name.endswith("/real_time"):
                name = name[: -len("/real_time")]
            parts = name.split("/")
            if len(parts) < 3:
                continue
            group, case, impl = parts[0], "/".join(parts[1:-1]), parts[-1]
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            rows.append({"group": group, "case": case, "impl": impl,
                         "seconds": b["real_time"] * scale})
    return rows


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
    ap.add_argument("--build", required=True)
    ap.add_argument("--csv", action="store_true")
    ap.add_argument("--quick", action="store_true", help="short runs, no repetitions")
    ap.add_argument("groups", nargs="*")
    a = ap.parse_args()
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
                              ref["seconds"] / r["seconds"]))
    if a.csv:
        print("group,case,regula_seconds,reference,reference_seconds,ratio")
        for t in table:
            print(f"{t[0]},{t[1]},{t[2]:.6e},{t[3]},{t[4]:.6e},{t[5]:.4f}")
    else:
        print("| group | case | regula | reference | reference time | ratio |")
        print("|---|---|---:|---|---:|---:|")
        for t in table:
            print(f"| {t[0]} | {t[1]} | {fmt(t[2])} | {t[3]} | {fmt(t[4])} | {t[5]:.3g} |")


def fmt(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


if __name__ == "__main__":
    main()
