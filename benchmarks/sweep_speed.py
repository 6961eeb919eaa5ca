"""How long `archspec sweep` takes per variant without --measure, against planning each variant alone.

    python benchmarks/sweep_speed.py [--spec specs/spectformer.yaml] [--rounds 5]

The grid is 10 × 5 × 10 = 500 variants of stage depths and class count. Each round times three
arms, in rotating order: ``sweep`` is :func:`archspec.sweep.run_sweep` as the command runs it (each
spec file read and merged with its bases once, each setting parsed once, and every distinct block
planned once through a :class:`~archspec.plan.PlanCache`); ``no cache`` reads and parses once but
plans every block of every variant; ``re-read`` loads the file again for every variant
(``plan(load_spec(path, overrides))``). Reported: the median milliseconds per variant over the
rounds and the ratios to ``sweep``. Nothing imports torch.
"""

from __future__ import annotations

import argparse
import statistics
import time

from archspec import load_spec, plan
from archspec.compose import parse_override
from archspec.spec import SpecFile
from archspec.sweep import combinations, run_sweep

GRID = ["stages.2.depth=" + ",".join(map(str, range(1, 11))), "stages.3.depth=1,2,3,4,5",
        "num_classes=" + ",".join(map(str, range(1, 11)))]  # fmt: skip


def sweep(spec: str) -> float:
    start = time.perf_counter()
    rows = run_sweep(spec, GRID)
    assert all(row.status == "ok" for row in rows), [row.status for row in rows if row.status != "ok"][:3]
    return time.perf_counter() - start


def no_cache(spec: str) -> float:
    start = time.perf_counter()
    source, parsed = SpecFile(spec), {}
    for combo in combinations(GRID):
        plan(source.load([parsed.setdefault(text, parse_override(text)) for text in combo]))
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
    arms = [("sweep", sweep), ("no cache", no_cache), ("re-read", reread)]
    times: dict[str, list[float]] = {name: [] for name, _ in arms}
    for round_ in range(args.rounds):
        for name, arm in arms[round_ % 3 :] + arms[: round_ % 3]:
            times[name].append(arm(args.spec) / count * 1e3)
    medians = {name: statistics.median(values) for name, values in times.items()}
    from archspec.runtime import machine_description  # imports torch: only after the timed arms

    print(machine_description())
    print(f"{count} variants of {args.spec}, {args.rounds} rounds, median ms per variant:")
    for name, value in medians.items():
        print(f"  {name:8s} {value:.2f}  (min {min(times[name]):.2f}, max {max(times[name]):.2f})")
    for name in ("no cache", "re-read"):
        print(f"  {name} / sweep = {medians[name] / medians['sweep']:.2f}")


if __name__ == "__main__":
    main()
