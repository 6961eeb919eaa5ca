"""Structural differences between two plans, each with its parameter and FLOP cost. Torch-free.

Changes are reported per stage and for the head, so their deltas add up exactly to the difference
of the totals: a stage's delta covers everything in it, including what only changed because an
upstream change moved its grid.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from typing import Any

from archspec.graph import _unchanged_option, spec_defaults
from archspec.plan import Node, Plan, StagePlan


@dataclass(frozen=True)
class Change:
    part: str
    what: list[str]
    params: int
    flops: int


@dataclass(frozen=True)
class Diff:
    a: Plan
    b: Plan
    changes: list[Change]

    @property
    def params(self) -> int:
        return self.b.params - self.a.params

    @property
    def flops(self) -> int:
        return self.b.flops - self.a.flops


_DERIVED = ("dim", "height", "width", "cin", "eps", "num_classes")
"""Arguments that follow from the stage (width, grid) rather than from the component's own choice."""


def _short(value: object) -> object:
    # Nested arguments (a conv stem's layer list) are compared in full but shown only by size.
    if isinstance(value, list):
        return f"[{len(value)} items]"
    return "{…}" if isinstance(value, dict) else value


def _shown(node: Node) -> dict[str, object]:
    """The arguments worth showing: not derived from the stage, and not at the component's default."""
    defaults = spec_defaults(node)
    return {
        k.lstrip("_"): _short(v)
        for k, v in node.args.items()
        if k not in _DERIVED and k != "after" and v is not None and not _unchanged_option(defaults, k, v)
    }


def _key(node: Node) -> str:
    return node.component + repr(sorted((k, v) for k, v in node.args.items() if k not in _DERIVED))


def _args(node: Node) -> str:
    shown = _shown(node)
    return node.component + (f"({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else "")


def _change(old: Node, new: Node) -> str:
    """``spectral → attention(heads=4)``, or only the arguments that moved when the type stays."""
    if old.component != new.component:
        return f"{_args(old)} → {_args(new)}"
    a, b = _shown(old), _shown(new)
    full_a, full_b = old.args, new.args
    moved = [
        f"{k} {a.get(k)} → {b.get(k)}" if a.get(k) != b.get(k) else f"{k} changed"
        for k in dict.fromkeys([*a, *b])
        if full_a.get(k) != full_b.get(k)
    ]
    return f"{old.component} " + ", ".join(moved)


def _span(start: int, stop: int) -> str:
    return f"block {start}" if stop - start == 1 else f"blocks {start}–{stop - 1}"


def _parts(block: Node) -> dict[str, Node]:
    """A block's component parts by role: ``mixer`` and ``ffn`` by kind, the rest (norms) by name."""
    return {child.kind if child.kind in ("mixer", "ffn") else child.name: child for child in block.children}


def _block_changes(a: StagePlan, b: StagePlan) -> list[str]:
    """Runs of block positions whose form or parts differ, e.g. ``blocks 0–3 mixer: spectral(...) → attention(...)``."""
    lines = []
    pairs = list(zip(a.blocks, b.blocks, strict=False))
    index = 0
    for (old, new), run in itertools.groupby(pairs, key=lambda pair: (pair[0].component, pair[1].component)):
        count = len(list(run))
        if old != new:
            lines.append(f"{_span(index, index + count)} block: {old} → {new}")
        index += count
    roles = list(dict.fromkeys(role for block in (*a.blocks, *b.blocks) for role in _parts(block)))
    for role in roles:
        if role.startswith(("norm", "ls", "res_scale", "downsample")) and role not in ("norm1", "norm"):
            continue  # a block's second norm or its scales follow the first's settings
        slots = [(_parts(x).get(role), _parts(y).get(role)) for x, y in pairs]
        index = 0
        for (old, new), same in itertools.groupby(slots, key=lambda pair: tuple(_key(p) if p else "" for p in pair)):
            group = list(same)
            first = group[0]
            if old != new and first[0] is not None and first[1] is not None:
                label = "norm" if role in ("norm1", "norm") else role
                lines.append(f"{_span(index, index + len(group))} {label}: {_change(first[0], first[1])}")
            index += len(group)
    for x, y in pairs:
        if x.component == y.component and (x.args.get("layer_scale"), x.args.get("res_scale")) != (
            y.args.get("layer_scale"),
            y.args.get("res_scale"),
        ):
            lines.append(f"block scales: {_args_of(x)} → {_args_of(y)}")
            break
    if len(b.blocks) > len(a.blocks):
        added = _parts(b.blocks[-1])
        what = " + ".join(_args(added[role]) for role in ("mixer", "ffn") if role in added) or b.blocks[-1].component
        lines.append(f"{_span(len(a.blocks), len(b.blocks))} added: {what}")
    elif len(a.blocks) > len(b.blocks):
        lines.append(f"{_span(len(b.blocks), len(a.blocks))} removed")
    return lines


def _args_of(block: Node) -> str:
    return ", ".join(f"{k}={block.args.get(k)}" for k in ("layer_scale", "res_scale"))


def _stage_changes(a: StagePlan, b: StagePlan) -> list[str]:
    what = []
    if a.dim != b.dim:
        what.append(f"dim {a.dim} → {b.dim}")
    if len(a.blocks) != len(b.blocks):
        what.append(f"depth {len(a.blocks)} → {len(b.blocks)}")
    if a.grid != b.grid:
        what.append(f"grid {a.grid[0]}×{a.grid[1]} → {b.grid[0]}×{b.grid[1]}")
    if _key(a.embed) != _key(b.embed):
        what.append(f"{a.embed.kind}: {_change(a.embed, b.embed)}")
    what += _block_changes(a, b)
    if not what and [x.args.get("drop_path") for x in a.blocks] != [y.args.get("drop_path") for y in b.blocks]:
        what.append("drop-path rates change")
    if _key(a.norm) != _key(b.norm):
        what.append(f"end norm: {_change(a.norm, b.norm)}")
    if not what and (a.params, a.flops) != (b.params, b.flops):
        what.append("same layers; cost follows an upstream change")
    return what


def diff_plans(a: Plan, b: Plan) -> Diff:
    """Every stage and head difference between plan ``a`` and plan ``b``, with B − A deltas."""
    changes = []
    if a.input != b.input:
        changes.append(Change("input", [f"{a.input} → {b.input}"], 0, 0))
    for index in range(max(len(a.stages), len(b.stages))):
        part = f"stage {index + 1}"
        if index >= len(a.stages):
            stage = b.stages[index]
            what = [f"added: dim {stage.dim}, depth {len(stage.blocks)}"]
            changes.append(Change(part, what, stage.params, stage.flops))
        elif index >= len(b.stages):
            stage = a.stages[index]
            changes.append(Change(part, ["removed"], -stage.params, -stage.flops))
        else:
            x, y = a.stages[index], b.stages[index]
            what = _stage_changes(x, y)
            if what:
                changes.append(Change(part, what, y.params - x.params, y.flops - x.flops))
    if (_key(a.head), a.head.out_shape, a.head.in_shape) != (_key(b.head), b.head.out_shape, b.head.in_shape):
        what = [_change(a.head, b.head)] if _key(a.head) != _key(b.head) else []
        if a.num_classes != b.num_classes:
            what.append(f"classes {a.num_classes} → {b.num_classes}")
        changes.append(Change("head", what or ["cost follows an upstream change"], b.head.params - a.head.params,
                              b.head.flops - a.head.flops))  # fmt: skip
    return Diff(a, b, changes)


def _signed(value: int) -> str:
    return f"{value:+,}"


def _gflops(value: int) -> str:
    return f"{value / 1e9:+.3f}"


def format_diff(diff: Diff, label_a: str, label_b: str, fmt: str = "text") -> str:
    """Render a diff as ``text``, ``md`` or ``json``."""
    a, b = diff.a, diff.b
    if fmt == "json":
        return json.dumps(_as_json(diff, label_a, label_b), indent=2)
    heading = [
        f"A: {label_a} — {a.name}: {a.params:,} params, {a.flops / 1e9:.3f} GFLOPs",
        f"B: {label_b} — {b.name}: {b.params:,} params, {b.flops / 1e9:.3f} GFLOPs",
    ]
    if not diff.changes:
        return "\n".join([*heading, "no structural differences"])
    rows = [(c.part, "; ".join(c.what), _signed(c.params), _gflops(c.flops)) for c in diff.changes]
    total = ("total (B − A)", "", _signed(diff.params), _gflops(diff.flops))
    header = ("part", "change", "params Δ", "GFLOPs Δ")
    if fmt == "md":
        lines = ["| " + " | ".join(header) + " |", "|---|---|---:|---:|"]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in [*rows, total]]
        return "\n".join([*(f"- {line}" for line in heading), "", *lines])
    widths = [max(len(r[i]) for r in [header, *rows, total]) for i in range(4)]

    def line(row: tuple[str, ...]) -> str:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([*heading, "", line(header), rule, *map(line, rows), rule, line(total)])


def _as_json(diff: Diff, label_a: str, label_b: str) -> dict[str, Any]:
    return {
        "a": {"source": label_a, "name": diff.a.name, "params": diff.a.params, "flops": diff.a.flops},
        "b": {"source": label_b, "name": diff.b.name, "params": diff.b.params, "flops": diff.b.flops},
        "changes": [asdict(c) for c in diff.changes],
        "delta": {"params": diff.params, "flops": diff.flops},
    }
