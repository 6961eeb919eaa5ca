"""Plan → the structure a picture of the model is drawn from: a :class:`Drawing`, or as
``networkx.DiGraph`` (:func:`to_graph`) for analysis and interchange. Torch-free.

``depth`` picks the detail: 0 draws one node per stage; 1 the stem, downsamples, block groups and
stage norms; 2 opens each block into norm1, mixer, add, norm2, ffn, add, with residual edges into
the adds; 3 opens every stem, downsample, mixer and FFN whose plan node has children into those
children: the layers its component planned (the stem's convs, the mixer's convs, FFT and filter,
q/kv/proj, fc1/fc2), wired as each layer's ``after`` says. A component that plans no layers is
drawn whole. The head is drawn as its layers at every depth (pool, class token, class-attention
blocks, classifiers), because the last stage's norm and, with token labelling, the combination of
two classifiers sit among them. Input and output nodes frame every depth.

The last stage's norm is drawn where the head's forward applies it (each head's ``steps``):
after the pool for a ``pool`` head with ``norm: after_pool``, on the class token a ``token`` head
reads, after the class-attention blocks of a ``class_attention`` head; only where the head
normalises its input (``norm: before_pool``, or a head that planned no layers) is it drawn at the
end of the stage. Drawn in the head, it keeps its id ``stages[i].norm`` and the shape of what it
reads, and it sits among the head's layers (``parent`` ``head``), outside the stage's cluster.
A ``class_attention`` head with ``aux_head`` ends in a ``combine`` node fed by both classifiers:
the model returns ``head + 0.5 × max over tokens of aux_head`` (``TokenLabelling`` returns both logits).

Collapsing: consecutive blocks whose children have the same types and arguments (the drop-path
rate aside) form one group, and so does a repeating pattern such as spectral, attention, spectral,
attention. A group covers ``blocks = [first, last]`` (0-based within the stage, as in the module
names ``block{stage}.{index}``): ``count`` blocks, ``period`` distinct ones repeated ``repeat``
times. At depth 2 and 3 a group is drawn once, one block per pattern position, and every node of
it carries the group's marks.

Counting rule: a node carries the parameters and FLOPs of everything it stands for (a group, or a
node inside a drawn group, sums over all the blocks it represents), and no node stands inside
another, because a node opened at a deeper depth is replaced by its parts. So at every depth the
nodes' ``params`` sum to ``plan.params`` and their ``flops`` to ``plan.flops``. Stage and group
totals would count twice as nodes, so they are graph attributes: ``graph.graph["stages"]`` and
``graph.graph["groups"]``, keyed by the nodes' ``cluster`` and ``group`` values.

Node ids are spec paths, extended where one path covers several nodes: ``stem``,
``stages[1].downsample``, ``stages[0].blocks[0-2]`` (a group), ``stages[0].blocks[0].mixer.fft``,
``stages[0].norm``, and the head's layers ``head.pool``, ``head.head``, ``head.combine`` (``head``
for a head drawn whole). Node attributes: ``kind``, ``component`` (the registered type it is
or belongs to), ``owner`` (the plan-node kind it belongs to), ``title``, ``detail``, ``label``,
``shape`` and ``dims`` (its output), ``params``, ``flops``, ``module_path(s)``, ``spec_path``,
and where they apply ``cluster``, ``group``, ``parent``, ``mixers``, ``blocks``, ``count``,
``period`` and ``repeat``. Edges carry ``kind`` ("data" or "residual"), ``shape`` and ``dims``,
which are always their source node's output. A stage's totals in ``graph.graph["stages"]`` are
the plan's, its norm included wherever that is drawn.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from archspec import registry
from archspec.errors import format_path
from archspec.nodes import LAYER_INPUT, HeadSteps, Node, Plan, StagePlan

if TYPE_CHECKING:
    import networkx as nx

    from archspec.specbase import HeadSpec

DEPTHS = (0, 1, 2, 3)
MAX_PERIOD = 8  # a longer repeating unit is not what a reader sees as a pattern
IN = LAYER_INPUT  # in Part.after or Part.residual: whatever feeds the parts being added


@dataclass(frozen=True)
class Part:
    """A node about to be added, named locally (``q``, ``mixer.fft``) and wired by those names.

    ``after`` lists the parts whose outputs it reads (None: the part just before it, or the input);
    ``residual`` names the part whose output a skip connection adds here; ``parent`` is the local
    name of the node a layer was opened from.
    """

    name: str
    kind: str
    title: str
    dims: tuple[int, ...]
    params: int = 0
    flops: int = 0
    modules: tuple[str, ...] = ()
    detail: str = ""
    after: tuple[str, ...] | None = None
    residual: str | None = None
    component: str = ""
    owner: str = ""
    spec_path: str = ""
    parent: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Group:
    """``period`` consecutive blocks from ``first`` on, repeated ``repeat`` times."""

    first: int
    period: int
    repeat: int

    @property
    def count(self) -> int:
        return self.period * self.repeat

    @property
    def last(self) -> int:
        return self.first + self.count - 1


def format_params(params: int) -> str:
    if params >= 1_000_000:
        return f"{params / 1e6:.2f}M"
    return f"{params / 1e3:.1f}K" if params >= 1000 else str(params)


def format_flops(flops: int) -> str:
    for scale, unit in ((1e9, "GFLOPs"), (1e6, "MFLOPs"), (1e3, "KFLOPs")):
        if flops >= scale:
            return f"{flops / scale:.2f} {unit}"
    return f"{flops} FLOPs"


def span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}–{last}"


def blocks_text(attrs: dict[str, Any]) -> str:
    """``"blocks 0–2 ×3"`` for a node standing for a group of blocks (a pattern's ×N is in its title)."""
    if "blocks" not in attrs:
        return ""
    first, last = attrs["blocks"]
    if first == last:
        return f"block {first}"
    times = f" ×{attrs['repeat']}" if attrs["period"] == 1 else ""
    return f"blocks {span(first, last)}{times}"


def describe(node: Node) -> str:
    """What a drawing says of a node beside its numbers: a layer's description, or what its component
    declares it shows (the spec fields set away from their defaults, such as ``heads 10``)."""
    return node.detail if node.spec is None else node.spec.shown()


def block_key(block: Node) -> str:
    """What two blocks must share to collapse: their type, and every part's type and arguments (not the drop-path)."""
    parts = [(child.kind, child.component, repr(child.spec), child.detail, child.in_shape) for child in block.children]
    shape = (block.in_shape.dims, block.out_shape.dims)
    return repr((block.component, shape, parts))


def _is_pattern_unit(unit: Sequence[str]) -> bool:
    """Several blocks read as a pattern unit when no neighbours (cyclically) are equal and the unit is no repeat."""
    period = len(unit)
    if any(unit[j] == unit[(j + 1) % period] for j in range(period)):
        return False
    return not any(period % p == 0 and list(unit) == list(unit[:p]) * (period // p) for p in range(2, period))


def collapse(keys: Sequence[str]) -> list[Group]:
    """Cover ``keys`` with the fewest groups: runs of one key, or two or more repeats of a pattern unit.

    Ties go to the group that covers more blocks first, then to the shorter unit.
    """
    n = len(keys)
    cost = [0] * (n + 1)
    choice = [Group(i, 1, 1) for i in range(n)]
    for i in range(n - 1, -1, -1):
        best = (n + 1, 0, 0)
        for period in range(1, min(MAX_PERIOD, n - i) + 1):
            unit = keys[i : i + period]
            if period > 1 and not _is_pattern_unit(unit):
                continue
            repeat = 1
            while keys[i + period * repeat : i + period * (repeat + 1)] == unit:
                repeat += 1
            for r in range(1 if period == 1 else 2, repeat + 1):
                rank = (1 + cost[i + period * r], -period * r, period)
                if rank < best:
                    best, choice[i] = rank, Group(i, period, r)
        cost[i] = best[0]
    groups, i = [], 0
    while i < n:
        groups.append(choice[i])
        i += choice[i].count
    return groups


def _whole(name: str, node: Node, title: str, detail: str = "") -> Part:
    numbers = (node.out_shape.dims, node.params, node.flops, node.module_paths, detail)
    path = format_path(node.spec_path)
    return Part(name, node.kind, title, *numbers, component=node.component, owner=node.kind, spec_path=path)


def _opened(name: str, node: Node, title: str, depth: int, source: str = IN) -> list[Part]:
    """``node`` as one part, or at depth 3 its children (its layers) named ``name.layer``.

    ``source`` is the part before it. The children partition the node's numbers, so the parts still add up.
    """
    detail = describe(node)
    whole = _whole(name, node, title, detail)
    if depth < 3 or not node.children:
        return [whole]
    prefix = f"{name}." if name else ""

    def local(ref: str) -> str:
        return source if ref == IN else prefix + ref

    parts = []
    for layer in node.children:
        detail = layer.detail or describe(layer)
        numbers = (layer.out_shape.dims, layer.params, layer.flops, layer.module_paths, detail)
        kind = layer.component if layer.kind == "layer" else layer.kind
        part = Part(prefix + layer.name, kind, layer.title or layer.name, *numbers, component=node.component)
        after = tuple(map(local, layer.after)) if layer.after is not None else None
        parts.append(replace(part, after=after, owner=node.kind, spec_path=whole.spec_path, parent=name))
    return parts


def _ffn(block: Node) -> str | None:
    ffn = block.part_of("ffn")
    return ffn.component if ffn is not None else None


def character(block: Node) -> str:
    """What a block is drawn and coloured as: its mixer's type, or the block's own for blocks without one."""
    mixer = block.part_of("mixer")
    return mixer.component if mixer is not None else block.component


def _slot_name(child: Node, alone: bool) -> str:
    """A block part's local name: ``mixer`` and ``ffn`` for the block's only one of that kind, else the
    module's own name (MaxViT's block has two mixers, ``block_attn`` and ``grid_attn``)."""
    return child.kind if child.kind in ("mixer", "ffn") and alone else child.name


def _block_parts(block: Node, depth: int) -> list[Part]:
    """A block's parts in the order of its ``flow``: each child whole (or opened at depth 3), and its additions."""
    kinds = Counter(child.kind for child in block.children)
    local = {child.name: _slot_name(child, kinds[child.kind] == 1) for child in block.children}
    local[IN] = IN
    spec_path = format_path(block.spec_path)
    parts: list[Part] = []
    previous = IN
    for step in block.flow:
        after = tuple(local.get(name, name) for name in step.after) if step.after is not None else None
        if step.add:
            residual = local.get(step.residual, step.residual) if step.residual else None
            add = Part(step.name, "add", "+", block.out_shape.dims, owner="block", spec_path=spec_path)
            parts.append(replace(add, after=after, residual=residual))
        elif step.concat:
            join = Part(step.name, "concat", "concat", (), owner="block", spec_path=spec_path)
            parts.append(replace(join, after=after))
        elif step.class_token:
            dims = (block.in_shape.prefix, block.in_shape.channels)
            take = Part(step.name, "select", "class token", dims, owner="block", spec_path=spec_path)
            parts.append(replace(take, after=after))
        elif step.rejoin:
            back = Part(step.name, "concat", "rejoin", block.out_shape.dims, owner="block", spec_path=spec_path)
            parts.append(replace(back, after=(*(after or (previous,)), IN), detail="in front of the other tokens"))
        else:
            assert step.child is not None
            child = block.child(step.child)
            name = local[step.name] if step.name == step.child else step.name
            title = f"{child.kind}: {child.component}" if child.kind in ("mixer", "ffn") else name
            source = after[0] if after else previous
            opened = _opened(name, child, title, depth, source)
            if after is not None and opened and opened[0].after is None:
                opened[0] = replace(opened[0], after=after)
            parts += opened
        previous = local.get(step.name, step.name)
    return [replace(part, attrs={"mixers": [character(block)]}) for part in parts]


def _merge(copies: Sequence[Sequence[Part]]) -> list[Part]:
    """One list of parts standing for several identical blocks: numbers summed, module paths joined."""
    merged = []
    for same in zip(*copies, strict=True):
        modules = tuple(m for part in same for m in part.modules)
        params, flops = sum(p.params for p in same), sum(p.flops for p in same)
        merged.append(replace(same[0], params=params, flops=flops, modules=modules))
    return merged


def _reading(parts: Sequence[Part], old: str, new: str) -> list[Part]:
    """``parts`` with every explicit read of ``old`` made a read of ``new``."""
    return [
        part if part.after is None else replace(part, after=tuple(new if name == old else name for name in part.after))
        for part in parts
    ]


def head_parts(head: Node, norm: Node, norm_id: str) -> tuple[list[Part], bool]:
    """The head as its layers (whole if it planned none) in the order its forward runs them, and whether the
    last stage's ``norm`` (drawn as ``norm_id``) is among them: where the head applies it."""
    head_type = cast("type[HeadSpec]", registry.get("head", head.component))
    form = head_type.steps(head) if head.children else HeadSteps()
    parts = _opened("head", head, f"head: {head.component}", 3)

    def mark(part: Part, name: str) -> Part:
        return replace(part, name=name, component=head.component, owner="head", spec_path="head", parent="head")

    if form.start is not None:
        name, title, dims, detail = form.start
        start = mark(Part(name, "concat", title, dims, detail=detail), f"head.{name}")
        parts = [start, *_reading(parts, IN, start.name)]
    names = [part.name for part in parts]
    placed = form.norm_after is not None and f"head.{form.norm_after}" in names
    if placed:
        at = names.index(f"head.{form.norm_after}")
        whole = _whole(norm_id, norm, f"norm: {norm.component}", describe(norm))
        detail = ", ".join(filter(None, (whole.detail, f"{norm.module_path}, applied by the head")))
        # It keeps the shape of what it reads: the pooled vector, the class token, or the tokens with it.
        drawn = replace(whole, dims=parts[at].dims, detail=detail, after=(names[at],), parent="head")
        parts = [*parts[: at + 1], drawn, *_reading(parts[at + 1 :], names[at], norm_id)]
    if form.combine is not None and {f"head.{name}" for name in form.combine[0]} <= set(names):
        reads, how = tuple(f"head.{name}" for name in form.combine[0]), form.combine[1]
        combine = Part("combine", "combine", "combine", head.out_shape.dims, detail=how, after=reads)
        parts.append(mark(combine, "head.combine"))
    return parts, placed


@dataclass
class Drawing:
    """The picture's graph as plain data: attributes, nodes and edges, in drawing order.

    ``nodes`` maps node ids to attributes; ``succ`` and ``pred`` map every node to its successors
    and predecessors with the (shared) edge attributes, as networkx keeps a directed graph, so
    :meth:`edges` comes out in the same order as ``DiGraph.edges``. Rendering reads a drawing
    directly and never loads networkx (about 70 ms of ``archspec render``); :func:`to_graph` gives
    the same graph as a ``networkx.DiGraph``.
    """

    attrs: dict[str, Any]
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    succ: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    pred: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def add_node(self, node: str, **attrs: Any) -> None:
        self.nodes.setdefault(node, {}).update(attrs)
        self.succ.setdefault(node, {})
        self.pred.setdefault(node, {})

    def add_edge(self, source: str, target: str, **attrs: Any) -> None:
        for node in (source, target):
            self.add_node(node)
        edge = self.succ[source].setdefault(target, {})
        edge.update(attrs)
        self.pred[target][source] = edge

    def edges(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(source, target, attrs) for source, targets in self.succ.items() for target, attrs in targets.items()]

    def in_edges(self, node: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [(source, node, attrs) for source, attrs in self.pred[node].items()]


class _Builder:
    def __init__(self, plan: Plan, depth: int) -> None:
        self.plan, self.depth = plan, depth
        last = plan.stages[-1]
        self.head_parts, self.norm_in_head = head_parts(plan.head, last.norm, f"stages[{last.index}].norm")
        stages = {
            f"stage {s.index + 1}": {
                "index": s.index,
                "dim": s.dim,
                "grid": list(s.grid),
                "depth": len(s.blocks),
                "params": s.params,
                "flops": s.flops,
                "shape": str(s.out_shape),
            }
            for s in plan.stages
        }
        self.drawing = Drawing(
            {
                "name": plan.name,
                "params": plan.params,
                "flops": plan.flops,
                "input": str(plan.input),
                "output": str(plan.out_shape),
                "depth": depth,
                "stages": stages,
                "groups": {},
            }
        )

    def add(self, parts: Sequence[Part], inputs: list[str], prefix: str = "", **marks: Any) -> list[str]:
        """Add ``parts`` fed by ``inputs``; return the ids nothing among ``parts`` reads: their outputs."""
        ids: dict[str, list[str]] = {IN: inputs}
        previous, added, read = inputs, [], set()
        for part in parts:
            node_id = ".".join(filter(None, (prefix, part.name)))
            sources = previous if part.after is None else [s for name in part.after for s in ids[name]]
            self._node(node_id, part, prefix, marks)
            for source in sources:
                self._edge(source, node_id, "data")
            for source in ids[part.residual] if part.residual is not None else []:
                self._edge(source, node_id, "residual")
                read.add(source)
            read.update(sources)
            ids[part.name] = previous = [node_id]
            if part.parent:
                ids[part.parent] = [node_id]  # an opened part stands for its parent's output until the next
            added.append(node_id)
        return [node_id for node_id in added if node_id not in read]

    def _node(self, node_id: str, part: Part, prefix: str, marks: dict[str, Any]) -> None:
        attrs: dict[str, Any] = {
            "kind": part.kind,
            "component": part.component,
            "owner": part.owner or part.kind,
            "title": part.title,
            "detail": part.detail,
            "shape": "×".join(map(str, part.dims)),
            "dims": list(part.dims),
            "params": part.params,
            "flops": part.flops,
            "module_path": part.modules[0] if part.modules else "",
            "module_paths": list(part.modules),
            "spec_path": part.spec_path,
            **part.attrs,
            **marks,
        }
        if part.parent is not None:
            attrs["parent"] = ".".join(filter(None, (prefix, part.parent)))
        numbers = (
            f"{format_params(part.params)} params, {format_flops(part.flops)}" if part.params or part.flops else ""
        )
        lines = (part.title, blocks_text(attrs), part.detail, attrs["shape"], numbers)
        attrs["label"] = "\n".join(line for line in lines if line)
        self.drawing.add_node(node_id, **attrs)

    def _edge(self, source: str, target: str, kind: str) -> None:
        node = self.drawing.nodes[source]
        self.drawing.add_edge(source, target, kind=kind, shape=node["shape"], dims=list(node["dims"]))

    def stage(self, stage: StagePlan, inputs: list[str]) -> list[str]:
        stage_id, cluster = f"stages[{stage.index}]", f"stage {stage.index + 1}"
        norm_in_head = stage.index == len(self.plan.stages) - 1 and self.norm_in_head  # drawn by the head
        if self.depth == 0:
            mixers = list(dict.fromkeys(character(block) for block in stage.blocks))
            detail = f"{stage.embed.component} {stage.embed.kind}, {len(stage.blocks)} blocks: {', '.join(mixers)}"
            names = ("patch_embed", "block") if norm_in_head else ("patch_embed", "block", "norm")
            modules = tuple(f"{name}{stage.index + 1}" for name in names)
            params, flops = stage.params, stage.flops
            if norm_in_head:
                params, flops = params - stage.norm.params, flops - stage.norm.flops
            dims = stage.blocks[-1].out_shape.dims if stage.blocks else stage.embed.out_shape.dims
            numbers = (dims, params, flops, modules, detail)
            part = Part(stage_id, "stage", cluster, *numbers, component="stage", spec_path=stage_id)
            return self.add([replace(part, attrs={"mixers": mixers})], inputs)
        embed = stage.embed
        title = f"{embed.kind}: {embed.component}"
        outputs = self.add(_opened("", embed, title, self.depth), inputs, format_path(embed.spec_path), cluster=cluster)
        for group in collapse([block_key(block) for block in stage.blocks]):
            outputs = self.group(stage, group, outputs, cluster)
        if norm_in_head:
            return outputs
        norm = _whole(f"{stage_id}.norm", stage.norm, f"norm: {stage.norm.component}", describe(stage.norm))
        return self.add([norm], outputs, cluster=cluster)

    def group(self, stage: StagePlan, group: Group, inputs: list[str], cluster: str) -> list[str]:
        blocks = stage.blocks[group.first : group.last + 1]
        unit = blocks[: group.period]
        ffns = {_ffn(block) for block in unit}
        names = [character(b) if len(ffns) == 1 else f"{character(b)}/{_ffn(b)}" for b in unit]
        title = f"{names[0]} block" if group.period == 1 else f"({', '.join(names)})×{group.repeat}"
        parts = {child.kind: child for child in unit[0].children}
        mixer, ffn = parts.get("mixer"), parts.get("ffn")
        settings = [describe(mixer) if mixer is not None and group.period == 1 else ""]
        if ffn is not None:
            settings.append(f"{ffn.component} ffn, {describe(ffn)}".strip(", "))
        if mixer is None and ffn is None and group.period == 1:
            settings.append(describe(unit[0]))
        detail = " · ".join(text for text in settings if text)
        group_id = f"stages[{stage.index}].blocks[{span(group.first, group.last).replace('–', '-')}]"
        marks: dict[str, Any] = {"blocks": [group.first, group.last], "count": group.count, "period": group.period}
        marks["repeat"] = group.repeat
        mixers = list(dict.fromkeys(character(block) for block in unit))
        params, flops = sum(b.params for b in blocks), sum(b.flops for b in blocks)
        if self.depth == 1:
            modules = tuple(m for block in blocks for m in block.module_paths)
            numbers = (stage.out_shape.dims, params, flops, modules, detail)
            part = Part(group_id, "block", title, *numbers, component="block", spec_path=format_path(unit[0].spec_path))
            return self.add([replace(part, attrs={"mixers": mixers})], inputs, cluster=cluster, **marks)
        about = {"cluster": cluster, "title": title, "detail": detail, "mixers": mixers}
        self.drawing.attrs["groups"][group_id] = {**about, "params": params, "flops": flops, **marks}
        outputs = inputs
        for k in range(group.period):
            merged = _merge([_block_parts(block, self.depth) for block in blocks[k :: group.period]])
            prefix = f"stages[{stage.index}].blocks[{group.first + k}]"
            outputs = self.add(merged, outputs, prefix, cluster=cluster, group=group_id, **marks)
        return outputs

    def head(self, inputs: list[str]) -> list[str]:
        return self.add(self.head_parts, inputs)


def to_drawing(plan: Plan, depth: int = 1) -> Drawing:
    """The plan as a drawing at ``depth`` 0 (stages), 1 (blocks), 2 (inside blocks) or 3 (layers).

    Raises:
        ValueError: ``depth`` is not 0, 1, 2 or 3.
    """
    if depth not in DEPTHS:
        raise ValueError(f"depth must be 0, 1, 2 or 3, got {depth}")
    builder = _Builder(plan, depth)
    outputs = builder.add([Part("input", "input", "input", plan.input.dims, detail="image")], [])
    for stage in plan.stages:
        outputs = builder.stage(stage, outputs)
    outputs = builder.head(outputs)
    builder.add([Part("output", "output", "output", plan.out_shape.dims, detail="logits")], outputs)
    return builder.drawing


def to_graph(plan: Plan, depth: int = 1) -> nx.DiGraph:
    """The plan as a ``networkx.DiGraph`` at ``depth``: :func:`to_drawing`'s nodes, edges and attributes.

    Raises:
        ValueError: ``depth`` is not 0, 1, 2 or 3.
    """
    import networkx as nx

    drawing = to_drawing(plan, depth)
    graph = nx.DiGraph(**drawing.attrs)
    graph.add_nodes_from(drawing.nodes.items())
    graph.add_edges_from(drawing.edges())
    return graph


def to_node_link(graph: nx.DiGraph) -> dict[str, Any]:
    """The graph as networkx node-link data (``nodes`` and ``edges`` lists), ready for ``json.dumps``."""
    import networkx as nx

    try:
        data: dict[str, Any] = nx.node_link_data(graph, edges="edges")
    except TypeError:  # networkx before 3.4 calls the keyword ``link``
        data = nx.node_link_data(graph, link="edges")
    return data


def _scalar(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | tuple | dict) else value


def write_graphml(graph: nx.DiGraph, path: str | Path | BinaryIO) -> None:
    """Write GraphML (for Gephi, yEd, ...); lists and mappings become JSON text, as GraphML holds scalars only."""
    import networkx as nx

    flat = nx.DiGraph(**{key: _scalar(value) for key, value in graph.graph.items()})
    flat.add_nodes_from((n, {k: _scalar(v) for k, v in attrs.items()}) for n, attrs in graph.nodes(data=True))
    flat.add_edges_from((u, v, {k: _scalar(x) for k, x in attrs.items()}) for u, v, attrs in graph.edges(data=True))
    nx.write_graphml(flat, str(path) if isinstance(path, Path) else path)
