"""Benchmark table: archspec-built models against the plain hand-written SpectFormer, in one process.

    python benchmarks/bench_specs.py --threads 2 > benchmarks/results.md

Rows: the documented SpectFormer and SpectFormer-H-S, built by archspec (eager and compiled) and as
the straightforward implementation in benchmarks/reference.py (eager), at batch 1 and 8, in
inference mode; then one training step at batch 8 for SpectFormer-H-S, archspec vs reference.
Every row carries its own same-process matmul probe, so efficiency is comparable across rows.

The whole set runs twice: first with glibc's allocator as the process starts (``malloc`` column
"system"), then after :func:`archspec.accel.retain_freed_memory` ("retain"). The setting cannot
be undone within a process, hence the order. ``--malloc retain`` runs only the second half.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import reference  # benchmarks/reference.py: scripts run from their own folder see it

import archspec
from archspec import bench
from archspec.accel import retain_freed_memory
from archspec.runtime import machine_description

ROOT = Path(__file__).resolve().parent.parent

PAIRS = {
    "specs/spectformer.yaml": reference.documented_spectformer,
    "specs/spectformer-h-s.yaml": reference.spectformer_h_s,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    parser.add_argument("--no-train", action="store_true", help="skip the training-step rows")
    parser.add_argument("--malloc", choices=("system,retain", "system", "retain"), default="system,retain",
                        help="allocator settings to run the set under, in this order")  # fmt: skip
    args = parser.parse_args()
    results = []
    for setting in args.malloc.split(","):
        if setting == "retain":
            retain_freed_memory()
        results += run_set(args, retain=setting == "retain")
    print(f"{machine_description(threads=args.threads)}, median over --repeats "
          f"{args.repeats} (5 for training) after warm-up; see archspec.bench.measure\n")  # fmt: skip
    print(bench.table(results))


def run_set(args: argparse.Namespace, retain: bool) -> list[bench.Result]:
    batches = [int(b) for b in args.batch.split(",")]
    results = []
    for path, make_plain in PAIRS.items():
        plan = archspec.plan(archspec.load_spec(ROOT / path))
        for batch in batches:
            common = {"threads": args.threads, "repeats": args.repeats}
            results.append(bench.run(plan, path, batch, retain_memory=retain, **common))
            if not args.no_compile:
                results.append(bench.run(plan, path, batch, retain_memory=retain, compile=True, **common))
            plain = make_plain()
            results.append(bench.time_model(plain, plan.input.dims, plan.flops, f"plain {Path(path).stem}", batch,
                                            **common))  # fmt: skip
    if not args.no_train:
        path = "specs/spectformer-h-s.yaml"
        # The plain model has no stochastic depth, so compare training steps without it.
        plan = archspec.plan(archspec.load_spec(ROOT / path, ["drop_path_rate=0"]))
        label = f"{path} --set drop_path_rate=0"
        results.append(bench.run(plan, label, 8, threads=args.threads, train=True, repeats=5, retain_memory=retain))
        plain = reference.spectformer_h_s()
        results.append(bench.time_model(plain, plan.input.dims, plan.flops, "plain spectformer-h-s", 8,
                                        threads=args.threads, train=True, repeats=5))  # fmt: skip
    return results


if __name__ == "__main__":
    main()
