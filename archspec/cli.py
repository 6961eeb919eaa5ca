"""The ``archspec`` command: a thin shell over the library.

Data goes to stdout and messages to stderr. Exit codes: 0 ok, 1 invalid spec or failed check,
2 usage error.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec import cli_options as opt
from archspec.errors import CATALOGUE, ArchspecError, SpecError, SpecFileError
from archspec.fingerprint import spec_fingerprint
from archspec.nodes import Plan
from archspec.output import OutputExistsError, check_destination, check_paths, for_terminal, guard_stdout

if TYPE_CHECKING:
    from typing import NoReturn

    from tqdm import tqdm

    from archspec.spec import LoadedSpec

EXIT_OK, EXIT_INVALID, EXIT_USAGE = 0, 1, 2
SPEC_HELP = "a spec file or a shipped name (see archspec list)"
THREADS_HELP = "torch CPU threads, at most 1024 (default: torch's choice)"
WEIGHTS_HELP = (
    "load weights strictly before checking: an archspec checkpoint, or a reference's state_dict "
    "(timm, official GFNet or SpectFormer-H; torch.save or .safetensors), converted"
)
INIT_FROM_HELP = "warm start: copy each tensor of PATH whose name and shape fit; list the rest"
NONFINITE_HELP = "load NaN or infinite weight values instead of refusing them"
FIT_PRECISIONS = ("auto", "fp32", "bf16-mixed", "fp16-mixed")
SAMPLERS = ("tpe", "nsga2", "random")
PRUNERS = ("median", "hyperband", "none")
BUILD_DTYPES = {"float32": "fp32", "float64": "fp64", "bfloat16": "bf16", "float16": "fp16"}
"""``build --dtype``, the old spelling of ``--precision``: its values and theirs."""
BENCH_DTYPES = {"float32": "fp32", "bfloat16": "bf16-mixed", "float16": "fp16-mixed"}
"""``bench --dtype``, the old spelling of ``--precision``: autocast dtypes and the precisions they are."""


class UsageError(ArchspecError):
    """Bad command-line usage that argparse could not catch (an unknown device, ...)."""


QUIET, NORMAL, VERBOSE = 0, 1, 2
_verbosity = NORMAL


def _say(message: str, level: int = NORMAL) -> None:
    """A message on stderr, shown when the verbosity (--quiet 0, default 1, --verbose 2) reaches ``level``."""
    if _verbosity >= level:
        print(for_terminal(message), file=sys.stderr)


def _error(message: str) -> None:
    print(for_terminal(message), file=sys.stderr)


def _progress(total: int) -> tqdm[NoReturn]:
    """A tqdm progress bar on stderr, drawn only when stderr is a terminal and never with --quiet."""
    from tqdm import tqdm

    return tqdm(total=total, file=sys.stderr, disable=True if _verbosity < NORMAL else None)


def _sweep_progress(bar: tqdm[NoReturn]) -> Callable[[int, int, str], None]:
    """:func:`archspec.sweep.run_sweep`'s progress callback (variant ``index`` of ``total``), drawn on ``bar``."""

    def update(index: int, total: int, label: str) -> None:
        bar.set_postfix_str(for_terminal(label))
        bar.update(index - bar.n)

    return update


def _load_and_plan(path: str, overrides: Sequence[str] = ()) -> tuple[LoadedSpec, Plan]:
    from archspec import plan
    from archspec.spec import load_spec

    start = time.perf_counter()
    loaded = load_spec(path, overrides)
    planned = plan(loaded)
    elapsed = (time.perf_counter() - start) * 1e3
    _say(
        f"{_label(path, overrides)}: loaded and planned in {elapsed:.0f} ms "
        f"(fingerprint {spec_fingerprint(planned.spec)})",
        VERBOSE,
    )
    return loaded, planned


def _label(path: str, overrides: Sequence[str]) -> str:
    return " ".join([path, *(f"--set {o}" for o in overrides)])


def cmd_validate(args: argparse.Namespace) -> int:
    """Check specs without building them (torch is not imported).

    Prints one line per valid spec to stdout and every problem of an invalid one to stderr.

    Example: archspec validate specs/*.yaml
    """
    from archspec.compose import OverrideError

    status = EXIT_OK
    for path in args.specs:
        try:
            _, plan = _load_and_plan(path, args.set)
        except OverrideError:
            raise  # a malformed --set is a usage error, the same for every file
        except ArchspecError as exc:
            _report(exc)
            status = EXIT_INVALID
            continue
        print(f"{path}: ok ({plan.name}: {plan.params:,} params, {plan.flops / 1e9:.3f} GFLOPs, {plan.out_shape} out)")
    return status


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the plan of a spec, per stage and in total, without building it.

    --input CxHxW (or --size N|HxW) plans the model at another input size: shapes and FLOPs are
    those at that size (the parameter count is that of a model built there, whose spectral filters
    are larger).

    Example: archspec summary specs/spectformer-h-s.yaml --format md --size 384
    """
    from archspec import summary

    _, plan = _load_and_plan(args.spec, _overrides(args))
    if args.format == "json":
        print(summary.format_json(plan))
    else:
        print(summary.format_table(plan, markdown=args.format == "md"))
        print(f"spec fingerprint: {spec_fingerprint(plan.spec)}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    """List the shipped specs: name, family, parameters, GFLOPs and file, planned without torch.

    The family is the folder a spec ships in: spectformer (the SpectFormers at the top), zoo
    (reference models of timm and the papers), variants (SpectFormer with one part changed) and
    digits (SpectFormer scaled to 8×8 digits). Parameters and GFLOPs are those of one sample at the
    spec's own input size, as summary gives them. Any name listed works wherever a SPEC is asked for.

    Example: archspec list --format md
    """
    from archspec import PlanCache, plan
    from archspec.compose import shipped_specs
    from archspec.spec import load_spec

    start = time.perf_counter()
    cache = PlanCache()
    rows: list[dict[str, Any]] = []
    for path in shipped_specs():
        planned = plan(load_spec(path), cache)
        rows.append(
            {"name": path.stem, "family": _family(path), "params": planned.params, "flops": planned.flops,
             "path": _shown_path(path)}
        )  # fmt: skip
    _say(f"planned {len(rows)} shipped specs in {(time.perf_counter() - start) * 1e3:.0f} ms", VERBOSE)
    if args.format == "json":
        import json

        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from archspec.tables import markdown_table, text_table

    header = ("name", "family", "params", "GFLOPs", "file")
    body = [(r["name"], r["family"], f"{r['params']:,}", f"{r['flops'] / 1e9:.3f}", r["path"]) for r in rows]
    print(markdown_table(header, body, {2, 3}) if args.format == "md" else text_table(header, body, {2, 3}))
    return EXIT_OK


def _family(path: Path) -> str:
    """The family ``archspec list`` gives a shipped spec: its folder under the shipped specs, spectformer at the top."""
    from archspec.compose import SHIPPED_SPECS

    folder = path.parent.relative_to(SHIPPED_SPECS).as_posix()
    return "spectformer" if folder == "." else folder


def _shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else as it is."""
    try:
        return path.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return str(path)


def cmd_show(args: argparse.Namespace) -> int:
    """Print the fully resolved spec (after extends, defaults and --set) as canonical YAML.

    The output is itself a valid spec that describes the same model.

    Example: archspec show specs/spectformer.yaml --set stages.2.depth=8
    """
    from archspec.fingerprint import canonical_yaml
    from archspec.spec import load_spec

    loaded = load_spec(args.spec, args.set)
    sys.stdout.write(canonical_yaml(loaded.spec))
    return EXIT_OK


def cmd_build(args: argparse.Namespace) -> int:
    """Build a spec into an nn.Module, run one forward pass on a random batch and check it against the plan.

    Prints the module tree and the summary table to stdout (only the table with --no-tree) and fails
    (exit 1) if the parameter count or output shape differ from the plan's.

    Example: archspec build specs/spectformer.yaml --batch 2 --save spectformer.pt
    """
    from archspec import summary

    if args.weights and args.init_from:
        raise UsageError("give --weights (a strict load) or --init-from (a warm start), not both")
    # before any work, so a refusal costs nothing
    inputs = {"SPEC": _spec_path(args.spec), "--weights": args.weights, "--init-from": args.init_from}
    check_paths({"--save": args.save}, inputs, args.force)
    _, plan = _load_and_plan(args.spec, _overrides(args))
    _check_weights_file(args.weights or args.init_from)
    torch = _import_torch()
    device = _device(torch, args.device)
    if device.type == "cpu":
        _retain_freed_memory()
    dtype_name = opt.PARAMETER_DTYPE[args.precision]
    dtype = getattr(torch, dtype_name)
    if device.type != "meta":
        _within_budget(args, plan, dtype_name, args.batch, args.max_params)

    from archspec.builder import build
    from archspec.checks import check
    from archspec.fingerprint import structure_fingerprint

    start = time.perf_counter()
    model = build(plan, device=device, dtype=dtype, seed=args.seed)
    built = time.perf_counter() - start
    if args.weights:
        from archspec.checkpoint import load_file

        layout = load_file(model, args.weights, plan=plan, allow_nonfinite=args.allow_nonfinite)
        _say(f"loaded weights from {args.weights}" + (f" (converted from the {layout} layout)" if layout else ""))
    if args.init_from:
        from archspec.checkpoint import located, read_file, warm_start

        checkpoint = read_file(args.init_from)
        with located(args.init_from):
            report = warm_start(model, checkpoint, allow_nonfinite=args.allow_nonfinite).report()
        _say(f"warm start from {args.init_from}: {report}")
    checked = check(model, plan, args.batch, device=device, dtype=dtype, grad=args.check_grad)
    if checked.grad_tensors is not None:
        _say(f"ok: every parameter received a gradient ({checked.grad_tensors} tensors)")
    what = f"{plan.name} ({checked.params:,} params)"
    if checked.backbone:
        what = f"{plan.name} as a backbone ({checked.declared_params:,} params; the head's {plan.head.params:,} unused)"
    if not args.no_tree:
        print(checked.module)
        print()
    print(summary.format_table(plan))
    print(f"spec fingerprint: {spec_fingerprint(plan.spec)}  structure fingerprint: {structure_fingerprint(model)}")
    if args.save:
        from archspec.checkpoint import save_file

        save_file(model, plan, args.save, force=args.force)
        _say(f"saved weights to {args.save}")
    shape_in = "×".join(map(str, checked.input_shape))
    shape_out = ", ".join("×".join(map(str, shape)) for shape in checked.output_shapes)
    _say(
        f"ok: built {what} on {device} as {dtype_name} in {built * 1e3:.0f} ms; "
        f"forward {shape_in} → {shape_out} in {checked.forward_s * 1e3:.0f} ms"
    )
    return EXIT_OK


def cmd_convert(args: argparse.Namespace) -> int:
    """Turn a reference implementation's weights into an archspec checkpoint for a spec.

    WEIGHTS is a state_dict saved by the reference code (torch.save or safetensors): timm's, the
    official GFNet's or SpectFormer-H's. Its layout is detected (or named with --layout), converted
    to archspec's names, loaded strictly, and written with the spec and its fingerprints, so that
    `build --weights` and `create_model(pretrained=...)` load it as archspec's own.

    Example: archspec convert resnet50 resnet50_timm.pth -o resnet50.pt
    """
    from archspec.families import layouts

    if args.layout is not None and args.layout not in {layout.name for layout in layouts()}:
        known = ", ".join(sorted(layout.name for layout in layouts()))
        raise UsageError(f"--layout {args.layout}: unknown checkpoint layout (known: {known})")
    check_paths({"--output": args.output}, {"SPEC": _spec_path(args.spec), "WEIGHTS": args.weights}, args.force)
    _, plan = _load_and_plan(args.spec, _overrides(args))
    _check_weights_file(args.weights)
    _import_torch()
    from archspec.builder import build
    from archspec.checkpoint import load_file, save_file

    # the weights are held twice at most
    _within_budget(args, plan, remedy="convert on a machine with more memory, or pass --no-budget")
    model = build(plan, seed=0)
    layout = load_file(model, args.weights, layout=args.layout, allow_nonfinite=args.allow_nonfinite)
    save_file(model, plan, args.output, force=args.force)
    source = f"the {layout} layout" if layout else "archspec's own names"
    _say(
        f"ok: read {args.weights} as {source}; wrote {args.output} for {plan.name} "
        f"(fingerprint {spec_fingerprint(plan.spec)})"
    )
    return EXIT_OK


def cmd_render(args: argparse.Namespace) -> int:
    """Draw the plan of a spec: stages, collapsed runs of blocks, shapes, params and FLOPs.

    The format comes from the suffix of -o: svg, png or pdf (these need Graphviz's dot), dot, json
    (networkx node-link) or graphml. "-o -" writes DOT to stdout. No forward pass, no torch.

    Example: archspec render specs/spectformer.yaml -o spectformer.svg --depth 2
    """
    from archspec import render

    if args.output != "-":
        check_paths({"--output": args.output}, {"SPEC": _spec_path(args.spec)}, args.force)
    _, plan = _load_and_plan(args.spec, _overrides(args))
    if args.output == "-":
        sys.stdout.write(render.to_dot(plan, depth=args.depth))
        return EXIT_OK
    out = render.render(plan, Path(args.output), depth=args.depth, force=args.force)
    _say(f"wrote {out}")
    return EXIT_OK


def cmd_diff(args: argparse.Namespace) -> int:
    """Compare two specs structurally: stages and blocks added or removed, widths, mixers, heads.

    Each change carries its parameter and FLOP delta (B − A); the deltas add up to the totals.
    --set applies to B and --set-a to A, so a spec can be compared with a variant of itself.

    Example: archspec diff specs/spectformer.yaml specs/spectformer.yaml --set stages.1.mixer.type=attention
    """
    from archspec.diff import diff_plans, format_diff

    _, a = _load_and_plan(args.a, args.set_a)
    _, b = _load_and_plan(args.b, args.set)
    print(format_diff(diff_plans(a, b), _label(args.a, args.set_a), _label(args.b, args.set), args.format))
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """Plan every combination of --grid values, for each spec given, and print one row per variant.

    Rows give params, FLOPs, an activation-memory estimate and a status; an invalid combination is
    a row with its error. --measure also builds each variant and times its forward pass as bench
    does (this imports torch). --fit DATA trains every valid variant as `archspec fit` does, after
    fitting it to the data, once per seed (--seeds K: seeds 0 to K-1), and adds the mean ± standard
    deviation of the final validation accuracy, the mean wall time of a run and the rank by accuracy
    per GFLOP; --plot draws accuracy against GFLOPs and parameters; --precision bf16-mixed trains
    under bfloat16 autocast. --input or --size sets every variant's input size (with --fit, the size
    the images are fitted to). A progress bar is drawn when stderr is a terminal.

    Example:
      archspec sweep specs/spectformer.yaml \\
        --grid stages.2.depth=4,6,8 --grid stages.1.mixer.type=spectral,attention
    """
    from archspec.sweep import FitSweep, combinations, format_rows, run_sweep

    if args.plot and not args.fit:
        raise UsageError("--plot draws the accuracies of --fit: give --fit too")
    if args.precision != "auto" and not args.fit:
        raise UsageError(f"--precision {args.precision} sets how --fit trains: give --fit too")
    if args.plot:
        inputs = {f"SPEC {spec}": _spec_path(spec) for spec in args.specs}
        check_paths({"--plot": args.plot}, {**inputs, "--fit": _data_path(args.fit)}, args.force)
    if args.measure or args.fit:
        torch = _import_torch()
        if _device(torch, args.device, timed=True).type == "cpu":
            _retain_freed_memory()
    fitting = None
    if args.fit:
        from archspec.data import scan, split
        from archspec.fit import FitConfig

        images = scan(args.fit)
        parts = split(images, 0.2, seed=0)
        _say(images.describe())
        _say(parts.describe())
        size = _fit_size(args, images)
        config = FitConfig(epochs=args.epochs, precision=_training_precision(args))
        lifted = args.no_budget or _force_lifts_budget(args)
        fitting = FitSweep(images, parts, config, args.seeds, size, args.device, force=lifted)
    overrides = list(args.set) if args.fit else _overrides(args)
    with _progress(len(args.specs) * len(combinations(args.grid))) as bar, _torch_threads(args.threads):
        rows = run_sweep(
            args.specs, args.grid, overrides, measure=args.measure, batch=args.batch, device=args.device,
            repeats=args.repeats, progress=_sweep_progress(bar), fit=fitting,
        )  # fmt: skip
    for adapted in dict.fromkeys(" ".join(f"--set {o}" for o in row.adapted) for row in rows if row.adapted):
        _say(f"fitted to the data with {adapted}")
    fitted = args.fit is not None
    print(format_rows(rows, args.format, measured=args.measure, batch=args.batch, fitted=fitted, seeds=args.seeds))
    if args.plot:
        from archspec.plot import plot_sweep

        _say(f"wrote {plot_sweep(rows, args.plot, force=args.force)}")
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    """Train a spec briefly on labelled images and report how well it learned.

    --data is digits (scikit-learn's 1,797 8×8 handwritten digits, bundled), a folder with one
    subfolder of images per class, or a .npz file with arrays x (N×C×H×W or N×H×W) and y. A fixed,
    seeded split keeps --val-fraction of each class for validation. The spec is fitted to the data
    (input channels, input size, class count), and the changes are printed as --set lines. Images
    are held in memory when they fit the budget and streamed from disk by worker processes when
    not (--loader). Training uses AdamW with a linear warm-up and cosine decay, and the spec's
    drop-path; every epoch ends with a validation pass. The same seed and thread count give the same
    numbers. Under torchrun, each process trains on its shard with DistributedDataParallel (--batch
    is per process). The digits need scikit-learn, image folders Pillow and sweep --plot matplotlib:
    pip install scikit-learn Pillow matplotlib, or pip install -e '.[fit]' in a checkout.

    Example: archspec fit specs/spectformer.yaml --data digits --epochs 5 --save digits.pt --log digits.jsonl
    """
    _, native = _load_and_plan(args.spec, args.set)  # the spec and its overrides first: no torch needed
    from archspec.data import scan, split
    from archspec.fit import LAUNCH_HINT, FitConfig, FitError, adapt, launch_problem

    if (problem := launch_problem()) is not None:
        raise UsageError(f"{problem}: {LAUNCH_HINT}")
    lead = int(os.environ.get("RANK", "0")) == 0
    global _verbosity
    if not lead:
        _verbosity = QUIET  # one process speaks for the group
    if args.resume and (args.weights or args.init_from):
        raise UsageError("--resume continues a run; --weights and --init-from start a new one: give one or the other")
    if args.weights and args.init_from:
        raise UsageError("give --weights (a strict load) or --init-from (a warm start), not both")
    try:
        config = FitConfig(
            epochs=args.epochs, batch=args.batch, lr=args.lr, weight_decay=args.wd, warmup_epochs=args.warmup_epochs,
            label_smoothing=args.label_smoothing, seed=args.seed, precision=_precision(args), augment=args.augment,
            resize=args.resize,
        )  # fmt: skip
    except FitError as exc:
        raise UsageError(str(exc)) from None
    inputs = {
        "SPEC": _spec_path(args.spec), "--data": _data_path(args.data), "--resume": args.resume,
        "--weights": args.weights, "--init-from": args.init_from,
    }  # fmt: skip
    if lead:  # before any work: a refused run touches no file
        check_paths({"--save": args.save, "--log": args.log}, inputs, args.force, replaces={"--save": "--resume"})
    for path in (args.resume, args.weights, args.init_from):
        _check_weights_file(path)
    catalog = scan(args.data)
    parts = split(catalog, args.val_fraction, seed=0)
    _say(catalog.describe())
    _say(parts.describe())
    size = _fit_size(args, catalog)
    adaptation = adapt(native, catalog, size)
    _, plan = _load_and_plan(args.spec, [*args.set, *adaptation])
    _say(f"variant: {_label(args.spec, [*args.set, *adaptation])}" + ("" if adaptation else " (as written)"))
    torch = _import_torch()
    device = _device(torch, args.device, timed=True)
    if device.type == "cpu":
        _retain_freed_memory()
    from archspec import feed, fit

    batch = min(args.batch, len(parts.train))
    choice = feed.choose(catalog, (plan.input.dims[1], plan.input.dims[2]), plan, batch, args.loader, args.workers)
    _say(choice.describe())
    _within_budget(
        args, plan, "float32", batch, data_bytes=choice.data_bytes, training=True,
        remedy="lower --batch or --size, use --loader stream for an image folder, or pass --no-budget",
    )  # fmt: skip
    config = replace(config, precision=_training_precision(args, args.resume))
    bar: tqdm[NoReturn] | None = None
    saved: int | None = None

    def on_step(epoch: int, step: int, steps: int) -> None:
        nonlocal bar
        if bar is None:
            bar = _progress(steps)
            bar.set_description(f"epoch {epoch + 1}/{config.epochs}")
        bar.update()
        if step == steps:
            bar.close()
            bar = None

    def on_epoch(m: fit.EpochMetrics) -> None:
        nonlocal saved
        saved = m.epoch if args.save else None
        _say(
            f"epoch {m.epoch}/{config.epochs}: train loss {m.train_loss:.4f}, val loss {m.val_loss:.4f}, "
            f"val acc {m.val_acc:.2%}, lr {m.lr:.2e}, {m.seconds:.1f} s ({m.samples_per_s:.0f} images/s)"
        )

    try:
        with _torch_threads(args.threads):
            result = fit.fit(
                plan, catalog, parts, config, device=device, save=args.save if lead else None, resume=args.resume,
                log=args.log if lead else None, on_epoch=on_epoch, on_step=on_step, on_start=_say, loader=choice,
                weights=args.weights, init_from=args.init_from, force=args.force,
            )  # fmt: skip
    except KeyboardInterrupt:
        if lead:
            _error(_interrupted(args, saved))
        raise
    finally:
        if bar is not None:
            bar.close()
    if not lead:
        return EXIT_OK
    report = {
        "spec": args.spec, "overrides": [*args.set, *adaptation], "data": catalog.source,
        "train_images": len(parts.train), "val_images": len(parts.val), "params": plan.params,
        "gflops": plan.flops / 1e9, **result.as_dict(),
    }  # fmt: skip
    if args.format == "json":
        import json

        print(json.dumps(report, indent=2))
    else:
        print(fit.format_result(plan, result, markdown=args.format == "md"))
    if args.save:
        _say(f"saved the model and training state to {args.save}")
    return EXIT_OK


def _interrupted(args: argparse.Namespace, saved: int | None) -> str:
    """What an interrupted fit left behind, claiming only what this run wrote."""
    if saved is not None:
        return f"interrupted: {args.save} holds epoch {saved}; continue with --resume {args.save}"
    if args.resume:
        return f"interrupted before an epoch finished; {args.resume} is as it was"
    return "interrupted before the first epoch finished; nothing was saved"


def cmd_search(args: argparse.Namespace) -> int:
    """Search the ranges a space file declares with Optuna, refusing from the plan what breaks its limits.

    Every trial applies one proposal (a value per key of the space) to the base spec, fits it to the
    data as fit does, and plans it: a candidate that does not plan, or breaks a constraint or the
    memory budget, is recorded as PRUNED with its reason in milliseconds and never trained. The
    others are trained as fit trains (once per seed with --seeds) and measured for the objectives.
    One objective is searched with TPE and pruned after an epoch when clearly behind (the median
    pruner); two or more with NSGA-II. Trials are stored in an Optuna storage (an SQLite file by
    default): run the same command again to continue the study, or on several machines with one
    --storage URL (PostgreSQL) and --study to share it. Ctrl-C keeps the finished trials and marks
    the running one FAIL. Needs Optuna: pip install optuna sqlalchemy, or pip install -e '.[search]'.

    Example: archspec search --space spectformer-digits --trials 20 --epochs 3 --plot search.png
    """
    from archspec import search
    from archspec.search_space import load_space

    search.optuna_module()  # before any work: say what to install
    objectives = search.Objectives.parse(args.objectives) if args.objectives else None
    space = load_space(args.space, args.spec)
    storage_place = args.storage or search.default_storage(space)
    inputs = {"--space": space.path, "SPEC": space.base, "--data": _data_path(args.data)}
    stored_file = None if "://" in storage_place else storage_place
    check_paths({"--plot": args.plot}, {**inputs, "--storage": stored_file}, args.force)
    if stored_file is not None:  # the storage is written as well as read: it must not be one of the inputs
        for option, path in inputs.items():
            if path is not None and Path(path).exists() and Path(path).resolve() == Path(stored_file).resolve():
                raise UsageError(f"--storage {stored_file} is the {option} file: give the study a file of its own")
    if args.trials == 0 and stored_file is not None and not Path(stored_file).exists():
        raise UsageError(f"--storage {stored_file}: no such file; --trials 0 reports a study already stored")
    if args.export_best and Path(args.export_best).exists() and not Path(args.export_best).is_dir():
        raise UsageError(f"--export-best {args.export_best}: not a folder; it names the folder the specs go to")
    name = args.study or space.path.stem
    storage = search.open_storage(storage_place)
    try:
        with search.storage_errors(storage_place):
            return _search(args, space, storage, storage_place, name, objectives)
    finally:
        search.close_storage(storage)


def _search(args: argparse.Namespace, space: Any, storage: Any, storage_place: str, name: str, objectives: Any) -> int:
    """``archspec search`` once its storage is open."""
    from archspec import search

    study, objectives = search.open_study(
        space, storage, name, objectives, args.sampler, args.seed, args.pruner, create=args.trials > 0
    )
    if args.plot and "accuracy" not in objectives.names:
        raise UsageError("--plot draws accuracy against GFLOPs: give accuracy among --objectives")
    _say(f"study {name} in {storage_place}: {len(study.trials)} trials so far")
    if args.trials > 0:  # candidates are fitted to the data even when nothing is trained
        from archspec.data import scan, split
        from archspec.fit import FitConfig, FitError
        from archspec.sweep import FitSweep

        try:
            config = FitConfig(
                epochs=args.epochs, batch=args.batch, lr=args.lr, weight_decay=args.wd,
                warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
                precision=_training_precision(args), augment=args.augment, resize=args.resize,
            )  # fmt: skip
        except FitError as exc:
            raise UsageError(str(exc)) from None
        catalog = scan(args.data)
        parts = split(catalog, args.val_fraction, seed=0)
        _say(catalog.describe())
        _say(parts.describe())
        training = FitSweep(catalog, parts, config, args.seeds, _fit_size(args, catalog), args.device, args.no_budget)
        torch = _import_torch()
        if _device(torch, args.device, timed=True).type == "cpu":
            _retain_freed_memory()

        def said(trial: Any) -> None:
            _say(_trial_line(trial))

        worker = search.Search(space, study, objectives, training, args.device, on_trial=said)
        start = time.perf_counter()
        with _torch_threads(args.threads):
            done = worker.run(args.trials, args.timeout)
        _say(f"evaluated {done} trial{'s' * (done != 1)} in {time.perf_counter() - start:.0f} s")
    rows = search.trial_rows(study)
    counted = search.counts(rows)
    _say("trials: " + ", ".join(f"{count} {state}" for state, count in counted.items() if count))
    if args.format == "json":
        import json

        report = {
            "study": name, "storage": storage_place, "objectives": list(objectives.names), "counts": counted,
            "trials": [row.as_dict() for row in rows],
        }  # fmt: skip
        print(json.dumps(report, indent=2))
    else:
        print(search.format_table(rows, args.seeds, markdown=args.format == "md"))
    if args.plot:
        from archspec.plot import plot_search

        _say(f"wrote {plot_search(rows, args.plot, force=args.force)}")
    if args.export_best:
        for path in search.export_best(rows, space, args.export_best, name, force=args.force):
            _say(f"wrote {path}")
    return EXIT_OK


def _trial_line(trial: Any) -> str:
    """One line on stderr per finished trial."""
    attrs = trial.user_attrs
    settings = " ".join(attrs.get("settings", [])) or "(the base)"
    if trial.state.name == "COMPLETE":
        figures = [f"{attrs['params']:,} params", f"{attrs['gflops']:.4f} GFLOPs"]
        if attrs.get("accuracies"):
            figures.insert(0, f"accuracy {100 * sum(attrs['accuracies']) / len(attrs['accuracies']):.1f}%")
        return f"trial {trial.number}: {', '.join(figures)}: {settings}"
    state = trial.state.name
    if state == "PRUNED":
        state = "PRUNED by the plan" if attrs.get("pruned_by") == "plan" else "PRUNED in training"
    return f"trial {trial.number}: {state} ({attrs.get('reason', '')}): {settings}"


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the built model: warm-up, then torch.utils.benchmark.Timer measurements per batch size.

    After one timed step, the Timer times blocks of back-to-back steps (one step each for steps over
    about 10 ms) for --repeats times that step's length, and at least 0.2 s. Reports median, min and
    max time per step over the measurements, images/s, achieved GFLOP/s and the efficiency against a
    1024×1024 matmul measured in the same process, plus peak memory. --precision bf16-mixed and
    fp16-mixed run the float32 model under torch.autocast. --warmup-runs untimed runs come first.
    --train times forward + backward + an SGD step, and --grad-checkpointing makes it recompute each
    block's activations in the backward pass (less memory, more time). Freed memory is kept for reuse
    (archspec.accel.retain_freed_memory) unless --system-malloc is given.

    Example: archspec bench specs/spectformer-h-s.yaml --batch 1,8 --threads 2
    """
    if args.grad_checkpointing and not args.train:
        raise UsageError("--grad-checkpointing recomputes activations in the backward pass: it needs --train")
    overrides = _overrides(args)
    _, plan = _load_and_plan(args.spec, overrides)
    torch = _import_torch()
    _device(torch, args.device, timed=True)
    batches = args.batch
    dtype = opt.AUTOCAST_DTYPE[args.precision]
    _within_budget(args, plan, dtype, max(batches) * (3 if args.train else 1))
    from archspec import bench
    from archspec.runtime import bfloat16_warning, machine_description

    if dtype == "bfloat16" and (warning := bfloat16_warning(args.device)):
        _say(f"warning: {warning}")
    results = []
    label = _label(args.spec, overrides)
    modes = (False, True) if args.compile == "both" else (args.compile == "yes",)
    runs = [(batch, compiled) for batch in batches for compiled in modes]
    with _progress(len(runs)) as bar:
        for batch, compiled in runs:
            flags = (("compiled", compiled), ("train", args.train), ("checkpointed", args.grad_checkpointing))
            extras = [name for name, on in flags if on]
            what = f"{plan.name} at batch {batch}" + "".join(f", {extra}" for extra in extras)
            bar.set_postfix_str(for_terminal(what))
            _say(f"timing {what}", VERBOSE)
            results.append(
                bench.run(plan, label, batch, args.device, retain_memory=not args.system_malloc,
                          dtype=dtype, threads=args.threads, compile=compiled, train=args.train,
                          grad_checkpointing=args.grad_checkpointing, warmup=args.warmup_runs, repeats=args.repeats)
            )  # fmt: skip
            bar.update()
    if args.format == "json":
        import json

        print(json.dumps(bench.as_dicts(results), indent=2))
    else:
        print(bench.table(results, markdown=args.format == "md"))
        print(f"\nmachine: {machine_description(args.device, args.threads)}")
        for r in results:
            if r.compile_s is not None:
                print(f"compile: {r.compile_s:.1f} s at batch {r.batch} (the first call, not timed)")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Export the built model to ONNX or a torch.export program (.pt2), with a dynamic batch size.

    The input is named image; a classifier's output logits, a backbone's after its maps (stage1, ...).
    --dynamic hw makes the height and width dynamic too: multiples of the model's total stride. The
    exported model is checked against the eager one at batch 1 and 3 (and, with --dynamic hw, at
    another size) to 1e-4 unless --no-verify is given. ONNX needs onnx, onnxscript and onnxruntime:
    pip install onnx onnxscript onnxruntime, or pip install -e '.[export]' in a checkout.

    Example: archspec export specs/spectformer-h-s.yaml --format onnx -o spectformer-h-s.onnx
    """
    output = Path(args.output or f"{Path(args.spec).stem}.{args.format}")
    check_paths({"--output": output}, {"SPEC": _spec_path(args.spec), "--weights": args.weights}, args.force)
    _, plan = _load_and_plan(args.spec, _overrides(args))
    _check_weights_file(args.weights)
    _import_torch()
    from archspec.builder import build
    from archspec.export import describe_checks, export

    # the check runs batch 3
    _within_budget(args, plan, batch=3, remedy="export on a machine with more memory, or pass --no-budget")
    model = build(plan, seed=args.seed)
    if args.weights:
        from archspec.checkpoint import load_file

        load_file(model, args.weights, plan=plan, allow_nonfinite=args.allow_nonfinite)
    if plan.spec.features is not None:  # a backbone exports its feature maps
        from archspec.models import backbone

        model = backbone(model, plan, plan.spec.features.out_indices)
    with _progress(1) as bar:
        bar.set_postfix_str(for_terminal(f"exporting {plan.name} to {args.format}"))
        difference = export(
            model, plan, output, args.format, verify=not args.no_verify, force=args.force, dynamic=args.dynamic
        )
        bar.update()
    where = describe_checks(plan, args.dynamic)
    checked = "" if args.no_verify else f"; largest difference from eager at {where}: {difference:.2g}"
    _say(f"wrote {output}{checked}")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    """Write the JSON Schema (draft 2020-12) of the spec format, plugin components included.

    Point your editor at it (yaml-language-server) to get completion and checks while writing specs.
    --kind space writes the schema of archspec search's space files instead.

    Example: archspec schema -o specs/archspec.schema.json --force
    """
    if args.output not in (None, "-"):
        check_destination(args.output, args.force)
    if args.kind == "space":
        import json

        from archspec.search_space import space_schema

        text = json.dumps(space_schema(), indent=2) + "\n"
    else:
        from archspec.schema import schema_text

        text = schema_text()
    if args.output in (None, "-"):
        sys.stdout.write(text)
        return EXIT_OK
    from archspec.output import write_text_atomic

    _say(f"wrote {write_text_atomic(args.output, text, force=args.force)}")
    return EXIT_OK


def cmd_components(args: argparse.Namespace) -> int:
    """List the registered components (built in and from installed plugins) and where each comes from.

    Example: archspec components
    """
    from archspec import registry
    from archspec.tables import plain_table

    rows = [(cls.kind, cls.type_name(), registry.origin(cls)) for cls in registry.components()]
    print(plain_table(("kind", "type", "from"), rows))
    for error in registry.plugin_errors:
        _say(f"warning: {error}")
    return EXIT_OK


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` and what ``--input`` or ``--size`` stand for, in that order."""
    return [*args.set, *opt.input_overrides(args)]


def _precision(args: argparse.Namespace) -> str:
    """``--precision``; for the old ``--amp``, what it chose: bfloat16, or float16 on a GPU without bfloat16."""
    old_amp = any(warning.startswith("--amp ") for warning in opt.deprecations(args))
    if old_amp and args.device.startswith("cuda"):
        torch = _import_torch()
        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return "fp16-mixed"
    return str(args.precision)


def _training_precision(args: argparse.Namespace, resume: str | None = None) -> str:
    """The precision fit, sweep --fit and search train in, said when it was chosen for the device.

    ``--precision auto`` (the default) is what :func:`archspec.fit.resolve_precision` picks: the
    resumed run's precision, or bf16-mixed where the device has native bfloat16, fp32 elsewhere.
    An explicit bf16-mixed on a CPU without native bfloat16 is warned about.
    """
    from archspec.fit import AUTO, resolve_precision
    from archspec.runtime import bfloat16_warning

    asked = _precision(args)
    precision = resolve_precision(asked, args.device, resume)
    if asked == AUTO and precision != "fp32":
        why = "the run being resumed trained in it" if resume else f"{args.device} computes bfloat16 natively"
        _say(f"precision: {precision} ({why}; --precision fp32 trains in float32)")
    elif precision == "bf16-mixed" and (warning := bfloat16_warning(args.device)):
        _say(f"warning: {warning}")
    return precision


def _fit_size(args: argparse.Namespace, catalog: Any) -> tuple[int, int] | None:
    """The size ``--input`` or ``--size`` asks the images to be fitted to; ``--input``'s channels must be the data's."""
    if args.input is None:
        return args.size  # type: ignore[no-any-return]
    channels, height, width = args.input
    if channels != catalog.channels:
        raise UsageError(
            f"--input {channels}x{height}x{width}: the images have {catalog.channels} channel"
            f"{'s' * (catalog.channels != 1)}; give --size {height}x{width} to keep them"
        )
    return height, width


FORCE_LIFTED_BUDGET = {"build", "fit", "sweep"}
"""The commands whose ``--force`` also lifted the memory budget before ``--no-budget`` took that over."""


def _force_lifts_budget(args: argparse.Namespace) -> bool:
    """``--force`` lifting the memory budget, as it did before ``--no-budget``: for one more release, with a warning."""
    if args.command not in FORCE_LIFTED_BUDGET or not args.force or args.no_budget:
        return False
    _say(
        "warning: --force lifts the memory budget only until the next release, when it will just overwrite "
        "files: use --no-budget"
    )
    return True


def _within_budget(
    args: argparse.Namespace,
    plan: Plan,
    dtype: str = "float32",
    batch: int = 1,
    max_params: int | None = None,
    **kwargs: Any,
) -> None:
    """:func:`archspec.budget.check_budget`, unless ``--no-budget`` (or, for now, ``--force``) lifts it."""
    if args.no_budget:
        return
    from archspec.budget import BudgetError, check_budget

    try:
        check_budget(plan, dtype, batch, max_params, **kwargs)
    except BudgetError:
        if not _force_lifts_budget(args):
            raise


def _retain_freed_memory() -> None:
    """Commands that run models on the CPU keep freed memory in their own process (see archspec.accel)."""
    from archspec.accel import retain_freed_memory

    retain_freed_memory()


def _spec_path(spec: str) -> Path:
    """The file a SPEC argument reads (a shipped name becomes its file), for the checks of outputs against inputs."""
    from archspec.compose import shipped_path

    return shipped_path(spec)


def _data_path(data: str | None) -> str | None:
    """The file or folder ``--data`` reads; None for the bundled digits."""
    return None if data in (None, "digits", "builtin:digits") else data


def _check_weights_file(path: str | None) -> None:
    """A checkpoint that does not exist or would not fit in memory is refused before torch is imported."""
    if path:
        from archspec.weights_file import check_file

        check_file(path)


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise UsageError("this command needs PyTorch: pip install torch==2.13.0") from None
    _resume_gc()
    return torch


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """torch's CPU thread count set to ``count`` for the block; ``None`` leaves it (and torch's import) alone."""
    if count is None:
        yield
        return
    torch = _import_torch()
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_gc_paused = False
"""Whether :func:`run` has paused the cyclic garbage collector (it stays paused for torch-free commands)."""


def _resume_gc() -> None:
    """Turn the collector back on before work on tensors, with everything imported so far frozen out of its reach."""
    global _gc_paused
    if _gc_paused:
        gc.freeze()
        gc.enable()
        _gc_paused = False


def _device(torch: Any, name: str, timed: bool = False) -> Any:
    """The torch device ``name``; ``timed``: one that runs kernels, so its timings mean something."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UsageError(f"unknown device {name!r} (try cpu, cuda, cuda:1 or meta)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda was asked for but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda", "meta"):
        try:
            torch.empty(0, device=device)
        except Exception:  # torch raises RuntimeError or its own types for a backend it lacks
            raise UsageError(
                f"--device {name}: this machine or torch build has no {device.type} backend (try cpu, cuda or meta)"
            ) from None
    if timed and device.type == "meta":
        raise UsageError("--device meta runs no kernels, so there is nothing to time; use cpu or cuda")
    return device


def _report(exc: ArchspecError) -> None:
    """Every problem on its own line with its code, then one hint per code."""
    if isinstance(exc, SpecError):
        codes = [problem.code for problem in exc.problems]
        for problem, line in zip(exc.problems, exc.lines(), strict=True):
            _error(f"{line} [{problem.code}]")
    else:
        codes = [exc.code]
        # A spec file error starts with file:line:col, which editors and terminals turn into links.
        _error(f"{exc} [{exc.code}]" if isinstance(exc, SpecFileError) else f"error: {exc} [{exc.code}]")
    for code in dict.fromkeys(codes):
        kind = CATALOGUE.get(code)
        if kind is not None:
            _say(f"hint ({code}, {kind.title}): {kind.hint}")


def _add_training(p: argparse.ArgumentParser) -> None:
    """The data and training options ``fit`` and ``search`` share."""
    p.add_argument("--data", default="digits", metavar="digits|DIR|FILE.npz",
                   help="the labelled images (default: digits, bundled with scikit-learn)")  # fmt: skip
    opt.add_input(p)
    p.add_argument("--val-fraction", type=opt.float_between(0, 1, low_included=False), default=0.2,
                   help="share of each class kept for validation (default: 0.2)")  # fmt: skip
    p.add_argument("--resize", choices=("crop", "pad", "stretch"), default="crop",
                   help="fit each image to the size: crop its centre, pad or stretch it (default: crop)")  # fmt: skip
    p.add_argument("--augment", action="store_true", help="random-resized crops and horizontal flips while training")
    p.add_argument("--epochs", type=opt.count(1, 100_000), default=5,
                   help="passes over the training images (default: 5)")  # fmt: skip
    p.add_argument("--batch", type=opt.count(1, 2**20), default=64, help="images per step and process (default: 64)")
    p.add_argument("--lr", type=opt.float_between(0, low_included=False), default=1e-3,
                   help="peak AdamW learning rate (default: 1e-3)")  # fmt: skip
    p.add_argument("--wd", type=opt.float_between(0), default=0.05,
                   help="AdamW weight decay; --lr × --wd must stay below 1 (default: 0.05)")  # fmt: skip
    p.add_argument("--warmup-epochs", type=opt.float_between(0), default=1.0,
                   help="epochs of linear learning-rate warm-up, at most --epochs (default: 1)")  # fmt: skip
    p.add_argument("--label-smoothing", type=opt.float_between(0, 1), default=0.0, help="label smoothing (default: 0)")
    p.add_argument("--threads", type=opt.threads, help=THREADS_HELP)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    opt.add_precision(p, FIT_PRECISIONS, "how it trains", default="auto")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archspec",
        description="Describe a vision backbone in YAML; check, summarise, draw, compare and build it.",
        epilog="Exit codes: 0 ok, 1 invalid spec or failed check, 2 usage error.",
    )
    from archspec import __version__

    parser.add_argument("--version", action="version", version=f"archspec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    output = argparse.ArgumentParser(add_help=False)
    volume = output.add_mutually_exclusive_group()
    volume.add_argument("-q", "--quiet", action="store_true", help="only data on stdout and errors on stderr")
    volume.add_argument("-v", "--verbose", action="store_true", help="also report timings and fingerprints")
    overrides = argparse.ArgumentParser(add_help=False)
    overrides.add_argument(
        "--set", action="append", default=[], metavar="KEY.PATH=VALUE",
        help="override a spec value (YAML-typed, list indices allowed), e.g. --set stages.2.depth=8; repeatable",
    )  # fmt: skip

    def command(name: str, func: Callable[[argparse.Namespace], int], spec: bool = True) -> argparse.ArgumentParser:
        doc = (func.__doc__ or "").strip()
        p = sub.add_parser(
            name, help=doc.splitlines()[0], description=doc, parents=[output, overrides] if spec else [output],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        p.set_defaults(func=func)
        return p

    p = command("validate", cmd_validate)
    p.add_argument("specs", nargs="+", metavar="SPEC", help=f"the specs to check: each {SPEC_HELP}")

    p = command("summary", cmd_summary)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    opt.add_input(p)
    opt.add_format(p, ("table", "md", "json"))

    p = command("list", cmd_list, spec=False)
    opt.add_format(p, ("table", "md", "json"))

    p = command("show", cmd_show)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)

    p = command("build", cmd_build)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    opt.add_input(p)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or meta (default: cpu)")
    opt.add_precision(p, ("fp32", "fp64", "bf16", "fp16"), "the parameters' type")
    p.add_argument("--dtype", action=opt.Renamed, replacement="--precision", values=BUILD_DTYPES, dest="precision")
    p.add_argument("--seed", type=opt.seed, default=0, help="RNG seed for the initial weights (default: 0)")
    p.add_argument("--batch", type=opt.positive_int, default=1,
                   help="batch size of the check forward pass (default: 1)")  # fmt: skip
    p.add_argument("--weights", "--pretrained", metavar="PATH", help=WEIGHTS_HELP)
    p.add_argument("--init-from", metavar="PATH", help=INIT_FROM_HELP)
    p.add_argument("--allow-nonfinite", action="store_true", help=NONFINITE_HELP)
    p.add_argument("--save", metavar="PATH", help="write the weights, spec and fingerprints to PATH")
    p.add_argument("--max-params", type=opt.positive_int, metavar="N",
                   help="refuse plans with more parameters (instead of the memory-based budget)")  # fmt: skip
    opt.add_force(p)
    opt.add_no_budget(p)
    p.add_argument("--check-grad", action="store_true",
                   help="also run a backward pass and report parameters that get no gradient")  # fmt: skip
    p.add_argument("--no-tree", action="store_true", help="print only the summary table, not the module tree")

    p = command("convert", cmd_convert)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    p.add_argument("weights", metavar="WEIGHTS", help="the reference's state_dict (torch.save or .safetensors)")
    opt.add_input(p)
    p.add_argument("-o", "--output", required=True, help="the archspec checkpoint to write")
    p.add_argument("--layout", help="the checkpoint layout (default: detected), e.g. timm-resnet")
    p.add_argument("--allow-nonfinite", action="store_true", help=NONFINITE_HELP)
    opt.add_force(p)
    opt.add_no_budget(p)

    p = command("render", cmd_render)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    opt.add_input(p)
    p.add_argument("-o", "--output", default="-", help="output file (.svg .png .pdf .dot .json .graphml) or - for DOT")
    p.add_argument("--depth", type=opt.count(0, 3), choices=(0, 1, 2, 3), default=1,
                   help="0 stages, 1 blocks, 2 inside blocks, 3 leaf layers (default: 1)")  # fmt: skip
    opt.add_force(p)

    p = command("diff", cmd_diff)
    p.add_argument("a", metavar="A", help=f"the reference spec: {SPEC_HELP}")
    p.add_argument("b", metavar="B", help=f"the spec compared with it: {SPEC_HELP}")
    p.add_argument("--set-a", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a value of A")
    opt.add_format(p, ("table", "md", "json"), renamed={"text": "table"})

    p = command("sweep", cmd_sweep)
    p.add_argument("specs", nargs="+", metavar="SPEC", help=f"the specs to sweep: each {SPEC_HELP}")
    p.add_argument("--grid", action="append", default=[], metavar="KEY.PATH=V1,V2",
                   help="values to sweep for one key; repeat for a cartesian product")  # fmt: skip
    opt.add_input(p)
    p.add_argument("--measure", action="store_true", help="build every valid variant and time its forward pass")
    p.add_argument("--batch", type=opt.positive_int, default=1, help="batch size for --measure (default: 1)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    p.add_argument("--repeats", type=opt.positive_int, default=3, help="time for about N runs (default: 3)")
    p.add_argument("--fit", metavar="digits|DIR|FILE.npz", help="train every valid variant on these images")
    p.add_argument("--epochs", type=opt.count(1, 100_000), default=5, help="epochs per --fit run (default: 5)")
    p.add_argument("--seeds", type=opt.positive_int, default=1,
                   help="--fit runs per variant, seeds 0..K-1 (default: 1)")  # fmt: skip
    opt.add_precision(p, FIT_PRECISIONS, "how --fit trains", default="auto")
    p.add_argument("--amp", action=opt.Renamed, replacement="--precision", constant="bf16-mixed", dest="precision")
    p.add_argument("--threads", type=opt.threads, help=THREADS_HELP)
    p.add_argument("--plot", metavar="FILE.png",
                   help="with --fit: draw accuracy against GFLOPs and params (.png .svg .pdf)")  # fmt: skip
    opt.add_force(p)
    opt.add_no_budget(p)
    opt.add_format(p, ("table", "md", "csv", "json"))

    p = command("fit", cmd_fit)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    _add_training(p)
    p.add_argument("--loader", choices=("auto", "memory", "stream"), default="auto",
                   help="hold the images in memory or stream them from disk (default: auto, by budget)")  # fmt: skip
    p.add_argument("--workers", type=opt.count(0, 64), metavar="N",
                   help="worker processes decoding streamed images (default: one per core, at most 8)")  # fmt: skip
    p.add_argument("--warmup", action=opt.Renamed, replacement="--warmup-epochs", dest="warmup_epochs",
                   type=opt.float_between(0))  # fmt: skip
    p.add_argument("--seed", type=opt.seed, default=0,
                   help="seed for the weights, image order and drop-path (default: 0)")  # fmt: skip
    p.add_argument("--amp", action=opt.Renamed, replacement="--precision", constant="bf16-mixed", dest="precision")
    p.add_argument("--save", metavar="PATH", help="write a checkpoint after each epoch (weights, spec, training state)")
    p.add_argument("--resume", metavar="PATH", help="continue the run a --save checkpoint holds, exactly")
    p.add_argument("--weights", "--pretrained", metavar="PATH",
                   help="start from these weights, loaded strictly but for a classifier of another shape")  # fmt: skip
    p.add_argument("--init-from", metavar="PATH", help=INIT_FROM_HELP)
    p.add_argument("--log", metavar="FILE.jsonl", help="write one JSON line of metrics per epoch")
    opt.add_force(p)
    opt.add_no_budget(p)
    opt.add_format(p, ("table", "md", "json"))

    p = command("search", cmd_search)
    p.add_argument("spec", metavar="SPEC", nargs="?",
                   help=f"the base spec, instead of the space file's spec: {SPEC_HELP}")  # fmt: skip
    p.add_argument("--space", required=True, metavar="SPACE.yaml",
                   help="the space file (base spec, searched keys, limits), or a shipped space's name")  # fmt: skip
    _add_training(p)
    p.add_argument("--trials", type=opt.count(0, 1_000_000), default=20,
                   help="trials this worker trains or measures; the plan's refusals do not count; 0 only reports "
                   "(default: 20)")  # fmt: skip
    p.add_argument("--timeout", type=opt.float_between(0, low_included=False), metavar="S",
                   help="stop starting trials after S seconds")  # fmt: skip
    p.add_argument("--seeds", type=opt.positive_int, default=1,
                   help="training runs per trial, seeds 0..K-1; accuracy is their mean (default: 1)")  # fmt: skip
    p.add_argument("--objectives", metavar="NAME,...",
                   help="what to optimise: accuracy (maximised), gflops, params, latency, memory (minimised) "
                   "(default: a stored study's, else accuracy,gflops)")  # fmt: skip
    p.add_argument("--storage", metavar="URL|FILE",
                   help="the study's storage: an SQLAlchemy URL (sqlite:///x.db, postgresql+psycopg://...), a "
                   ".journal file, or an SQLite file (default: search.db beside the space file)")  # fmt: skip
    p.add_argument("--study", metavar="NAME", help="the study's name in the storage (default: the space file's name)")
    p.add_argument("--sampler", choices=SAMPLERS,
                   help="tpe, nsga2 or random (default: tpe for one objective, nsga2 for more)")  # fmt: skip
    p.add_argument("--pruner", choices=PRUNERS, default="median",
                   help="with one objective: stop trials behind after an epoch (default: median)")  # fmt: skip
    p.add_argument("--seed", type=opt.seed,
                   help="seed for the sampler, so a fresh study proposes the same first trials; give each "
                   "worker its own (default: none)")  # fmt: skip
    p.add_argument("--plot", metavar="FILE.png", help="draw accuracy against GFLOPs, the Pareto front marked")
    p.add_argument("--export-best", metavar="DIR", help="write each Pareto trial as a child spec of the base into DIR")
    opt.add_force(p)
    opt.add_no_budget(p)
    opt.add_format(p, ("table", "md", "json"))

    p = command("bench", cmd_bench)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    opt.add_input(p)
    p.add_argument("--batch", type=opt.batch_sizes, default=[1, 8], help="comma-separated batch sizes (default: 1,8)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    opt.add_precision(p, ("fp32", "bf16-mixed", "fp16-mixed"), "how the model computes")
    p.add_argument("--dtype", action=opt.Renamed, replacement="--precision", values=BENCH_DTYPES, dest="precision")
    p.add_argument("--threads", type=opt.threads, help=THREADS_HELP)
    p.add_argument("--compile", choices=("no", "yes", "both"), default="no",
                   help="time eager, torch.compile'd, or both (default: no)")  # fmt: skip
    p.add_argument("--train", action="store_true", help="time forward + backward + optimizer step")
    p.add_argument("--grad-checkpointing", action="store_true",
                   help="with --train: recompute each block's activations in the backward pass")  # fmt: skip
    p.add_argument("--warmup-runs", type=opt.positive_int, default=3, help="untimed runs first (default: 3)")
    p.add_argument("--warmup", action=opt.Renamed, replacement="--warmup-runs", dest="warmup_runs",
                   type=opt.positive_int)  # fmt: skip
    p.add_argument("--repeats", type=opt.positive_int, default=10, help="time for about N runs (default: 10)")
    p.add_argument("--system-malloc", action="store_true",
                   help="leave the C library's allocator settings alone instead of keeping freed memory")  # fmt: skip
    opt.add_no_budget(p)
    p.add_argument("--force", action=opt.Renamed, replacement="--no-budget", constant=True, dest="no_budget")
    opt.add_format(p, ("table", "md", "json"))

    p = command("export", cmd_export)
    p.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    opt.add_input(p)
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx", help="file type to write (default: onnx)")
    p.add_argument("-o", "--output", help="output file (default: the spec's name with the format's suffix)")
    p.add_argument("--weights", "--pretrained", metavar="PATH", help="load these weights before exporting")
    p.add_argument("--allow-nonfinite", action="store_true", help=NONFINITE_HELP)
    p.add_argument("--seed", type=opt.seed, default=0, help="RNG seed for the initial weights (default: 0)")
    p.add_argument("--dynamic", choices=("batch", "hw"), default="batch",
                   help="dynamic sizes: the batch, or the batch, height and width (default: batch)")  # fmt: skip
    p.add_argument("--no-verify", action="store_true", help="skip the check against the eager model")
    opt.add_force(p)
    opt.add_no_budget(p)

    p = command("schema", cmd_schema, spec=False)
    p.add_argument("-o", "--output", help="write to this file instead of stdout")
    p.add_argument("--kind", choices=("spec", "space"), default="spec",
                   help="the schema of specs, or of search's space files (default: spec)")  # fmt: skip
    opt.add_force(p)

    command("components", cmd_components, spec=False)
    return parser


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM becomes an exception, so files being written are cleaned up as on Ctrl-C.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status. See :func:`run` for the console entry point.

    ``build``, ``fit``, ``search`` and ``sweep --measure``/``--fit`` on the CPU, and ``bench`` unless
    ``--system-malloc`` is given, keep freed memory in the calling process for good (see
    :func:`archspec.accel.retain_freed_memory`; ``ARCHSPEC_ACCEL=0`` turns that off with the kernels).
    """
    from archspec.compose import OverrideError

    global _verbosity
    args = _parser().parse_args(argv)
    _verbosity = QUIET if args.quiet else VERBOSE if args.verbose else NORMAL
    for warning in opt.deprecations(args):
        _say(f"warning: {warning}")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        status: int = args.func(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # data that cannot arrive is this command's error, not a complaint at exit
    except (UsageError, OverrideError, OutputExistsError) as exc:
        _report(exc)
        return EXIT_USAGE
    except ArchspecError as exc:
        _report(exc)
        return EXIT_INVALID
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    return status


def run() -> None:
    """The ``archspec`` command: :func:`main` in a process tuned for a short life.

    Loading torch and pydantic creates hundreds of thousands of objects and almost no garbage
    cycles, so the collector's passes over them are wasted work: about a fifth of ``archspec
    validate`` and a quarter of ``import torch``. The collector is therefore paused from start-up
    and resumed by :func:`_import_torch` before any work on tensors. At exit everything is frozen,
    so that interpreter teardown does not scan it all again (up to a second for commands that
    loaded torch's compiler stack).

    stdout is guarded, so that output which cannot arrive (``> /dev/full``) is reported as an error
    (AS603) rather than as a traceback at exit.
    """
    global _gc_paused
    gc.disable()
    _gc_paused = True
    guard_stdout()
    try:
        status = main()
    except BrokenPipeError:
        # The reader went away (``archspec schema | head``): stop quietly, as a killed pipeline would,
        # and point stdout at /dev/null so the final flush at exit cannot complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 128 + signal.SIGPIPE
    finally:
        _resume_gc()
        gc.freeze()  # exit is next: spare teardown a scan of everything allocated since
    sys.exit(status)


if __name__ == "__main__":
    run()
