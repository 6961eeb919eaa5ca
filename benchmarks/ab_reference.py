"""Side-by-side ratio of archspec-built SpectFormers against the plain implementation of each.

    python benchmarks/ab_reference.py --threads 2

Steps of the two models alternate (ABAB...), so both see the same machine load; the table gives the
median time of each and, as the ratio plain ÷ archspec (above 1: archspec is faster), the median
over rounds of the ratio of a round's two steps. Stochastic depth is
off in both, as the plain model has none. Freed memory is retained
(:func:`archspec.accel.retain_freed_memory`) unless ``--system-malloc`` is given.
"""

from __future__ import annotations

import argparse
import statistics
import time

import reference  # benchmarks/reference.py: scripts run from their own folder see it
import torch

import archspec
from archspec.accel import retain_freed_memory

CASES = (("inference, batch 1", 1, False), ("inference, batch 8", 8, False), ("training step, batch 8", 8, True),
         ("training step, batch 32", 32, True))  # fmt: skip
PLAIN = {"spectformer": reference.documented_spectformer, "spectformer-h-s": reference.spectformer_h_s}


def _step(model: torch.nn.Module, x: torch.Tensor, optimizer: torch.optim.Optimizer | None) -> None:
    if optimizer is None:
        with torch.inference_mode():
            model(x)
        return
    out = model(x)
    outputs = out if isinstance(out, tuple) else (out,)
    sum(o.logsumexp(-1).mean() for o in outputs).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--spec", action="append", choices=sorted(PLAIN), help="spec to compare (default: both)")
    parser.add_argument("--system-malloc", action="store_true", help="keep glibc's allocator settings")
    args = parser.parse_args()
    if not args.system_malloc:
        retain_freed_memory()
    torch.set_num_threads(args.threads)
    print("| spec | case | archspec (ms) | plain (ms) | plain ÷ archspec |")
    print("|---|---|---:|---:|---:|")
    for name in args.spec or sorted(PLAIN):
        compare(name, args.rounds)


def compare(name: str, rounds: int) -> None:
    ours = archspec.create_model(name, overrides=["drop_path_rate=0"])
    plain = PLAIN[name]()
    plain.load_state_dict(reference.from_archspec(ours.state_dict()))
    for label, batch, train in CASES:
        x = torch.randn(batch, 3, 224, 224)
        models = [ours.train(train), plain.train(train)]
        optimizers = [torch.optim.SGD(m.parameters(), lr=1e-4) if train else None for m in models]
        times: list[list[float]] = [[], []]
        for round_ in range(rounds + 1):
            for i in (0, 1) if round_ % 2 == 0 else (1, 0):  # each goes first in every other round
                start = time.perf_counter()
                _step(models[i], x, optimizers[i])
                if round_:  # the first round warms up
                    times[i].append(time.perf_counter() - start)
        a, b = (statistics.median(t) * 1e3 for t in times)
        ratio = statistics.median(plain_s / ours_s for ours_s, plain_s in zip(*times, strict=True))
        print(f"| `{name}` | {label} | {a:.0f} | {b:.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
