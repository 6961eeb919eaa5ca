"""How well each zoo model and shipped SpectFormer learns in float32 and under bfloat16 autocast.

    python benchmarks/amp_accuracy.py --threads 2                        # digits, 3 epochs, 3 seeds
    python benchmarks/amp_accuracy.py --device cuda --epochs 5 --only resnet50 deit_small_patch16_224

Every model is fitted to the data (``sweep --fit`` does the same: the input's channels and size
and the class count are adapted, see :func:`archspec.fit.adapt`) and trained once per seed with
fit's defaults, first in float32 and then as ``fit --precision bf16-mixed`` trains (bfloat16 autocast; float16 with
loss scaling on a GPU without bfloat16). Both arms use the same seeds, so they start from the same
weights and see the images in the same order. The table gives each arm's final validation accuracy
as mean ± sample standard deviation over the seeds, their difference (bf16 − fp32, in points), and
the mean wall time of one run in each.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from archspec.data import load_images, split
from archspec.fit import FitConfig
from archspec.runtime import bfloat16_warning, machine_description
from archspec.sweep import FitSweep, Row, run_sweep
from archspec.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "spectformer": ROOT / "specs" / "spectformer.yaml",
    "spectformer-h-s": ROOT / "specs" / "spectformer-h-s.yaml",
    **{path.stem: path for path in sorted((ROOT / "specs" / "zoo").glob("*.yaml"))},
}


def _accuracy(row: Row) -> str:
    mean, std = row.acc_mean, row.acc_std
    return f"{100 * mean:.1f} ± {100 * std:.1f}" if mean is not None and std is not None else row.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="digits, a class-per-folder directory or a .npz")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--size", type=int, default=32, help="input size the models are trained at (default: 32)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(MODELS), help="models (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if warning := bfloat16_warning(args.device):
        print(warning)
    images = load_images(args.data)
    parts = split(images, 0.2, seed=0)
    names = args.only or list(MODELS)
    paths = [MODELS[name] for name in names]
    config = FitConfig(epochs=args.epochs)
    size = (args.size, args.size)
    arms = []
    for precision in ("fp32", "bf16-mixed"):
        fitting = FitSweep(images, parts, replace(config, precision=precision), args.seeds, size, args.device)
        arms.append(run_sweep(paths, [], fit=fitting))
    rows = []
    for name, full, half in zip(names, *arms, strict=True):
        ok = full.acc_mean is not None and half.acc_mean is not None
        difference = f"{100 * (half.acc_mean - full.acc_mean):+.1f}" if ok else ""  # type: ignore[operator]
        seconds = [f"{sum(row.fit_s) / len(row.fit_s):.1f}" if row.fit_s else "" for row in (full, half)]
        rows.append([name, _accuracy(full), _accuracy(half), difference, *seconds])
    header = ["model", "fp32 val acc %", "bf16 val acc %", "bf16 − fp32", "fp32 run s", "bf16 run s"]
    print(machine_description(args.device, args.threads))
    print(f"{args.data}, {args.epochs} epochs at {args.size}×{args.size}, seeds 0–{args.seeds - 1}, {args.device}")
    print(markdown_table(header, rows, right=range(1, len(header))))


if __name__ == "__main__":
    main()
