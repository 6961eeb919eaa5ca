"""How long `archspec sweep` takes per variant without --measure: the file read once, against once per variant.

    python benchmarks/sweep_speed.py [--spec specs/spectformer.yaml] [--rounds 5]

The grid is 10 × 5 × 10 = 500 variants of stage depths and class count. Each round times both arms,
in alternating order: ``sweep`` is :func:`archspec.sweep.run_sweep` as the command runs it (each
spec file read and merged with its bases once, then copied per variant), ``re-read`` loads the file
again for every variant (``plan(load_spec(path, overrides))``), as the sweep did before. Reported:
the median milliseconds per variant over the rounds and their ratio. Nothing imports torch.
"""

from __future__ import annotations

import argparse
import statistics
import time

from archspec import load_spec, plan
from archspec.sweep import combinations, run_sweep

GRID = ["stages.2.depth=" + ",".join(map(str, range(1, 11))), "stages.3.depth=1,2,3,4,5",
        "num_classes=" + ",".join(map(str, range(1, 11)))]  # fmt: skip


def sweep(spec: str) -> float:
    start = time.perf_counter()
    rows = run_sweep(spec, GRID)
    assert all(row.status == "ok" for row in rows), [row.status for row in rows if row.status != "ok"][:3]
    return time.perf_counter() - start


def reread(spec: str) -> float:
    start = time.perf_counter()
    for combo in combinations(GRID):
        plan(load_spec(spec, combo))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="specs/spectformer.yaml")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count = len(combinations(GRID))
    sweep(args.spec)  # warm-up: imports, pydantic's validators, the registry
    times: dict[str, list[float]] = {"sweep": [], "re-read": []}
    for round_ in range(args.rounds):
        arms = [("sweep", sweep), ("re-read", reread)]
        for name, arm in arms if round_ % 2 == 0 else arms[::-1]:
            times[name].append(arm(args.spec) / count * 1e3)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{count} variants of {args.spec}, {args.rounds} rounds, median ms per variant:")
    for name, value in medians.items():
        print(f"  {name:8s} {value:.2f}  (min {min(times[name]):.2f}, max {max(times[name]):.2f})")
    print(f"  re-read / sweep = {medians['re-read'] / medians['sweep']:.2f}")


if __name__ == "__main__":
    main()
