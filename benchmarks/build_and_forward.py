"""Build time and eager forward latency of shipped specs on this machine, as a Markdown table.

Each spec is built ``--repeats`` times (median reported); forward passes run in inference mode after
two warm-up calls and report the median of ``--repeats`` timed calls per batch size. Freed memory
is retained (:func:`archspec.accel.retain_freed_memory`) unless ``--system-malloc`` is given. Run:

    python benchmarks/build_and_forward.py specs/spectformer.yaml specs/spectformer-h-s.yaml
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import archspec
from archspec.accel import retain_freed_memory
from archspec.runtime import machine_description


def _median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(path: str, batches: list[int], repeats: int, retain: bool) -> dict[str, object]:
    plan = archspec.plan(archspec.load_spec(path))
    build_s = _median_seconds(lambda: archspec.build(plan, retain_memory=retain), repeats)
    model = archspec.build(plan, retain_memory=retain).eval()
    row: dict[str, object] = {
        "spec": path,
        "params": plan.params,
        "gflops": plan.flops / 1e9,
        "build_ms": build_s * 1e3,
    }
    for batch in batches:
        x = torch.randn(batch, *plan.input.dims)
        with torch.inference_mode():
            for _ in range(2):
                model(x)
            seconds = _median_seconds(lambda x=x: model(x), repeats)
        row[f"b{batch}_ms"] = seconds * 1e3
        row[f"b{batch}_img_s"] = batch / seconds
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("specs", nargs="+")
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default: 1,8)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--system-malloc", action="store_true", help="keep glibc's allocator settings")
    args = parser.parse_args()
    if not args.system_malloc:
        retain_freed_memory()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batch.split(",")]
    print(f"{machine_description(threads=args.threads)}, median of {args.repeats}\n")
    header = ["spec", "params", "GFLOPs", "build (ms)"] + [f"b{b} forward (ms)" for b in batches]
    header += [f"b{b} img/s" for b in batches]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for path in args.specs:
        r = measure(path, batches, args.repeats, not args.system_malloc)
        cells = [f"`{path}`", f"{r['params']:,}", f"{r['gflops']:.2f}", f"{r['build_ms']:.0f}"]
        cells += [f"{r[f'b{b}_ms']:.0f}" for b in batches]
        cells += [f"{r[f'b{b}_img_s']:.1f}" for b in batches]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
