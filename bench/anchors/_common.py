"""Shared helpers of the anchor scripts: one thread, a stable timer, JSON rows."""
import json
import sys
import time

import torch

torch.set_num_threads(1)
QUICK = "--quick" in sys.argv


# The spread, (max - min) / median, of the last seconds_per_call's rounds; emit() reports it.
_last_spread = [0.0]


def seconds_per_call(fn, min_time=None, repeats=None):
    """Median over `repeats` rounds of the mean time of fn() over at least min_time seconds."""
    min_time = min_time if min_time is not None else (0.05 if QUICK else 0.2)
    repeats = repeats if repeats is not None else (1 if QUICK else 5)
    fn()  # warm up
    results = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        results.append(elapsed / n)
    results.sort()
    median = results[len(results) // 2]
    _last_spread[0] = (results[-1] - results[0]) / median if median > 0 else 0.0
    return median


def emit(group, case, impl, seconds, spread=None):
    """One JSON row; the spread defaults to that of the seconds_per_call that timed `seconds`."""
    spread = _last_spread[0] if spread is None else spread
    print(json.dumps({"group": group, "case": case, "impl": impl, "seconds": seconds,
                      "spread": spread}), flush=True)
