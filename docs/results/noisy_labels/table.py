#!/usr/bin/python3
"""Mean ± std over seeds of the tables noisy_labels prints, as Markdown.

    python3 docs/results/noisy_labels/table.py docs/results/noisy_labels/symmetric_s*.log
"""
import re
import statistics
import sys

COLS = ["best test", "last test", "last-10", "test@best-val", "k*", "label precision"]


def parse(path):
    rows, inside = {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("== results =="):
            inside = True
            continue
        if not inside or line.strip().startswith(("method", "(")):
            continue
        m = re.match(r"\s+(\S.*?)\s{2,}(\S+%)\s+(\S+%)\s+(\S+%)\s+(\S+%)\s+(\d+)\s+(\S+)\s*$", line)
        if not m:
            if rows:
                break
            continue
        vals = [float(v.rstrip("%")) if v != "-" else None for v in m.groups()[1:]]
        rows[m.group(1)] = vals
    return rows


def main():
    runs = [parse(p) for p in sys.argv[1:]]
    print("| method | " + " | ".join(COLS[:4]) + " | label precision | k* per seed |")
    print("|---" * 7 + "|")
    for method in runs[0]:
        cells = []
        for i in (0, 1, 2, 3, 5):
            v = [r[method][i] for r in runs if r[method][i] is not None]
            if not v:
                cells.append("–")
                continue
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.2f} ± {sd:.2f}")
        ks = " / ".join(str(int(r[method][4])) for r in runs)
        print(f"| {method} | " + " | ".join(cells) + f" | {ks} |")
    print()
    print("Per seed (in the order of the files):")
    for method in runs[0]:
        last = " / ".join(f"{r[method][1]:.2f}" for r in runs)
        last10 = " / ".join(f"{r[method][2]:.2f}" for r in runs)
        print(f"- {method}: last epoch {last}; last-10 {last10}")


if __name__ == "__main__":
    main()
