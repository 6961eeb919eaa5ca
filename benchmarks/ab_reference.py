"""Side-by-side ratio of archspec-built SpectFormers against another implementation of each.

    python benchmarks/ab_reference.py --threads 2
    python benchmarks/ab_reference.py --threads 2 --precision bf16-mixed --spec spectformer-h-s \\
        --official-code /path/to/SpectFormers/hierarchical_architecture

The other implementation is the plain one of ``benchmarks/reference.py``, or with ``--official-code``
the official SpectFormer-H-S (``spectformer_s`` of the ``spectformer.py`` in that folder, from
github.com/badripatro/SpectFormers; timm and pytorch_wavelets are stood in for where they are not
installed, as the model uses only timm's ``DropPath``, ``to_2tuple`` and ``trunc_normal_``).
Both hold the same weights. Steps of the two models alternate (ABAB...), so both see the same
machine load; the table gives the median time of each and, as the ratio other ÷ archspec (above 1:
archspec is faster), the median over rounds of the ratio of a round's two steps. Stochastic depth
and the official model's token mixing are off in both.

``--compile archspec`` times archspec's model through ``torch.compile`` against the other eager, and
``--compile both`` compiles both; each compile's time (the warm-up step) is printed under the table.
The agreement checks below run eager.

``--precision bf16-mixed`` runs both under the same bfloat16 autocast. Before timing, the script
compares what the two compute under that precision: the logits of a batch in inference and the
gradients of one training step, each against the float32 result of the other implementation. The
``vs fp32`` columns give, for the logits, the largest difference relative to the largest float32
value and, for the gradients, the L2 norm of the difference relative to the float32 one; archspec
passes when its difference is within 1.5× the other implementation's (both round to bfloat16 at
different places, so neither matches float32 exactly). Freed memory is retained
(:func:`archspec.accel.retain_freed_memory`) unless ``--system-malloc`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import reference  # benchmarks/reference.py: scripts run from their own folder see it
import torch
from torch import nn

import archspec
from archspec.accel import retain_freed_memory
from archspec.runtime import machine_description

CASES = (("inference, batch 1", 1, False), ("inference, batch 8", 8, False), ("training step, batch 8", 8, True),
         ("training step, batch 32", 32, True))  # fmt: skip
PLAIN = {"spectformer": reference.documented_spectformer, "spectformer-h-s": reference.spectformer_h_s}
TOLERANCE = 1.5
"""How much further from float32 than the other implementation archspec's bfloat16 result may be."""


def _logits(out: object) -> torch.Tensor:
    """The class scores a forward pass gives. In training the other implementations return the class
    head's logits and the token head's (B, N, classes) apart (and the official one its mixing box);
    they are combined as all three combine them in inference, class + 0.5 × the tokens' maximum, which
    is what archspec's model returns in both modes."""
    if not isinstance(out, tuple):
        return out  # type: ignore[return-value]
    cls, aux = out[0], out[1]
    return cls + 0.5 * aux.max(dim=1).values


def _loss(out: object) -> torch.Tensor:
    return _logits(out).float().logsumexp(-1).mean()


def _step(model: nn.Module, x: torch.Tensor, optimizer: torch.optim.Optimizer | None, autocast: Callable) -> None:
    if optimizer is None:
        with torch.inference_mode(), autocast():
            model(x)
        return
    with autocast():
        out = model(x)
    _loss(out).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _stand_ins() -> dict[str, types.ModuleType]:
    """Modules for the names the official spectformer.py imports, where the real packages are absent."""
    modules: dict[str, types.ModuleType] = {}
    if importlib.util.find_spec("timm") is None:

        class DropPath(nn.Module):
            def __init__(self, p: float = 0.0) -> None:
                super().__init__()
                self.p = p

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                if not self.training or self.p == 0:
                    return x
                keep = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(1 - self.p)
                return x * keep / (1 - self.p)

        layers = types.ModuleType("timm.models.layers")
        layers.DropPath = DropPath  # type: ignore[attr-defined]
        layers.to_2tuple = lambda v: v if isinstance(v, tuple) else (v, v)  # type: ignore[attr-defined]
        layers.trunc_normal_ = lambda t, std=1.0: nn.init.trunc_normal_(t, std=std)  # type: ignore[attr-defined]
        registry = types.ModuleType("timm.models.registry")
        registry.register_model = lambda fn: fn  # type: ignore[attr-defined]
        vit = types.ModuleType("timm.models.vision_transformer")
        vit._cfg = lambda **kwargs: dict(kwargs)  # type: ignore[attr-defined]
        for name in ("timm", "timm.models"):
            modules[name] = types.ModuleType(name)
        modules.update({"timm.models.layers": layers, "timm.models.registry": registry,
                        "timm.models.vision_transformer": vit})  # fmt: skip
    if importlib.util.find_spec("pytorch_wavelets") is None:
        wavelets = types.ModuleType("pytorch_wavelets")
        wavelets.DWTForward = wavelets.DWTInverse = None  # type: ignore[attr-defined]  # imported, never used by H-S
        modules["pytorch_wavelets"] = wavelets
    return modules


def official_spectformer_h_s(folder: Path) -> nn.Module:
    """``spectformer_s`` from the official ``spectformer.py`` in ``folder``, token mixing off."""
    source = folder / "spectformer.py"
    if not source.is_file():
        raise SystemExit(f"--official-code {folder}: no spectformer.py (give its hierarchical_architecture folder)")
    saved = {name: sys.modules.get(name) for name in _stand_ins()}
    sys.modules.update(_stand_ins())
    try:
        spec = importlib.util.spec_from_file_location("official_spectformer", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for name, before in saved.items():
            if before is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = before
    model = module.spectformer_s(num_classes=1000, drop_path_rate=0.0)
    model.mix_token = False  # its random box mixing would make the two models see different images
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--spec", action="append", choices=sorted(PLAIN), help="spec to compare (default: both)")
    parser.add_argument("--precision", choices=("fp32", "bf16-mixed"), default="fp32",
                        help="fp32, or bf16-mixed: both models under bfloat16 autocast (default: fp32)")  # fmt: skip
    parser.add_argument("--official-code", type=Path, metavar="DIR",
                        help="compare spectformer-h-s against the official code's spectformer_s in DIR")  # fmt: skip
    parser.add_argument("--cases", default="1,2,3,4", help="which cases, by number (default: all four)")
    parser.add_argument("--compile", choices=("none", "archspec", "both"), default="none",
                        help="time torch.compile'd models: archspec's only, or both (default: none)")  # fmt: skip
    parser.add_argument("--system-malloc", action="store_true", help="keep glibc's allocator settings")
    args = parser.parse_args()
    if not args.system_malloc:
        retain_freed_memory()
    torch.set_num_threads(args.threads)
    cases = [CASES[int(number) - 1] for number in args.cases.split(",")]
    other = "official" if args.official_code else "plain"
    compiled = {"none": "eager", "archspec": "archspec compiled, the other eager", "both": "both compiled"}
    print(f"{machine_description()}; {args.precision}; {compiled[args.compile]}; {args.rounds} rounds\n")
    print(f"| spec | case | archspec (ms) | {other} (ms) | {other} ÷ archspec |")
    print("|---|---|---:|---:|---:|")
    names = args.spec or (["spectformer-h-s"] if args.official_code else sorted(PLAIN))
    checks = []
    notes: list[str] = []
    for name in names:
        if args.official_code and name != "spectformer-h-s":
            raise SystemExit("--official-code holds SpectFormer-H-S only: give --spec spectformer-h-s")
        ours = archspec.create_model(name, overrides=["drop_path_rate=0"])
        theirs = official_spectformer_h_s(args.official_code) if args.official_code else PLAIN[name]()
        theirs.load_state_dict(reference.from_archspec(ours.state_dict()))
        autocast = _autocast(args.precision)
        if args.precision != "fp32":
            checks.append((name, agreement(ours, theirs, autocast)))
        notes += compare(name, ours, theirs, cases, args.rounds, autocast, args.compile)
    if notes:
        print("\n" + "\n".join(notes))
    for name, rows in checks:
        print(f"\n`{name}` under {args.precision}, each against the other implementation's float32 result:\n")
        print("| what | archspec vs fp32 | " + other + " vs fp32 | archspec vs " + other + " | within tolerance |")
        print("|---|---:|---:|---:|---|")
        for what, mine, yours, between in rows:
            ok = "yes" if mine <= TOLERANCE * yours + 1e-6 else "NO"
            print(f"| {what} | {mine:.2e} | {yours:.2e} | {between:.2e} | {ok} |")


def _autocast(precision: str) -> Callable[[], contextlib.AbstractContextManager[None]]:
    if precision == "bf16-mixed":
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def _gradients(model: nn.Module, x: torch.Tensor, autocast: Callable, rename: bool) -> torch.Tensor:
    """Every parameter's gradient, flattened and concatenated in the order of the other implementation's
    names (archspec's names are converted first), so the two vectors line up parameter by parameter."""
    model.train().zero_grad(set_to_none=True)
    with autocast():
        out = model(x)
    _loss(out).backward()
    grads = {
        name: parameter.grad.detach().clone() if parameter.grad is not None else torch.zeros_like(parameter)
        for name, parameter in model.named_parameters()
    }
    model.zero_grad(set_to_none=True)
    named = reference.from_archspec(grads) if rename else grads
    return torch.cat([named[name].flatten() for name in sorted(named)])


def agreement(ours: nn.Module, theirs: nn.Module, autocast: Callable) -> list[tuple[str, float, float, float]]:
    """Logits (inference, batch 2) and gradients (one step, batch 2) of both models, against float32."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 224, 224)

    def logits(model: nn.Module, context: Callable) -> torch.Tensor:
        with torch.inference_mode(), context():
            return _logits(model.eval()(x)).float()

    def relative(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> float:
        return float((a - b).abs().max() / scale.abs().max().clamp_min(1e-12))

    exact_ours, exact_theirs = logits(ours, contextlib.nullcontext), logits(theirs, contextlib.nullcontext)
    low_ours, low_theirs = logits(ours, autocast), logits(theirs, autocast)
    rows = [("logits", relative(low_ours, exact_theirs, exact_theirs), relative(low_theirs, exact_ours, exact_ours),
             relative(low_ours, low_theirs, exact_theirs))]  # fmt: skip
    grads = {
        key: _gradients(model, x, context, rename=key.startswith("ours"))
        for key, model, context in (("ours", ours, autocast), ("theirs", theirs, autocast),
                                    ("ours32", ours, contextlib.nullcontext),
                                    ("theirs32", theirs, contextlib.nullcontext))
    }  # fmt: skip

    def l2(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp_min(1e-12))

    rows.append((
        "gradients (all parameters, relative L2)",
        l2(grads["ours"], grads["theirs32"]),
        l2(grads["theirs"], grads["ours32"]),
        l2(grads["ours"], grads["theirs"]),
    ))  # fmt: skip
    return rows


def compare(
    name: str, ours: nn.Module, theirs: nn.Module, cases: list, rounds: int, autocast: Callable, compile: str = "none"
) -> list[str]:
    """Time the cases, alternating the two models. With ``compile`` (``archspec`` or ``both``) those models
    run through ``torch.compile`` (a fresh compile per case, with fixed shapes); the compile happens in
    the warm-up round. Returns a line per compiled model and case giving its warm-up (compile) time."""
    notes: list[str] = []
    for label, batch, train in cases:
        x = torch.randn(batch, 3, 224, 224)
        models = [ours.train(train), theirs.train(train)]
        compiled = [compile != "none", compile == "both"]
        if any(compiled):
            torch._dynamo.reset()
        models = [torch.compile(m, dynamic=False) if c else m for m, c in zip(models, compiled, strict=True)]
        warmup = [0.0, 0.0]
        optimizers = [torch.optim.SGD(m.parameters(), lr=1e-4) if train else None for m in models]
        times: list[list[float]] = [[], []]
        for round_ in range(rounds + 1):
            for i in (0, 1) if round_ % 2 == 0 else (1, 0):  # each goes first in every other round
                start = time.perf_counter()
                _step(models[i], x, optimizers[i], autocast)
                if round_:  # the first round warms up (and compiles)
                    times[i].append(time.perf_counter() - start)
                else:
                    warmup[i] = time.perf_counter() - start
        a, b = (statistics.median(t) * 1e3 for t in times)
        ratio = statistics.median(other / mine for mine, other in zip(*times, strict=True))
        print(f"| `{name}` | {label} | {a:.0f} | {b:.0f} | {ratio:.2f} |", flush=True)
        for who, seconds, done in zip(("archspec", "the other"), warmup, compiled, strict=True):
            if done:
                notes.append(f"{label}: {who} compiled in {seconds:.0f} s (the warm-up step)")
    return notes


if __name__ == "__main__":
    main()
