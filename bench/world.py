"""Benchmark: how fast the sandbox world is generated and exported.

    .venv/bin/python -m bench.world [--sizes 500,5000,50000]

Prints seconds and claims/s per size, and the ratio of the per-claim cost at each size against the
smallest size measured in the same run (1.0 = linear scaling).
"""

from __future__ import annotations

import argparse
import time

from fixtures.world.generator import generate
from fixtures.world.world import World


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="500,5000,50000")
    p.add_argument("--seed", type=int, default=7)
    a = p.parse_args()
    base = None
    print(f"{'claims':>8} {'generate s':>11} {'claims/s':>10} {'world+truth s':>14} {'truth MB':>9} {'cost vs base':>13}")
    for n in [int(x) for x in a.sizes.split(",")]:
        t = time.perf_counter()
        generate(a.seed, n)
        gen = time.perf_counter() - t
        t = time.perf_counter()
        w = World(a.seed, n)
        size_mb = len(w.ground_truth_bytes()) / 1e6
        full = time.perf_counter() - t
        per = gen / n
        base = base or per
        print(f"{n:>8} {gen:>11.2f} {n / gen:>10.0f} {full:>14.2f} {size_mb:>9.1f} {per / base:>13.2f}")


if __name__ == "__main__":
    main()
