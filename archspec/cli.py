"""The ``archspec`` command: a thin shell over the library.

Data goes to stdout and messages to stderr. Exit codes: 0 ok, 1 invalid spec or failed check,
2 usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec.errors import ArchspecError, CheckError, SpecError
from archspec.plan import Plan
from archspec.spec import LoadedSpec, load_spec

if TYPE_CHECKING:
    from torch import nn

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
DTYPES = ("float32", "float64", "bfloat16", "float16")


class UsageError(ArchspecError):
    """Bad command-line usage that argparse could not catch (an unknown device, ...)."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _load_and_plan(path: str) -> tuple[LoadedSpec, Plan]:
    from archspec import plan

    loaded = load_spec(path)
    return loaded, plan(loaded)


def cmd_validate(args: argparse.Namespace) -> int:
    """Check specs without building them (torch is not imported).

    Prints one line per valid spec to stdout and every problem of an invalid one to stderr.

    Example: archspec validate specs/*.yaml
    """
    status = EXIT_OK
    for path in args.specs:
        try:
            _, plan = _load_and_plan(path)
        except ArchspecError as exc:
            _report(exc)
            status = EXIT_INVALID
            continue
        print(f"{path}: ok ({plan.name}: {plan.params:,} params, {plan.flops / 1e9:.3f} GFLOPs, {plan.out_shape} out)")
    return status


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the plan of a spec, per stage and in total, without building it.

    Example: archspec summary specs/spectformer-h-s.yaml --format md
    """
    from archspec import summary

    _, plan = _load_and_plan(args.spec)
    if args.format == "json":
        print(summary.format_json(plan))
    else:
        print(summary.format_table(plan, markdown=args.format == "md"))
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    """Build a spec into an nn.Module, run one forward pass on a random batch and check it against the plan.

    Prints the module tree and the summary table to stdout (only the table with --quiet) and fails
    (exit 1) if the parameter count or output shape differ from the plan's.

    Example: archspec build specs/spectformer.yaml --batch 2 --save spectformer.pt
    """
    from archspec import summary

    loaded, plan = _load_and_plan(args.spec)
    torch = _import_torch()
    device = _device(torch, args.device)
    dtype = getattr(torch, args.dtype)
    if args.save and Path(args.save).exists() and not args.force:
        raise UsageError(f"{args.save} exists; pass --force to overwrite it")

    from archspec.builder import build

    start = time.perf_counter()
    model = build(plan, device=device, dtype=dtype, seed=args.seed)
    built = time.perf_counter() - start
    if args.weights:
        from archspec.checkpoint import load_file

        load_file(model, args.weights)
        _say(f"loaded weights from {args.weights}")
    params = sum(p.numel() for p in model.parameters())
    if params != plan.params:
        raise CheckError(f"the built model has {params:,} parameters but the plan says {plan.params:,}")

    model.eval()
    batch = torch.randn(args.batch, *plan.input.dims, device=device, dtype=dtype)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model(batch)
    ran = time.perf_counter() - start
    expected = (args.batch, *plan.out_shape.dims)
    if tuple(out.shape) != expected:
        raise CheckError(f"the model returned shape {tuple(out.shape)} but the plan says {expected}")

    if not args.quiet:
        print(model)
        print()
    print(summary.format_table(plan))
    if args.save:
        _save_checkpoint(torch, model, loaded, Path(args.save))
        _say(f"saved weights to {args.save}")
    shape_in = "×".join(map(str, batch.shape))
    shape_out = "×".join(map(str, out.shape))
    _say(
        f"ok: built {plan.name} ({params:,} params) on {device} as {args.dtype} in {built * 1e3:.0f} ms; "
        f"forward {shape_in} → {shape_out} in {ran * 1e3:.0f} ms"
    )
    return EXIT_OK


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise UsageError("this command needs PyTorch: pip install torch==2.13.0") from None
    return torch


def _device(torch: Any, name: str) -> Any:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r} (try cpu, cuda, cuda:1 or meta)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but CUDA is not available on this machine")
    return device


def _save_checkpoint(torch: Any, model: nn.Module, loaded: LoadedSpec, path: Path) -> None:
    """Write weights and the spec they belong to; the file appears whole or not at all."""
    payload = {
        "format": "archspec-checkpoint/1",
        "spec": loaded.spec.model_dump(mode="json"),
        "state_dict": model.state_dict(),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _report(exc: ArchspecError) -> None:
    if isinstance(exc, SpecError):
        for line in exc.lines():
            _say(line)
    else:
        _say(f"error: {exc}" if isinstance(exc, UsageError | CheckError) else str(exc))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archspec",
        description="Describe a vision backbone in YAML; check, summarise and build it.",
        epilog="Exit codes: 0 ok, 1 invalid spec or failed check, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        doc = (func.__doc__ or "").strip()
        p = sub.add_parser(
            name, help=doc.splitlines()[0], description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.set_defaults(func=func)
        return p

    p = command("validate", cmd_validate)
    p.add_argument("specs", nargs="+", metavar="SPEC", help="spec files to check")

    p = command("summary", cmd_summary)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--format", choices=("table", "md", "json"), default="table", help="output format (default: table)")

    p = command("build", cmd_build)
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or meta (default: cpu)")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="parameter dtype (default: float32)")
    p.add_argument("--seed", type=int, default=0, help="RNG seed for the initial weights (default: 0)")
    p.add_argument("--batch", type=_positive_int, default=1, help="batch size of the check forward pass (default: 1)")
    p.add_argument(
        "--weights", metavar="PATH", help="load weights (archspec or official SpectFormer-H checkpoint) before checking"
    )
    p.add_argument("--save", metavar="PATH", help="write the weights and the spec to PATH (torch.save format)")
    p.add_argument("--force", action="store_true", help="let --save overwrite an existing file")
    p.add_argument("--quiet", action="store_true", help="print only the summary table, not the module tree")
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except UsageError as exc:
        _report(exc)
        return EXIT_USAGE
    except ArchspecError as exc:
        _report(exc)
        return EXIT_INVALID
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
