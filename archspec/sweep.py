"""Sweeps: plan (and optionally build and time) every combination of a few overrides.

Without ``measure`` nothing imports torch. Invalid combinations become rows that carry their error
instead of stopping the sweep.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from archspec.errors import ArchspecError, SpecError
from archspec.plan import Node, Plan
from archspec.tables import markdown_table

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


def split_values(text: str) -> list[str]:
    """Split ``v1,v2`` on commas outside brackets, so ``[256, 320],224`` gives two values."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current)
            current = ""
        else:
            current += char
    values.append(current)
    return [v.strip() for v in values]


def combinations(grids: Sequence[str]) -> list[list[str]]:
    """``["a=1,2", "b=x,y"]`` → every combination as override strings, first grid varying slowest."""
    axes = []
    for grid in grids:
        key, sep, values = grid.partition("=")
        if not sep or not key or not values:
            raise ArchspecError(f"--grid {grid}: expected KEY.PATH=V1,V2,...")
        axes.append([f"{key}={value}" for value in split_values(values)])
    count = math.prod(len(axis) for axis in axes)
    if count > MAX_COMBINATIONS:
        sizes = " × ".join(str(len(axis)) for axis in axes)
        raise ArchspecError(
            f"--grid: {sizes} = {count:,} combinations; a sweep plans at most {MAX_COMBINATIONS:,} (split it up)"
        )
    return [list(combo) for combo in itertools.product(*axes)]


def activation_bytes(plan: Plan, bytes_per_value: int = 4) -> int:
    """Sum of the outputs, for one sample, of every top-level node and every block part: a rough
    estimate of what training keeps. What a component holds inside (its layers, an FFN's activation)
    is left out: the estimate counts each component's output once."""

    def size(node: Node) -> int:
        grid = node.out_shape.grid
        return node.out_shape.channels * (grid[0] * grid[1] if grid else 1)

    nodes = [part for node in plan.nodes for part in (node, *(node.children if node.kind == "block" else ()))]
    return bytes_per_value * sum(size(node) for node in nodes if node.kind != "layer")


def _measure(plan: Plan, batch: int, device: str, repeats: int) -> float:
    """Median forward latency in ms, measured by :func:`archspec.bench.measure`."""
    import torch

    from archspec.bench import measure
    from archspec.models import build_declared

    model = build_declared(plan, device=device).eval()
    x = torch.randn(batch, *plan.input.dims, device=device)
    with torch.inference_mode():
        return measure(lambda: model(x), torch.device(device), repeats).median * 1e3


def run_sweep(
    spec_path: str | Path,
    grids: Sequence[str],
    base_overrides: Sequence[str] = (),
    measure: bool = False,
    batch: int = 1,
    device: str = "cpu",
    repeats: int = 3,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[Row]:
    """Evaluate every combination of ``grids`` on top of ``base_overrides``."""
    from archspec import load_spec, plan

    rows = []
    combos = combinations(grids)
    for index, combo in enumerate(combos):
        if progress is not None:
            progress(index, len(combos), " ".join(combo))
        try:
            planned = plan(load_spec(spec_path, [*base_overrides, *combo]))
        except SpecError as exc:
            rows.append(Row(combo, "invalid: " + "; ".join(exc.lines())))
            continue
        except ArchspecError as exc:
            rows.append(Row(combo, f"invalid: {exc}"))
            continue
        row = Row(combo, "ok", planned.params, planned.flops, activation_bytes(planned))
        if measure:
            from archspec.budget import BudgetError, check_budget

            try:
                check_budget(planned, "float32", batch, remedy="measure it with archspec bench --force")
                row.latency_ms = _measure(planned, batch, device, repeats)
            except BudgetError as exc:
                row.status = f"not measured: {exc}"
            except (RuntimeError, MemoryError) as exc:
                row.status = f"failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
        rows.append(row)
    if progress is not None:
        progress(len(combos), len(combos), "")
    return rows


def _cells(row: Row, measured: bool, grouped: bool = True) -> list[str]:
    """One row's cells; ``grouped`` writes thousands separators (tables for people, not CSV)."""
    cells = [
        " ".join(row.overrides),
        (f"{row.params:,}" if grouped else str(row.params)) if row.params is not None else "",
        f"{row.flops / 1e9:.3f}" if row.flops is not None else "",
        f"{row.activations / 2**20:.1f}" if row.activations is not None else "",
    ]
    if measured:
        cells.append(f"{row.latency_ms:.1f}" if row.latency_ms is not None else "")
    return [*cells, row.status]


def format_rows(rows: list[Row], fmt: str = "md", measured: bool = False, batch: int = 1) -> str:
    """Render sweep rows as ``md``, ``csv`` or ``json``."""
    if fmt == "json":
        return json.dumps([asdict(row) for row in rows], indent=2)
    header = ["overrides", "params", "GFLOPs", "activations (MiB)"]
    if measured:
        header.append(f"latency b{batch} (ms)")
    header.append("status")
    body = [_cells(row, measured, grouped=fmt != "csv") for row in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
        return out.getvalue().rstrip("\n")
    return markdown_table(header, body, right=range(1, len(header) - 1))
