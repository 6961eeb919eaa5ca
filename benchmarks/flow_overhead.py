"""What running blocks from their planned flow costs: the generic FlowBlock against a hand-written forward.

    python benchmarks/flow_overhead.py --threads 2 [--spec spectformer-h-s --spec resnet50] [--rounds 10]

Both arms are the same built model with the same weights. In the second, every block of a form that
once had its own module (pre-norm, ResNet's basic and bottleneck, the class-attention head's) runs
that module's hand-written ``forward`` again (``x + m(norm1(x))``, then ``x + mlp(norm2(x))`` for
pre-norm). Steps alternate
(ABAB, each arm first in every other round) and the table gives each arm's median and the median
over rounds of the per-round ratio flow ÷ hand-written (above 1: the generic path is slower).
Stochastic depth is off.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import types

import torch
from ab_reference import _step  # benchmarks/ab_reference.py: one timed inference or training step

import archspec
from archspec.accel import retain_freed_memory
from archspec.nn.flow_block import FlowBlock
from archspec.nn.layout import grid_to_tokens, tokens_to_grid
from archspec.runtime import machine_description

CASES = (("inference, batch 1", 1, False), ("inference, batch 8", 8, False), ("training step, batch 8", 8, True))


def _prenorm(self: FlowBlock, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    x = x + self.drop_path(self.m(self.norm1(x), hw))
    x = x + self.drop_path(self.mlp(self.norm2(x), hw))
    return x, hw


def _basic(self: FlowBlock, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    grid = tokens_to_grid(x, hw)
    out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(grid)))))
    shortcut = grid if getattr(self, "shortcut", None) is None else self.shortcut(grid)
    out = self.act2(self.drop_path(out) + shortcut)
    return grid_to_tokens(out), (out.shape[-2], out.shape[-1])


def _bottleneck(self: FlowBlock, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    grid = tokens_to_grid(x, hw)
    out = self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(grid))))))
    out = self.bn3(self.conv3(out))
    shortcut = grid if getattr(self, "shortcut", None) is None else self.shortcut(grid)
    out = self.act3(self.drop_path(out) + shortcut)
    return grid_to_tokens(out), (out.shape[-2], out.shape[-1])


def _class_block(self: FlowBlock, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:
    cls = x[:, :1] + self.attn(self.norm1(x))
    cls = cls + self.mlp(self.norm2(cls))
    return torch.cat([cls, x[:, 1:]], dim=1), hw


HAND_WRITTEN = {"Block": _prenorm, "BasicBlock": _basic, "Bottleneck": _bottleneck, "ClassBlock": _class_block}
"""The forwards the blocks of these forms ran before forms were data, by the name the block prints as."""


def hand_written(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose blocks run the hand-written forward of their form."""
    other = copy.deepcopy(model)
    replaced = 0
    for module in other.modules():
        if isinstance(module, FlowBlock) and module.form in HAND_WRITTEN:
            module.forward = types.MethodType(HAND_WRITTEN[module.form], module)  # type: ignore[method-assign]
            replaced += 1
    if not replaced:
        raise SystemExit("the model has no blocks of a form with a hand-written forward to compare")
    return other


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--spec", action="append", help="spec to compare (default: spectformer-h-s and resnet50)")
    args = parser.parse_args()
    retain_freed_memory()
    torch.set_num_threads(args.threads)
    print(f"{machine_description(threads=args.threads)}, {args.rounds} rounds")
    print("| spec | case | flow (ms) | hand-written (ms) | flow ÷ hand-written |")
    print("|---|---|---:|---:|---:|")
    for name in args.spec or ["spectformer-h-s", "resnet50"]:
        compare(name, args.rounds)


def compare(name: str, rounds: int) -> None:
    flow = archspec.create_model(name, overrides=["drop_path_rate=0"])
    plain = hand_written(flow)
    with torch.inference_mode():
        x = torch.randn(2, 3, 224, 224)
        assert torch.equal(flow.eval()(x), plain.eval()(x))  # the same computation, to the bit
    for label, batch, train in CASES:
        x = torch.randn(batch, 3, 224, 224)
        models = [flow.train(train), plain.train(train)]
        optimizers = [torch.optim.SGD(m.parameters(), lr=1e-4) if train else None for m in models]
        times: list[list[float]] = [[], []]
        for round_ in range(rounds + 1):
            for i in (0, 1) if round_ % 2 == 0 else (1, 0):
                start = time.perf_counter()
                _step(models[i], x, optimizers[i])
                if round_:  # the first round warms up
                    times[i].append(time.perf_counter() - start)
        a, b = (statistics.median(t) * 1e3 for t in times)
        ratio = statistics.median(f / h for f, h in zip(*times, strict=True))
        print(f"| `{name}` | {label} | {a:.1f} | {b:.1f} | {ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
