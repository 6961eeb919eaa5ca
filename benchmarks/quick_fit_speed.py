"""Training speed of the quick-fit specs, before and after, measured side by side in one process.

    python benchmarks/quick_fit_speed.py --threads 2 --rounds 3

Three arms train each spec of the README's quick-fit sweep on digits at 1×32×32 (fitted as
``sweep --fit`` fits it) for one epoch, in rotating order, ``--rounds`` times:

- ``fp32, AdamW loop``: float32 with AdamW's per-parameter loop (torch's default on the CPU), as
  ``fit`` trained before it asked for the fused optimiser;
- ``fp32, fused AdamW``: float32 with the fused optimiser (``fit --precision fp32`` now);
- ``bf16-mixed, fused``: bfloat16 autocast with the fused optimiser (``fit``'s default on a CPU
  with native bfloat16).

The table gives each arm's median training speed (images per second of the epoch's training steps,
fit's own ``samples_per_s``) and the ratios of the medians to the first arm.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Iterator
from pathlib import Path

import torch

from archspec import load_spec, plan
from archspec.data import load_images, split
from archspec.fit import FitConfig, adapt, fit
from archspec.models import resolve_spec_path
from archspec.runtime import machine_description
from archspec.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
SPECS = [
    "specs/spectformer.yaml", "specs/variants/spectformer-window.yaml", "specs/digits/spectformer-digits.yaml",
    "specs/digits/spectformer-digits-spectral.yaml", "specs/digits/spectformer-digits-attention.yaml",
    "specs/digits/spectformer-digits-pool.yaml", "specs/digits/spectformer-digits-dwconv.yaml", "resnet18",
    "deit_tiny_patch16_224",
]  # fmt: skip
ARMS = {
    "fp32, AdamW loop": ("fp32", False),
    "fp32, fused AdamW": ("fp32", True),
    "bf16-mixed, fused": ("bf16-mixed", True),
}


@contextlib.contextmanager
def _adamw(fused: bool) -> Iterator[None]:
    """AdamW as fit makes it, with its per-parameter loop in place of the fused kernel unless ``fused``."""
    real = torch.optim.AdamW
    if not fused:
        torch.optim.AdamW = lambda *args, **kwargs: real(*args, **{**kwargs, "fused": None})  # type: ignore[misc]
    try:
        yield
    finally:
        torch.optim.AdamW = real  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", nargs="+", metavar="SPEC", help="specs (default: the quick-fit sweep's nine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images = load_images("digits")
    parts = split(images, 0.2, seed=0)
    rows = []
    for name in args.only or SPECS:
        path = ROOT / name if name.startswith("specs/") else resolve_spec_path(name)
        planned = plan(load_spec(path, adapt(plan(load_spec(path)), images, (32, 32))))
        speeds: dict[str, list[float]] = {arm: [] for arm in ARMS}
        order = list(ARMS)
        for round_ in range(args.rounds + 1):  # the first round warms up
            for arm in order[round_ % 3 :] + order[: round_ % 3]:
                precision, fused = ARMS[arm]
                with _adamw(fused):
                    result = fit(planned, images, parts, FitConfig(epochs=1, precision=precision))
                if round_:
                    speeds[arm].append(result.train_samples_per_s)
        medians = [statistics.median(speeds[arm]) for arm in ARMS]
        rows.append([Path(name).stem, *(f"{m:,.0f}" for m in medians), *(f"{m / medians[0]:.2f}" for m in medians[1:])])
        print(" | ".join(rows[-1]), flush=True)
    print(f"\n{machine_description(threads=args.threads)}; one epoch per run, median of {args.rounds} rounds")
    header = ["spec", *(f"{arm} (images/s)" for arm in ARMS), "fused ÷ loop (fp32)", "bf16 fused ÷ fp32 loop"]
    print(markdown_table(header, rows, right=range(1, len(header))))


if __name__ == "__main__":
    main()
