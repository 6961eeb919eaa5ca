"""Plan summaries as a text table, Markdown or JSON. Torch-free."""

from __future__ import annotations

import dataclasses
import itertools
import json
from dataclasses import dataclass
from typing import Any

from archspec.errors import format_path
from archspec.nodes import Node, Plan
from archspec.tables import markdown_table, text_table


@dataclass(frozen=True)
class Row:
    part: str
    layers: str
    output: str
    params: int
    flops: int


def _runs(labels: list[str]) -> str:
    """``["a", "a", "b"]`` → ``"2×a, 1×b"``; a list that repeats a shorter pattern is written once,
    ``["a", "b", "a", "b"]`` → ``"2×(a, b)"``."""
    for period in range(1, len(labels) // 2 + 1):
        if len(labels) % period == 0 and labels == labels[:period] * (len(labels) // period):
            if period == 1:
                break
            return f"{len(labels) // period}×({', '.join(labels[:period])})"
    return ", ".join(f"{len(list(group))}×{label}" for label, group in itertools.groupby(labels))


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, f"{prefix}{key}.").items()}
    return {prefix[:-1]: value}


def _labels(nodes: list[Node]) -> list[str]:
    """Each node's component, and where the nodes' specs differ (``each``, a mixer pattern), what this
    one's spec sets differently from the first's: ``mbconv (expand 2.5)``."""
    specs = [_flat(node.spec.model_dump(mode="json")) if node.spec is not None else {} for node in nodes]
    labels = []
    for node, spec in zip(nodes, specs, strict=True):
        first = next(s for n, s in zip(nodes, specs, strict=True) if n.component == node.component)
        changed = [
            f"{key.removesuffix('.type')} {_text(value)}"
            for key, value in spec.items()
            if first.get(key) != value and key != "blocks"
        ]
        labels.append(f"{node.component} ({', '.join(changed)})" if changed else node.component)
    return labels


def _text(value: Any) -> str:
    return "[" + ", ".join(map(_text, value)) + "]" if isinstance(value, list) else str(value)


def _describe_embed(node: Node) -> str:
    return f"{node.component} {node.kind}"


def rows(plan: Plan) -> list[Row]:
    """One row per stage (its embedding, blocks and end norm) and one for the head."""
    result = []
    for stage in plan.stages:
        parts = [(block.part_of("mixer"), block.part_of("ffn")) for block in stage.blocks]
        if all(mixer and ffn for mixer, ffn in parts):
            mixers = _runs(_labels([mixer for mixer, _ in parts if mixer]))
            ffns = _runs(_labels([ffn for _, ffn in parts if ffn]))
            layers = f"{_describe_embed(stage.embed)}; {mixers} + {ffns}"
        else:  # blocks without a mixer and an FFN (ResNet's) are named by their own type
            layers = f"{_describe_embed(stage.embed)}; {_runs(_labels(list(stage.blocks)))}"
        result.append(Row(f"stage {stage.index + 1}", layers, str(stage.out_shape), stage.params, stage.flops))
    head = plan.head
    result.append(Row("head", f"{head.component} head", str(head.out_shape), head.params, head.flops))
    return result


def _gflops(flops: int) -> str:
    return f"{flops / 1e9:.3f}"


def format_table(plan: Plan, markdown: bool = False) -> str:
    """The summary table; its totals are the plan's parameter and FLOP counts for one sample."""
    header = ("part", "layers", "output", "params", "GFLOPs")
    body = [(r.part, r.layers, r.output, f"{r.params:,}", _gflops(r.flops)) for r in rows(plan)]
    total = ("total", f"input {plan.input}", str(plan.out_shape), f"{plan.params:,}", _gflops(plan.flops))
    right = {3, 4}
    if markdown:
        lines = [markdown_table(header, [*body, total], right)]
    else:
        title = f"{plan.name}: {plan.params:,} params, {_gflops(plan.flops)} GFLOPs per sample"
        lines = [title, text_table(header, body, right, total)]
    extra = backbone_line(plan)
    return "\n".join(lines if extra is None else [*lines, "", extra])


def backbone(plan: Plan) -> dict[str, Any] | None:
    """What a spec with ``features:`` builds (see :func:`archspec.models.backbone`): the maps it returns,
    its parameters (every stage, no head) and its FLOPs (the stages up to the last map); None for a classifier."""
    if plan.spec.features is None:
        return None
    indices = plan.spec.features.out_indices
    return {
        "out_indices": list(indices),
        "maps": [[plan.stages[i].dim, *plan.stages[i].grid] for i in indices],
        "params": plan.params - plan.head.params,
        "flops": sum(stage.flops for stage in plan.stages[: max(indices) + 1]),
    }


def backbone_line(plan: Plan) -> str | None:
    """One line saying what the backbone returns and costs, or None for a classifier."""
    info = backbone(plan)
    if info is None:
        return None
    maps = ", ".join(
        f"{'×'.join(map(str, shape))} (stage {index + 1})"
        for index, shape in zip(info["out_indices"], info["maps"], strict=True)
    )
    cost = f"{info['params']:,} params without the head, {_gflops(info['flops'])} GFLOPs per sample"
    return f"backbone: returns {maps}; {cost}"


def node_dict(node: Node) -> dict[str, Any]:
    return {
        "kind": node.kind,
        "component": node.component,
        "spec_path": format_path(node.spec_path),
        "module_paths": list(node.module_paths),
        "input": list(node.in_shape.dims),
        "output": list(node.out_shape.dims),
        "params": node.params,
        "flops": node.flops,
        "args": {} if node.args is None else dataclasses.asdict(node.args),
        "children": [node_dict(child) for child in node.children],
    }


def plan_dict(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "input": list(plan.input.dims),
        "output": list(plan.out_shape.dims),
        "params": plan.params,
        "flops": plan.flops,
        "stages": [
            {
                "index": stage.index,
                "dim": stage.dim,
                "grid": list(stage.grid),
                "params": stage.params,
                "flops": stage.flops,
                "nodes": [node_dict(node) for node in stage.nodes],
            }
            for stage in plan.stages
        ],
        "head": node_dict(plan.head),
        "backbone": backbone(plan),
    }


def format_json(plan: Plan) -> str:
    return json.dumps(plan_dict(plan), indent=2)
