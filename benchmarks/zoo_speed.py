"""Side-by-side speed of archspec's zoo models against their reference implementations, same weights.

    python benchmarks/zoo_speed.py --threads 2          # needs timm (see zoo_reference.py)
    python benchmarks/zoo_speed.py --only resnet18 deit_tiny_patch16_224
    python benchmarks/zoo_speed.py --gfnet-code /tmp/gfnet   # the GFNet models too, against gfnet.py

For each model of ``specs/zoo/`` both models are built at 224×224 with 1000 classes: timm's, or the
official GFNet code's when ``--gfnet-code`` names the folder holding its ``gfnet.py`` (see
zoo_reference.py; without it the GFNet models are skipped). The reference's weights are loaded into
archspec's model (converted by its checkpoint layout) and the logits are
checked to agree. Then three workloads are timed, each alternating the two models step by step
(ABAB...) so that both see the same machine load: inference at batch 1 and at batch 8
(``inference_mode``), and a training step at batch 8 (forward, backward, SGD step; drop-path off in
both). The table gives the median time of each, and as the ratio reference ÷ archspec (above 1:
archspec is faster) the median over rounds of the ratio of a round's two steps; "logit diff" is
the largest difference between the two models' logits. Freed memory is retained
(:func:`archspec.accel.retain_freed_memory`) for both.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import timm
import torch
import zoo_reference  # benchmarks/zoo_reference.py: scripts run from their own folder see it

import archspec
from archspec.accel import retain_freed_memory
from archspec.checkpoint import load_state
from archspec.runtime import machine_description
from archspec.tables import markdown_table

ZOO = Path(__file__).resolve().parent.parent / "specs" / "zoo"
WORKLOADS = (("infer b1", 1, False), ("infer b8", 8, False), ("train b8", 8, True))


def _step(model: torch.nn.Module, x: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> Callable[[], None]:
    def infer() -> None:
        with torch.inference_mode():
            model(x)

    def train() -> None:
        assert optimizer is not None
        model(x).logsumexp(-1).mean().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return infer if optimizer is None else train


def _timed(step: Callable[[], None]) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def gfnet(code: Path, name: str) -> torch.nn.Module:
    """The official GFNet model ``name`` as main_gfnet.py builds it, with stochastic depth off."""
    from functools import partial

    cls_name, kwargs, _ = zoo_reference.GFNET_MODELS[name]
    module = zoo_reference.import_gfnet(code)
    with contextlib.redirect_stdout(io.StringIO()):  # the constructors print their drop-path setting
        built: torch.nn.Module = getattr(module, cls_name)(
            **{**kwargs, "drop_path_rate": 0.0}, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6)
        )
    return built


def compare(name: str, rounds: int, gfnet_code: Path | None) -> list[str]:
    if name in zoo_reference.GFNET_MODELS:
        assert gfnet_code is not None
        reference = gfnet(gfnet_code, name).eval()
    else:
        reference = timm.create_model(name, num_classes=1000, drop_path_rate=0.0).eval()
    ours = archspec.create_model(name, overrides={"drop_path_rate": 0.0}).eval()
    load_state(ours, reference.state_dict())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        difference = (ours(x) - reference(x)).abs().max().item()
    assert difference < 1e-3, f"{name}: logits differ by {difference}"
    cells = [name, f"{difference:.1e}"]
    for _, batch, train in WORKLOADS:
        x = torch.randn(batch, 3, 224, 224)
        steps = []
        for model in (reference, ours):
            model.train(train)
            optimizer = torch.optim.SGD(model.parameters(), lr=1e-9) if train else None
            steps.append(_step(model, x, optimizer))
        for step in steps:  # warm-up
            step()
        times: list[list[float]] = [[], []]
        for round_ in range(rounds):
            order = (0, 1) if round_ % 2 == 0 else (1, 0)
            for arm in order:
                times[arm].append(_timed(steps[arm]))
        ref_ms, ours_ms = (statistics.median(t) * 1e3 for t in times)
        # Each round's two steps ran back to back, so their ratio is the least disturbed by the
        # machine's load drifting between rounds; the table gives the median of those ratios.
        ratio = statistics.median(ref / ours for ref, ours in zip(*times, strict=True))
        cells += [f"{ref_ms:.1f}", f"{ours_ms:.1f}", f"{ratio:.2f}"]
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10, help="timed steps per model and workload (default: 10)")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="zoo models to compare (default: all)")
    parser.add_argument("--gfnet-code", type=Path, metavar="DIR", help="folder holding the official gfnet.py")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()
    names = args.only or sorted(p.stem for p in ZOO.glob("*.yaml"))
    if args.gfnet_code is None:
        skipped = [name for name in names if name in zoo_reference.GFNET_MODELS]
        if skipped:
            print(f"skipping {', '.join(skipped)}: no --gfnet-code given")
        names = [name for name in names if name not in skipped]
    header = ["model", "logit diff"]
    for label, _, _ in WORKLOADS:
        header += [f"{label} ref ms", f"{label} archspec ms", f"{label} ratio"]
    rows = []
    for name in names:
        rows.append(compare(name, args.rounds, args.gfnet_code and args.gfnet_code.resolve()))
        print(" | ".join(rows[-1]), flush=True)
    print()
    print(f"{machine_description(threads=args.threads)}, timm {timm.__version__}, {args.rounds} rounds")
    print(markdown_table(header, rows, right=range(1, len(header))))


if __name__ == "__main__":
    main()
