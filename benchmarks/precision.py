"""bfloat16 autocast against float32 for every zoo model and shipped SpectFormer, on the CPU or a GPU.

    python benchmarks/precision.py --threads 2                   # CPU, every model
    python benchmarks/precision.py --device cuda --batch 32      # a GPU
    python benchmarks/precision.py --only resnet50 deit_small_patch16_224

Each model is built by archspec at its spec's input size, in eval mode and ``inference_mode``. The
two arms run the same model on the same batch, one step each in alternation (ABAB...): float32, and
``torch.autocast(device, dtype=torch.bfloat16)``. The table gives the median time of each and the
ratio fp32 ÷ bf16 (above 1: bfloat16 is faster). For the difference, ``--samples`` images (seeded)
go through both arms: "max |Δ logit|" is the largest absolute difference, "rel" that divided by the
float32 logits' standard deviation, and "top-1 agree" the share of images whose bfloat16 class is
the float32 one. The weights are the spec's seeded initialisation, whose logits lie close together,
so the agreement here is a lower bound on what trained weights give.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

import archspec
from archspec.runtime import machine_description
from archspec.tables import markdown_table

ROOT = Path(__file__).resolve().parent.parent
MODELS = ["spectformer", "spectformer-h-s", *sorted(p.stem for p in (ROOT / "specs" / "zoo").glob("*.yaml"))]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forward(model: torch.nn.Module, x: torch.Tensor, bf16: bool) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x).float()

    return run


def compare(name: str, device: torch.device, batch: int, rounds: int, samples: int) -> list[str]:
    model = archspec.create_model(name, device=str(device)).eval()
    dims = model.pretrained_cfg["input_size"]
    images = torch.randn(samples, *dims, generator=torch.Generator().manual_seed(0)).to(device)
    full, half = _forward(model, images, False)(), _forward(model, images, True)()
    delta = (half - full).abs().max().item()
    spread = full.std().item()
    agree = (half.argmax(-1) == full.argmax(-1)).float().mean().item()
    x = torch.randn(batch, *dims, device=device)
    arms = [_forward(model, x, False), _forward(model, x, True)]
    for arm in arms:  # warm-up: oneDNN and autocast caches
        arm()
    times: list[list[float]] = [[], []]
    for round_ in range(rounds):
        for index in (0, 1) if round_ % 2 == 0 else (1, 0):
            _sync(device)
            start = time.perf_counter()
            arms[index]()
            _sync(device)
            times[index].append(time.perf_counter() - start)
    fp32, bf16 = (statistics.median(t) * 1e3 for t in times)
    return [name, f"{fp32:.1f}", f"{bf16:.1f}", f"{fp32 / bf16:.2f}", f"{delta:.2e}", f"{delta / spread:.3f}",
            f"{agree:.0%}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6, help="timed steps per arm (default: 6)")
    parser.add_argument("--samples", type=int, default=64, help="images for the difference (default: 64)")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=MODELS, help="models to compare (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    header = ["model", f"fp32 b{args.batch} ms", f"bf16 b{args.batch} ms", "fp32 ÷ bf16", "max |Δ logit|", "rel",
              "top-1 agree"]  # fmt: skip
    rows = []
    for name in args.only or MODELS:
        rows.append(compare(name, device, args.batch, args.rounds, args.samples))
        print(" | ".join(rows[-1]), flush=True)
    where = machine_description(args.device, args.threads)
    print(f"\n{where}, {args.rounds} rounds, {args.samples} images for the difference")
    print(markdown_table(header, rows, right=range(1, len(header))))


if __name__ == "__main__":
    main()
