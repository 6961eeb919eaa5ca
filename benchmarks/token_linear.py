"""Whole-model effect of choosing each token Linear's kernel by timing (archspec.accel.token_linear).

    python benchmarks/token_linear.py --threads 2
    python benchmarks/token_linear.py --threads 2 --only convnext_atto pvt_v2_b0 --batch 8

For each model and batch size, inference steps alternate (ABAB..., each arm first in every other
round) between archspec.accel on, with every shape already measured in a warm-up step, and off
(``accel.set_enabled(False)``), where every token Linear is MKL's product. The switch covers all of
accel's kernel paths, so in models with PVT-v2's FFN (pvt_v2_*, spectformer-h-s) the "on" arm also
runs the fused conv + GELU. The table gives the median step of each arm, the median over
rounds of the ratio off ÷ on (above 1: the choice pays), how many of the model's token-Linear
shapes went to oneDNN, and the largest logit difference between the two arms.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import archspec
from archspec import accel
from archspec.runtime import machine_description
from archspec.tables import markdown_table

MODELS = ["spectformer-h-s", "convnext_atto", "convnext_tiny", "convformer_s18", "caformer_s18", "pvt_v2_b0",
          "pvt_v2_b2", "poolformerv2_s12", "deit_small_patch16_224"]  # fmt: skip


def compare(name: str, batch: int, rounds: int) -> list[str]:
    model = archspec.create_model(name).eval()
    x = torch.randn(batch, *model.pretrained_cfg["input_size"])

    def step(enabled: bool) -> tuple[float, torch.Tensor]:
        accel.set_enabled(enabled)
        start = time.perf_counter()
        with torch.inference_mode():
            out = model(x)
        return time.perf_counter() - start, out

    accel._faster.clear()
    _, plain = step(False)
    step(True)  # the warm-up measures every shape
    _, chosen = step(True)
    shapes = accel._faster.values()
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(rounds):
        for enabled in (False, True) if round_ % 2 == 0 else (True, False):
            times[enabled].append(step(enabled)[0])
    accel.set_enabled(True)
    ratio = statistics.median(off / on for off, on in zip(times[False], times[True], strict=True))
    return [name, str(batch), f"{statistics.median(times[False]) * 1e3:.1f}",
            f"{statistics.median(times[True]) * 1e3:.1f}", f"{ratio:.3f}", f"{sum(shapes)} of {len(shapes)}",
            f"{(chosen - plain).abs().max().item():.1e}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--batch", default="1,8", help="comma-separated batch sizes (default: 1,8)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="models (default: a set from every family with MLPs)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [compare(name, int(batch), args.rounds) for name in args.only or MODELS for batch in args.batch.split(",")]
    print(machine_description(threads=args.threads))
    header = ["model", "batch", "MKL only ms", "chosen ms", "MKL only ÷ chosen", "shapes to oneDNN", "logit diff"]
    print(markdown_table(header, rows, right=range(1, len(header))))


if __name__ == "__main__":
    main()
