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
from archspec.plan import LAYER_INPUT as IN
from archspec.plan import Node, Plan, StagePlan
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


_DERIVED = ("dim", "height", "width", "cin", "num_classes")
"""Arguments that follow from the stage (width, grid) rather than from the component's own choice."""
_UNSHOWN = (*_DERIVED, "after", "detail", "_detail", "name", "title")
"""Arguments never shown: the derived ones, and a layer's wiring and description (compared as a whole)."""


def _short(value: object) -> object:
    # Nested arguments (a conv stem's layer list) are compared in full but shown only by size.
    if isinstance(value, list | tuple):
        return f"[{len(value)} item{'' if len(value) == 1 else 's'}]"
    return "{…}" if isinstance(value, dict) else value


def _shown(node: Node, skip: tuple[str, ...] = ()) -> dict[str, object]:
    """The arguments worth showing: not derived from the stage, and not at the component's default."""
    defaults = spec_defaults(node)
    return {
        k.lstrip("_"): _short(v)
        for k, v in node.args.items()
        if k not in (*_UNSHOWN, *skip) and v is not None and not _unchanged_option(defaults, k, v)
    }


def _key(node: Node, skip: tuple[str, ...] = ()) -> str:
    """What a node is, derived numbers left out: its type, its arguments and, nested, its components'."""
    own = node.component + repr(sorted((k, v) for k, v in node.args.items() if k not in (*_DERIVED, *skip)))
    if node.kind == "block":
        return own + flow_text(node)
    nested = [f"{child.name}={_key(child)}" for child in node.children if child.kind != "layer"]
    return own + (f"[{', '.join(nested)}]" if nested else "")


def _args(node: Node, skip: tuple[str, ...] = ()) -> str:
    shown = _shown(node, skip)
    return node.component + (f"({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else "")


def _leaves(value: object, path: str = "") -> dict[str, object]:
    """Nested arguments as ``path: value`` pairs (``proj.kernel``, ``layers[0].cout``); derived keys left out.

    A list whose length differs between the two sides is compared by its length (see :func:`_moved`)."""
    if isinstance(value, dict):
        return {
            leaf: v
            for k, item in value.items()
            if k not in _UNSHOWN
            for leaf, v in _leaves(item, f"{path}.{k.lstrip('_')}" if path else k.lstrip("_")).items()
        }
    if isinstance(value, list | tuple):
        return {leaf: v for i, item in enumerate(value) for leaf, v in _leaves(item, f"{path}[{i}]").items()}
    return {path: value}


def _moved(old: dict[str, object], new: dict[str, object]) -> list[str]:
    """``key a → b`` for every argument whose value differs; nothing for one that is the same on both sides."""
    moved = []
    for key in dict.fromkeys([*old, *new]):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) != len(b):
            moved.append(f"{key.lstrip('_')} {len(a)} → {len(b)} items")
        elif isinstance(a, dict | list | tuple) and isinstance(b, type(a)):
            inner = _moved(_leaves(a, key.lstrip("_")), _leaves(b, key.lstrip("_")))
            moved += inner
        else:
            text_a, text_b = (str(v) if not isinstance(v, dict | list | tuple) else _short(v) for v in (a, b))
            if text_a == text_b:  # equal as text, yet different: show them exactly
                text_a, text_b = repr(a), repr(b)
            moved.append(f"{key.lstrip('_')} {text_a} → {text_b}")
    return moved


def _change(old: Node, new: Node, skip: tuple[str, ...] = ()) -> str | None:
    """``spectral → attention(heads=4)``, or the component and only the arguments that moved when the type
    stays; None when nothing but derived arguments differ (the stage's width or grid says it already)."""
    if old.component != new.component:
        return f"{_args(old, skip)} → {_args(new, skip)}"
    if old.kind == "layer":  # a leaf layer is known by its description (``Conv2d 3×3, 64→96``)
        a, b = old.args.get("detail"), new.args.get("detail")
        return f"{a} → {b}" if a != b else None
    keep = [key for key in dict.fromkeys([*old.args, *new.args]) if key not in (*_UNSHOWN, *skip)]
    moved = _moved({k: old.args.get(k) for k in keep}, {k: new.args.get(k) for k in keep})
    if old.kind != "block":  # a component's own components (an FFN's activation, a norm's) by name
        olds = {child.name: child for child in old.children if child.kind != "layer"}
        news = {child.name: child for child in new.children if child.kind != "layer"}
        for name in dict.fromkeys([*olds, *news]):
            a, b = olds.get(name), news.get(name)
            if a is None and b is not None:
                moved.append(f"{name}: added {_args(b)}")
            elif b is None and a is not None:
                moved.append(f"{name}: removed")
            elif a is not None and b is not None and (inner := _change(a, b)) is not None:
                moved.append(f"{name}: {inner}")
    return f"{old.component} " + ", ".join(moved) if moved else None


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
    """A block's component parts by role: ``mixer`` and ``ffn`` by kind, the rest (norms) by name."""
    return {child.kind if child.kind in ("mixer", "ffn") else child.name: child for child in block.children}


_BLOCK_PARTS = ("drop_path", "mixer", "ffn", "form", "parts")
"""Block arguments reported on their own: the drop-path rate, the types of its parts, and its form (its flow)."""


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
        if role.startswith(("norm", "ls", "res_scale", "downsample")) and role not in ("norm1", "norm"):
            continue  # a block's second norm or its scales follow the first's settings
        slots = [(_parts(x).get(role), _parts(y).get(role)) for x, y in zip(a.blocks, b.blocks, strict=False)]
        for start, stop, old, new in _runs(slots, lambda pair: tuple(_key(p) if p else "" for p in pair)):
            if old is None or new is None or _key(old) == _key(new):
                continue
            if (what := _change(old, new)) is not None:
                label = "norm" if role in ("norm1", "norm") else role
                lines.append(f"{_span(start, stop)} {label}: {what}")
    if len(b.blocks) > len(a.blocks):
        added = _parts(b.blocks[-1])
        what = " + ".join(_args(added[role]) for role in ("mixer", "ffn") if role in added) or b.blocks[-1].component
        lines.append(f"{_span(len(a.blocks), len(b.blocks))} added: {what}")
    elif len(a.blocks) > len(b.blocks):
        lines.append(f"{_span(len(b.blocks), len(a.blocks))} removed")
    return lines


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
    rates = [(x.args.get("drop_path"), y.args.get("drop_path")) for x, y in zip(a.blocks, b.blocks, strict=False)]
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
