"""Sweeps: plan (and optionally build and time, or train) every combination of a few overrides.

Each spec given is crossed with every combination. Without ``measure`` or ``fit`` nothing imports
torch. Invalid combinations become rows that carry their error instead of stopping the sweep, and a
variant whose training diverges is a row with that status.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.budget import activation_bytes
from archspec.compose import MAX_OVERRIDES, Override, OverrideError, check_setting, parse_override, shown_option
from archspec.errors import ArchspecError, SpecError
from archspec.nodes import Plan
from archspec.plan import PlanCache
from archspec.tables import markdown_table, text_table

if TYPE_CHECKING:
    from archspec.data import Catalog, Images, Split
    from archspec.fit import FitConfig
    from archspec.spec import SpecFile

MAX_COMBINATIONS = 10_000
"""Upper bound on the variants one sweep plans, counted before any is made."""


@dataclass
class Row:
    overrides: list[str]
    status: str
    params: int | None = None
    flops: int | None = None
    activations: int | None = None
    latency_ms: float | None = None
    spec: str = ""
    adapted: list[str] = field(default_factory=list)
    """The overrides that fitted the variant to the training data (``fit`` only)."""
    val_acc: list[float] = field(default_factory=list)
    """Final validation accuracy of each seed's run (``fit`` only)."""
    fit_s: list[float] = field(default_factory=list)
    """Wall time of each seed's run, in seconds (``fit`` only)."""
    precision: str = ""
    """The precision the runs trained in (``fit`` only; see :func:`archspec.fit.resolve_precision`)."""

    @property
    def acc_mean(self) -> float | None:
        return sum(self.val_acc) / len(self.val_acc) if self.val_acc else None

    @property
    def acc_std(self) -> float | None:
        """The sample standard deviation over seeds (0 for one seed)."""
        mean = self.acc_mean
        if mean is None:
            return None
        count = len(self.val_acc)
        return math.sqrt(sum((a - mean) ** 2 for a in self.val_acc) / (count - 1)) if count > 1 else 0.0


@dataclass(frozen=True)
class FitSweep:
    """What ``sweep --fit`` trains every valid variant on (and ``search`` every trial), and how: each
    seed in ``range(seeds)`` once."""

    images: Catalog | Images
    split: Split
    config: FitConfig
    seeds: int = 1
    size: tuple[int, int] | None = None
    device: str = "cpu"
    force: bool = False
    """Train every variant, even those over the memory budget."""

    def check_budget(self, planned: Plan, remedy: str) -> None:
        """Refuse ``planned`` (:class:`archspec.budget.BudgetError`) where its model, a training batch and
        the images held in memory exceed the memory budget, as ``archspec fit`` would; never with ``force``."""
        if self.force:
            return
        from archspec.budget import check_budget
        from archspec.feed import choose
        from archspec.fit import catalog_of

        batch = min(self.config.batch, len(self.split.train))
        choice = choose(catalog_of(self.images), (planned.input.dims[1], planned.input.dims[2]), planned, batch)
        check_budget(planned, "float32", batch, data_bytes=choice.data_bytes, training=True, remedy=remedy)


def split_values(text: str) -> list[str]:
    """Split ``v1,v2`` on commas outside brackets, so ``[256, 320],224`` gives two values (in one pass)."""
    values, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            values.append(text[start:index])
            start = index + 1
    values.append(text[start:])
    return [v.strip() for v in values]


def combinations(grids: Sequence[str]) -> list[list[str]]:
    """``["a=1,2", "b=x,y"]`` → every combination as override strings, first grid varying slowest.

    Each ``--grid`` is bounded like a ``--set`` (:func:`archspec.compose.check_setting`) before its
    values are split, and there may be at most :data:`~archspec.compose.MAX_OVERRIDES` of them.
    """
    if len(grids) > MAX_OVERRIDES:
        raise OverrideError(f"--grid: {len(grids):,} options; a spec takes at most {MAX_OVERRIDES:,} overrides")
    axes = []
    for grid in grids:
        key, sep, values = grid.partition("=")
        if not sep or not key or not values:
            raise ArchspecError(f"{shown_option('--grid', grid)}: expected KEY.PATH=V1,V2,...")
        check_setting("--grid", grid, key, values)
        axes.append([f"{key}={value}" for value in split_values(values)])
    count = math.prod(len(axis) for axis in axes)
    if count > MAX_COMBINATIONS:
        sizes = " × ".join(str(len(axis)) for axis in axes)
        raise ArchspecError(
            f"--grid: {sizes} = {count:,} combinations; a sweep plans at most {MAX_COMBINATIONS:,} (split it up)"
        )
    return [list(combo) for combo in itertools.product(*axes)]


def measure_latency(plan: Plan, batch: int, device: str, repeats: int) -> float:
    """Median forward latency in ms, measured by :func:`archspec.bench.measure`."""
    import torch

    from archspec.bench import measure
    from archspec.models import build_declared

    model = build_declared(plan, device=device).eval()
    x = torch.randn(batch, *plan.input.dims, device=device)
    with torch.inference_mode():
        return measure(lambda: model(x), torch.device(device), repeats).median * 1e3


def _fit_variant(row: Row, planned: Plan, fitting: FitSweep) -> None:
    """Train ``planned`` once per seed and record each run's final validation accuracy and wall time.

    A variant whose model, training batch and images in memory exceed the memory budget is not
    trained (unless ``fitting.force``): its row says why, as ``archspec fit`` would refuse it.
    """
    from dataclasses import replace

    from archspec.budget import BudgetError
    from archspec.fit import FitError, fit

    try:
        fitting.check_budget(planned, remedy="pass --no-budget")
    except BudgetError as exc:
        row.status = f"not trained: {exc}"
        return
    for seed in range(fitting.seeds):
        try:
            result = fit(planned, fitting.images, fitting.split, replace(fitting.config, seed=seed), fitting.device)
        except FitError as exc:
            row.status = f"diverged with seed {seed}: {exc}"
            return
        except (RuntimeError, MemoryError) as exc:
            row.status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            return
        row.val_acc.append(result.final.val_acc)
        row.fit_s.append(result.wall_s)
        row.precision = result.precision


def _read(path: str | Path, files: dict[str | Path, SpecFile | ArchspecError]) -> SpecFile:
    """Each spec file is read once per sweep (a file that cannot be read fails each of its variants alike)."""
    from archspec.spec import SpecFile

    if path not in files:
        try:
            files[path] = SpecFile(path)
        except ArchspecError as exc:
            files[path] = exc
    found = files[path]
    if isinstance(found, ArchspecError):
        raise found
    return found


def _parsed(text: str, parsed: dict[str, Override]) -> Override:
    if text not in parsed:
        parsed[text] = parse_override(text)
    return parsed[text]


def run_sweep(
    spec_path: str | Path | Sequence[str | Path],
    grids: Sequence[str],
    base_overrides: Sequence[str] = (),
    measure: bool = False,
    batch: int = 1,
    device: str = "cpu",
    repeats: int = 3,
    progress: Callable[[int, int, str], None] | None = None,
    fit: FitSweep | None = None,
) -> list[Row]:
    """Evaluate every combination of ``grids`` on top of ``base_overrides``, for each spec given.

    With ``fit``, every valid variant is first fitted to the training data (see
    :func:`archspec.fit.adapt`; its params and FLOPs are then those of the fitted variant) and
    trained once per seed.
    """
    from archspec import plan

    paths = [spec_path] if isinstance(spec_path, str | Path) else list(spec_path)
    many = len(paths) > 1
    rows = []
    combos = combinations(grids)
    variants = [(path, combo) for path in paths for combo in combos]
    parsed: dict[str, Override] = {}  # each setting is parsed once, however many variants it is in
    files: dict[str | Path, SpecFile | ArchspecError] = {}
    cache = PlanCache()  # variants share most of their blocks: each distinct one is planned once
    for index, (path, combo) in enumerate(variants):
        spec = str(path) if many else ""
        if progress is not None:
            progress(index, len(variants), " ".join([Path(path).stem, *combo]) if many else " ".join(combo))
        adapted: list[str] = []
        try:
            source = _read(path, files)
            settings = [_parsed(text, parsed) for text in [*base_overrides, *combo]]
            planned = plan(source.load(settings), cache)
            if fit is not None:
                from archspec.fit import adapt

                adapted = adapt(planned, fit.images, fit.size)
                planned = plan(source.load([*base_overrides, *combo, *adapted]), cache)
        except SpecError as exc:
            rows.append(Row(combo, "invalid: " + "; ".join(exc.lines()), spec=spec, adapted=adapted))
            continue
        except ArchspecError as exc:
            rows.append(Row(combo, f"invalid: {exc}", spec=spec, adapted=adapted))
            continue
        row = Row(combo, "ok", planned.params, planned.flops, activation_bytes(planned), spec=spec, adapted=adapted)
        if fit is not None:
            _fit_variant(row, planned, fit)
        if measure and row.status == "ok":
            from archspec.budget import BudgetError, check_budget

            try:
                check_budget(planned, "float32", batch, remedy="measure it with archspec bench --no-budget")
                row.latency_ms = measure_latency(planned, batch, device, repeats)
            except BudgetError as exc:
                row.status = f"not measured: {exc}"
            except (RuntimeError, MemoryError) as exc:
                row.status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        rows.append(row)
    if progress is not None:
        progress(len(variants), len(variants), "")
    return rows


def spec_names(rows: Sequence[Row]) -> list[str]:
    """Each row's spec as people read it: the file's stem, or the path as given where two stems are equal."""
    stems = {Path(row.spec).stem for row in rows if row.spec}
    paths = {row.spec for row in rows if row.spec}
    unique = len(stems) == len(paths)
    return [Path(row.spec).stem if unique else row.spec for row in rows]


def variant_labels(rows: Sequence[Row]) -> list[str]:
    """Each row's spec name (see :func:`spec_names`) and overrides, for tables and plots."""
    return [" ".join(filter(None, [name, *row.overrides])) for name, row in zip(spec_names(rows), rows, strict=True)]


def efficiency_ranks(rows: Sequence[Row]) -> dict[int, int]:
    """Rank (1 = best) of each trained row, by index, on mean validation accuracy per GFLOP."""
    scored = [
        (row.acc_mean / (row.flops / 1e9), index)
        for index, row in enumerate(rows)
        if row.acc_mean is not None and row.flops and row.status == "ok"
    ]
    return {index: rank for rank, (_, index) in enumerate(sorted(scored, key=lambda s: -s[0]), start=1)}


def _cells(
    row: Row, columns: Sequence[str], measured: bool, fitted: bool, rank: int | None, grouped: bool
) -> list[str]:
    """One row's cells after the spec and override columns in ``columns``; ``grouped`` writes thousands
    separators (tables for people, not CSV)."""
    cells = [*columns]
    cells += [
        (f"{row.params:,}" if grouped else str(row.params)) if row.params is not None else "",
        f"{row.flops / 1e9:.3f}" if row.flops is not None else "",
        f"{row.activations / 2**20:.1f}" if row.activations is not None else "",
    ]
    if measured:
        cells.append(f"{row.latency_ms:.1f}" if row.latency_ms is not None else "")
    if fitted:
        mean, std = row.acc_mean, row.acc_std
        ok = mean is not None and std is not None and row.status == "ok"
        cells.append(f"{100 * mean:.1f} ± {100 * std:.1f}" if ok else "")  # type: ignore[operator]
        cells.append(f"{sum(row.fit_s) / len(row.fit_s):.0f}" if ok and row.fit_s else "")
        cells.append(str(rank) if rank is not None else "")
    return [*cells, row.status]


def format_rows(
    rows: list[Row], fmt: str = "table", measured: bool = False, batch: int = 1, fitted: bool = False, seeds: int = 1
) -> str:
    """Render sweep rows as ``table`` (plain text), ``md`` (Markdown), ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps([{**asdict(row), "acc_mean": row.acc_mean, "acc_std": row.acc_std} for row in rows], indent=2)
    with_spec = any(row.spec for row in rows)
    with_overrides = not with_spec or any(row.overrides for row in rows)
    names = spec_names(rows) if fmt != "csv" else [row.spec for row in rows]
    leading = [
        [*([name] if with_spec else []), *([" ".join(row.overrides)] if with_overrides else [])]
        for name, row in zip(names, rows, strict=True)
    ]
    header = [*(["spec"] if with_spec else []), *(["overrides"] if with_overrides else [])]
    header += ["params", "GFLOPs", "activations (MiB)"]
    if measured:
        header.append(f"latency b{batch} (ms)")
    if fitted:
        header += [f"val acc % ({seeds} seed{'s' if seeds > 1 else ''})", "fit time (s)", "acc/GFLOP rank"]
    header.append("status")
    ranks = efficiency_ranks(rows) if fitted else {}
    body = [_cells(row, leading[i], measured, fitted, ranks.get(i), grouped=fmt != "csv") for i, row in enumerate(rows)]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
        return out.getvalue().rstrip("\n")
    right = range(len(leading[0]) if leading else 1, len(header) - 1)
    return markdown_table(header, body, right) if fmt == "md" else text_table(header, body, right)
