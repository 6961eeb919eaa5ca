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

from pydantic import BaseModel

from archspec.nodes import LAYER_INPUT as IN
from archspec.nodes import Node, Plan, StagePlan
from archspec.specbase import ComponentSpec
from archspec.tables import markdown_table, text_table


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


def _value_text(value: object) -> str:
    if isinstance(value, ComponentSpec):
        return _text(value)
    if isinstance(value, tuple | list):
        return f"[{len(value)} item{'' if len(value) == 1 else 's'}]"
    if isinstance(value, BaseModel):
        return "{…}"
    return str(value)


def _text(spec: ComponentSpec, skip: tuple[str, ...] = ()) -> str:
    """``attention(heads=2)``: a component's type and the fields it sets away from their defaults."""
    fields = type(spec).model_fields
    shown = [
        f"{name}={_value_text(getattr(spec, name))}"
        for name, info in fields.items()
        if name not in ("type", *skip, *_PATTERN) and getattr(spec, name) != info.get_default(call_default_factory=True)
    ]
    return spec.type + (f"({', '.join(shown)})" if shown else "")


_PATTERN = ("blocks",)
"""Fields that say where a mixer sits in a stage's pattern: the blocks it covers are the diff's runs."""


def _moved(name: str, a: object, b: object) -> list[str]:
    """``name a → b`` for a field, opened where it nests: a component (``act: gelu → silu``), a record
    (``layers[0].channels 32 → 48``) or a list of equal length."""
    if a == b:
        return []
    if isinstance(a, ComponentSpec) and isinstance(b, ComponentSpec):
        return [f"{name}: {_spec_change(a, b)}"]
    if a is None and isinstance(b, ComponentSpec):
        return [f"{name}: added {_text(b)}"]
    if b is None and isinstance(a, ComponentSpec):
        return [f"{name}: removed {_text(a)}"]
    if isinstance(a, BaseModel) and type(a) is type(b):
        return [
            line
            for field in type(a).model_fields
            for line in _moved(f"{name}.{field}", getattr(a, field), getattr(b, field))
        ]
    if isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return [f"{name} {len(a)} → {len(b)} items"]
        return [line for i, (x, y) in enumerate(zip(a, b, strict=True)) for line in _moved(f"{name}[{i}]", x, y)]
    text_a, text_b = _value_text(a), _value_text(b)
    if text_a == text_b:  # equal as text, yet different: show them exactly
        text_a, text_b = repr(a), repr(b)
    return [f"{name} {text_a} → {text_b}"]


def _spec_change(a: ComponentSpec, b: ComponentSpec, skip: tuple[str, ...] = ()) -> str:
    """``spectral → attention(heads=4)`` for another type, else the type and every field that moved."""
    if a.type != b.type:
        return f"{_text(a, skip)} → {_text(b, skip)}"
    moved = [
        line
        for name in type(a).model_fields
        if name not in ("type", *skip, *_PATTERN)
        for line in _moved(name, getattr(a, name), getattr(b, name))
    ]
    return f"{a.type} " + ", ".join(moved)


def _key(node: Node, skip: tuple[str, ...] = ()) -> str:
    """What a node is, in the terms its spec was written in: equal keys, no phrase. A layer (no spec of
    its own) is known by its description; a block also by its flow."""
    if node.spec is None:
        return f"{node.component}:{node.detail}"
    spec = node.spec.model_dump(mode="json", exclude={"type", *skip, *_PATTERN})
    return node.component + repr(spec) + (flow_text(node) if node.kind == "block" else "")


def _change(old: Node, new: Node, skip: tuple[str, ...] = ()) -> str | None:
    """The phrase for a node whose key changed, or None when its spec did not (its numbers moved with
    the stage's width or grid, which the stage's own phrases say)."""
    if old.spec is None or new.spec is None:
        a, b = old.detail, new.detail
        return f"{a} → {b}" if a != b else None
    if old.spec.type == new.spec.type and not any(
        _moved(name, getattr(old.spec, name), getattr(new.spec, name))
        for name in type(old.spec).model_fields
        if name not in ("type", *skip, *_PATTERN)
    ):
        return None
    return _spec_change(old.spec, new.spec, skip)


def flow_text(block: Node) -> str:
    """A block's flow in one line: ``norm1 → m → drop_path → +x → norm2 → mlp → drop_path → +x``.

    ``+x`` adds the block's input or an earlier sum; ``+name`` adds another step's output (a shortcut
    through a part, a post-norm, a parallel branch); ``concat(a, b)`` joins branches.
    """
    words, sums = [], {IN}
    for step in block.flow:
        if step.add:
            if step.drop_path:
                words.append("drop_path")
            words.append("+x" if step.residual in sums else f"+{step.residual}")
            sums.add(step.name)
        elif step.concat:
            words.append(f"concat({', '.join(step.after or ())})")
        else:
            words.append(step.name)
    return " → ".join(words)


def _span(start: int, stop: int) -> str:
    return f"block {start}" if stop - start == 1 else f"blocks {start}–{stop - 1}"


def _parts(block: Node) -> dict[str, Node]:
    """A block's parts by role: its first mixer and FFN as ``mixer`` and ``ffn``, every other part by name."""
    roles: dict[str, Node] = {}
    for child in block.children:
        roles[child.kind if child.kind in ("mixer", "ffn") and child.kind not in roles else child.name] = child
    return roles


_BLOCK_PARTS = ("parts", "flow")
"""Block fields reported on their own: its parts by role, its lines as its flow."""


def _runs(pairs: list[tuple[Node | None, Node | None]], key: Any) -> list[tuple[int, int, Node | None, Node | None]]:
    """Runs of consecutive pairs with equal keys, as (start, stop, old, new) of each run's first pair."""
    runs, index = [], 0
    for _, same in itertools.groupby(pairs, key=key):
        group = list(same)
        runs.append((index, index + len(group), *group[0]))
        index += len(group)
    return runs


def _block_changes(a: StagePlan, b: StagePlan) -> list[str]:
    """Runs of block positions whose form or parts differ, e.g. ``blocks 0–3 mixer: spectral(...) → attention(...)``."""
    lines = []
    pairs: list[tuple[Node | None, Node | None]] = list(zip(a.blocks, b.blocks, strict=False))
    for start, stop, old, new in _runs(pairs, lambda pair: tuple(_key(p, _BLOCK_PARTS) if p else "" for p in pair)):
        if old is None or new is None or _key(old, _BLOCK_PARTS) == _key(new, _BLOCK_PARTS):
            continue
        if (what := _change(old, new, _BLOCK_PARTS)) is not None:
            lines.append(f"{_span(start, stop)} block: {what}")
        if (flow := flow_text(old)) != (other := flow_text(new)):
            lines.append(f"{_span(start, stop)} flow: {flow} ⇒ {other}")
    roles = list(dict.fromkeys(role for block in (*a.blocks, *b.blocks) for role in _parts(block)))
    for role in roles:
        slots = [(_parts(x).get(role), _parts(y).get(role)) for x, y in zip(a.blocks, b.blocks, strict=False)]
        for start, stop, old, new in _runs(slots, lambda pair: tuple(_key(p) if p else "" for p in pair)):
            if old is None or new is None or _key(old) == _key(new):
                continue
            if old.spec is not None and old.spec is _block_norm(a, start) and new.spec is _block_norm(b, start):
                continue  # a block's norms are one field: the block's own phrase says it
            if (what := _change(old, new)) is not None:
                lines.append(f"{_span(start, stop)} {role}: {what}")
    if len(b.blocks) > len(a.blocks):
        added = _parts(b.blocks[-1])
        specs = [added[role].spec for role in ("mixer", "ffn") if role in added]
        what = " + ".join(_text(spec) for spec in specs if spec is not None)
        lines.append(f"{_span(len(a.blocks), len(b.blocks))} added: {what or b.blocks[-1].component}")
    elif len(a.blocks) > len(b.blocks):
        lines.append(f"{_span(len(b.blocks), len(a.blocks))} removed")
    return lines


def _block_norm(stage: StagePlan, index: int) -> object:
    """The block's own ``norm`` field at ``index``, which every norm part of its form reads."""
    return getattr(stage.blocks[index].spec, "norm", None)


def _drop_path_cause(a: Plan, b: Plan) -> str:
    """Why blocks' drop-path rates differ: they ramp from 0 to ``drop_path_rate`` over all the model's blocks."""
    causes = []
    if a.spec.drop_path_rate != b.spec.drop_path_rate:
        causes.append(f"drop_path_rate {a.spec.drop_path_rate} → {b.spec.drop_path_rate}")
    blocks_a, blocks_b = (sum(len(stage.blocks) for stage in plan.stages) for plan in (a, b))
    if blocks_a != blocks_b:
        causes.append(f"the ramp spans the model's {blocks_a} → {blocks_b} blocks")
    return " and ".join(causes)


def _stage_changes(a: StagePlan, b: StagePlan, drop_path_cause: str) -> list[str]:
    what = []
    if a.dim != b.dim:
        what.append(f"dim {a.dim} → {b.dim}")
    if len(a.blocks) != len(b.blocks):
        what.append(f"depth {len(a.blocks)} → {len(b.blocks)}")
    if a.grid != b.grid:
        what.append(f"grid {a.grid[0]}×{a.grid[1]} → {b.grid[0]}×{b.grid[1]}")
    if _key(a.embed) != _key(b.embed) and (embed := _change(a.embed, b.embed)) is not None:
        what.append(f"{a.embed.kind}: {embed}")
    what += _block_changes(a, b)
    rates = [(x.drop_path, y.drop_path) for x, y in zip(a.blocks, b.blocks, strict=False)]
    if any(x != y for x, y in rates):
        what.append(f"drop-path rates change ({drop_path_cause})" if drop_path_cause else "drop-path rates change")
    if _key(a.norm) != _key(b.norm) and (norm := _change(a.norm, b.norm)) is not None:
        what.append(f"end norm: {norm}")
    if not what and (a.params, a.flops) != (b.params, b.flops):
        if a.embed.in_shape != b.embed.in_shape:
            what.append(f"input {a.embed.in_shape} → {b.embed.in_shape}, from stage {a.index}")
        else:
            what.append("parameters or FLOPs differ with the same settings and input")
    return what


def _stage_text(stage: StagePlan) -> str:
    return f"dim {stage.dim}, depth {len(stage.blocks)}"


def _head_changes(a: Plan, b: Plan) -> list[str]:
    what = []
    if _key(a.head) != _key(b.head) and (change := _change(a.head, b.head)) is not None:
        what.append(change)
    if a.num_classes != b.num_classes:
        what.append(f"classes {a.num_classes} → {b.num_classes}")
    if a.head.in_shape != b.head.in_shape:
        what.append(f"input {a.head.in_shape} → {b.head.in_shape}, from stage {len(b.stages)}")
    if not what and (a.head.params, a.head.flops) != (b.head.params, b.head.flops):
        what.append("parameters or FLOPs differ with the same settings and input")
    return what


def diff_plans(a: Plan, b: Plan) -> Diff:
    """Every stage and head difference between plan ``a`` and plan ``b``, with B − A deltas."""
    changes = []
    if a.input != b.input:
        changes.append(Change("input", [f"{a.input} → {b.input}"], 0, 0))
    cause = _drop_path_cause(a, b)
    for index in range(max(len(a.stages), len(b.stages))):
        part = f"stage {index + 1}"
        if index >= len(a.stages):
            stage = b.stages[index]
            changes.append(Change(part, [f"added: {_stage_text(stage)}"], stage.params, stage.flops))
        elif index >= len(b.stages):
            stage = a.stages[index]
            changes.append(Change(part, [f"removed: {_stage_text(stage)}"], -stage.params, -stage.flops))
        else:
            x, y = a.stages[index], b.stages[index]
            what = _stage_changes(x, y, cause)
            if what:
                changes.append(Change(part, what, y.params - x.params, y.flops - x.flops))
    if what := _head_changes(a, b):
        changes.append(Change("head", what, b.head.params - a.head.params, b.head.flops - a.head.flops))
    return Diff(a, b, changes)


def _signed(value: int) -> str:
    return f"{value:+,}"


def _gflops(value: int) -> str:
    return f"{value / 1e9:+.3f}"


def format_diff(diff: Diff, label_a: str, label_b: str, fmt: str = "table") -> str:
    """Render a diff as ``table`` (plain text), ``md`` (Markdown) or ``json``."""
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
    right = {2, 3}
    if fmt == "md":
        table = markdown_table(header, [*rows, total], right)
        return "\n".join([*(f"- {line}" for line in heading), "", table])
    return "\n".join([*heading, "", text_table(header, rows, right, total)])


def _as_json(diff: Diff, label_a: str, label_b: str) -> dict[str, Any]:
    return {
        "a": {"source": label_a, "name": diff.a.name, "params": diff.a.params, "flops": diff.a.flops},
        "b": {"source": label_b, "name": diff.b.name, "params": diff.b.params, "flops": diff.b.flops},
        "changes": [asdict(c) for c in diff.changes],
        "delta": {"params": diff.params, "flops": diff.flops},
    }
