"""Plan → ``networkx.DiGraph``: the structure a picture of the model is drawn from. Torch-free.

``depth`` picks the detail: 0 draws one node per stage; 1 the stem, downsamples, block groups,
stage norms and head; 2 opens each block into norm1, mixer, add, norm2, ffn, add, with residual
edges into the adds; 3 opens every component listed in :data:`LAYERS` into its layers (the stem's
convs, the mixer's convs, FFT and filter, q/kv/proj, fc1/fc2, the head's class-attention blocks).
Input and output nodes frame every depth.

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
``stages[0].norm``, ``head``. Node attributes: ``kind``, ``component`` (the registered type it is
or belongs to), ``owner`` (the plan-node kind it belongs to), ``title``, ``detail``, ``label``,
``shape`` and ``dims`` (its output), ``params``, ``flops``, ``module_path(s)``, ``spec_path``,
and where they apply ``cluster``, ``group``, ``parent``, ``mixers``, ``blocks``, ``count``,
``period`` and ``repeat``. Edges carry ``kind`` ("data" or "residual"), ``shape`` and ``dims``,
which are always their source node's output. The last stage's norm is drawn at the end of its
stage, where the plan keeps it, although the head is what applies it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import networkx as nx

from archspec.errors import format_path
from archspec.flops import attention_flops, complex_mul_flops, conv2d_flops, conv_out, fft2_plane_flops, linear_flops
from archspec.plan import Node, Plan, Shape, StagePlan

DEPTHS = (0, 1, 2, 3)
MAX_PERIOD = 8  # a longer repeating unit is not what a reader sees as a pattern
IN = "<in>"  # in Part.after or Part.residual: whatever feeds the parts being added


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


def args_text(node: Node) -> str:
    """A node's own settings, such as ``heads 10`` or ``hidden 256``; the stage's width and grid go without saying."""
    shown = []
    for key, value in node.args.items():
        if key in ("dim", "cin", "height", "width", "eps", "num_classes") or value is None or value is False:
            continue
        if isinstance(value, list):
            shown.append(f"{len(value)} {key}")
        elif not isinstance(value, dict):
            shown.append(key if value is True else f"{key} {value}")
    return ", ".join(shown)


def block_key(block: Node) -> str:
    """What two blocks must share to collapse: every child's type and arguments (not the drop-path rate)."""
    return repr([(child.kind, child.component, sorted(child.args.items())) for child in block.children])


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


# The layers of each known component, for depth 3. Their numbers must add up to the component's
# plan node; a component missing here, or whose layers no longer add up, is drawn whole.


def _grid(shape: Shape) -> tuple[int, int]:
    return shape.grid or (1, 1)


def _conv(
    name: str, cin: int, cout: int, k: int, stride: int, pad: int, bias: bool, grid: Sequence[int], module: str
) -> Part:
    out = (conv_out(grid[0], k, stride, pad), conv_out(grid[1], k, stride, pad))
    detail = f"Conv2d {k}×{k}" + (f"/{stride}" if stride > 1 else "") + f", {cin}→{cout}"
    params = cin * cout * k * k + cout * bias
    return Part(name, "conv", name, (cout, *out), params, conv2d_flops(cin, cout, k, out), (module,), detail)


def _norm(name: str, shape: Shape, module: str) -> Part:
    return Part(name, "norm", name, shape.dims, 2 * shape.channels, 0, (module,), "LayerNorm")


def _linear(name: str, tokens: int, cin: int, cout: int, module: str, bias: bool = True) -> Part:
    flops = linear_flops(tokens, cin, cout)
    params = cin * cout + cout * bias
    return Part(name, "linear", name, (tokens, cout), params, flops, (module,), f"Linear {cin}→{cout}")


def _stem_conv(node: Node) -> list[Part]:
    base, grid = node.module_path, _grid(node.in_shape)
    parts = []
    for k, a in enumerate(node.args["layers"]):
        conv = _conv(f"layers[{k}]", a["cin"], a["cout"], a["kernel"], a["stride"], a["padding"], a["bias"], grid, "")
        # Each layer is Conv2d, BatchNorm2d (a weight and a bias per channel) and ReLU, drawn as one.
        modules = tuple(f"{base}.conv.{3 * k + j}" for j in range(3))
        detail = conv.detail.replace("Conv2d", "Conv-BN-ReLU")
        conv = replace(conv, title=f"conv {k + 1}", detail=detail, params=conv.params + 2 * a["cout"], modules=modules)
        parts.append(conv)
        grid = conv.dims[1], conv.dims[2]
    p = node.args["proj"]
    proj = _conv("proj", p["cin"], p["cout"], p["kernel"], p["stride"], p["padding"], p["bias"], grid, f"{base}.proj")
    return [*parts, proj, _norm("norm", node.out_shape, f"{base}.norm")]


def _patch_stem(node: Node) -> list[Part]:
    a, base = node.args, node.module_path
    proj = _conv("proj", a["cin"], a["dim"], a["patch"], a["patch"], 0, True, _grid(node.in_shape), f"{base}.proj")
    return [proj, _norm("norm", node.out_shape, f"{base}.norm")]


def _conv_downsample(node: Node) -> list[Part]:
    a, base = node.args, node.module_path
    grid = _grid(node.in_shape)
    proj = _conv("proj", a["cin"], a["dim"], a["kernel"], a["stride"], a["padding"], True, grid, f"{base}.proj")
    return [proj, _norm("norm", node.out_shape, f"{base}.norm")]


def _pool_downsample(node: Node) -> list[Part]:
    a, base = node.args, node.module_path
    out = _grid(node.out_shape)
    pool = Part("pool", "pool", "pool", (a["cin"], *out), modules=(f"{base}.pool",))
    parts = [replace(pool, detail=f"{a['pool']} {a['kernel']}×{a['kernel']}/{a['stride']}")]
    if a["project"]:
        parts.append(_conv("proj", a["cin"], a["dim"], 1, 1, 0, True, out, f"{base}.proj"))
    return [*parts, _norm("norm", node.out_shape, f"{base}.norm")]


def _spectral(node: Node) -> list[Part]:
    a, base = node.args, node.module_path
    dim, height, width = a["dim"], a["height"], a["width"]
    bins = height * (width // 2 + 1)
    fft = dim * fft2_plane_flops(height, width)
    spectrum = (height, width // 2 + 1, dim)  # complex, channels last
    filter_ = Part("filter", "filter", "global filter", spectrum, 2 * bins * dim, complex_mul_flops(bins * dim))
    parts = [
        Part("fft", "fft", "rfft2", spectrum, 0, fft, detail="complex, ortho"),
        replace(filter_, modules=(f"{base}.complex_weight",), detail="complex weight"),
        Part("ifft", "fft", "irfft2", (height, width, dim), 0, fft, detail="ortho"),
    ]

    def conv(key: str, module: str) -> list[Part]:
        k = a[key]
        return [_conv(key, dim, dim, k, 1, k // 2, True, (height, width), f"{base}.{module}")] if k else []

    return [*conv("conv_in", "conv_input"), *parts, *conv("conv_out", "conv_output")]


def _attention(node: Node) -> list[Part]:
    a, base = node.args, node.module_path
    dim, tokens = a["dim"], node.in_shape.dims[0]
    sdpa = Part("sdpa", "sdpa", "sdpa", (tokens, dim), 0, attention_flops(tokens, tokens, dim))
    return [
        replace(_linear("q", tokens, dim, dim, f"{base}.q", a["qkv_bias"]), after=(IN,)),
        replace(_linear("kv", tokens, dim, 2 * dim, f"{base}.kv", a["qkv_bias"]), after=(IN,)),
        replace(sdpa, detail=f"softmax(qkᵀ)v, {a['heads']} heads", after=("q", "kv")),
        _linear("proj", tokens, dim, dim, f"{base}.proj"),
    ]


def _mlp(node: Node) -> list[Part]:
    a, base = node.args, node.module_path
    tokens = node.in_shape.dims[0]
    return [
        _linear("fc1", tokens, a["dim"], a["hidden"], f"{base}.fc1"),
        Part("act", "act", "act", (tokens, a["hidden"]), modules=(f"{base}.act",), detail="GELU"),
        _linear("fc2", tokens, a["hidden"], a["dim"], f"{base}.fc2"),
    ]


def _pvt2(node: Node) -> list[Part]:
    hidden, tokens = node.args["hidden"], node.in_shape.dims[0]
    flops = conv2d_flops(hidden, hidden, 3, _grid(node.in_shape), groups=hidden)
    dwconv = Part("dwconv", "conv", "dwconv", (tokens, hidden), 10 * hidden, flops, (f"{node.module_path}.dwconv",))
    fc1, act, fc2 = _mlp(node)
    return [fc1, replace(dwconv, detail=f"Conv2d 3×3 depthwise, {hidden}"), act, fc2]


def _classifier(
    name: str, reads: str, tokens: int, dim: int, classes: int, after: tuple[str, ...] | None = None
) -> Part:
    linear = _linear(name, tokens, dim, classes, name)
    return replace(
        linear, dims=(tokens, classes) if tokens > 1 else (classes,), detail=f"{reads}, {linear.detail}", after=after
    )


def _pool_head(node: Node) -> list[Part]:
    dim, classes = node.args["dim"], node.args["num_classes"]
    return [
        Part("pool", "pool", "pool", (dim,), detail="mean over tokens"),
        _classifier("head", "pooled", 1, dim, classes),
    ]


def _class_attention_head(node: Node) -> list[Part]:
    a = node.args
    dim, hidden, classes, tokens = a["dim"], a["hidden"], a["num_classes"], node.in_shape.dims[0]
    # A ClassBlock holds two LayerNorms, the kv, q and proj Linears and an FFN; only kv reads every token.
    params = 4 * dim + 4 * dim * dim + 4 * dim + 2 * dim * hidden + hidden + dim
    flops = linear_flops(tokens + 1, dim, 2 * dim) + 2 * linear_flops(1, dim, dim)
    flops += attention_flops(1, tokens + 1, dim) + 2 * linear_flops(1, dim, hidden)
    block = Part("", "class_block", "class block", (tokens + 1, dim), params, flops)
    detail = f"class attention, {a['heads']} heads, mlp {hidden}"
    parts = [
        replace(
            block, name=f"post_network[{i}]", title=f"class block {i}", modules=(f"post_network.{i}",), detail=detail
        )
        for i in range(a["blocks"])
    ]
    last = (parts[-1].name,) if parts else (IN,)
    parts.append(_classifier("head", "class token", 1, dim, classes, last))
    if a["aux_head"]:
        parts.append(_classifier("aux_head", "every token", tokens, dim, classes, last))
    return parts


LAYERS: dict[tuple[str, str], Callable[[Node], list[Part]]] = {
    ("stem", "conv"): _stem_conv,
    ("stem", "patch"): _patch_stem,
    ("downsample", "conv"): _conv_downsample,
    ("downsample", "maxpool"): _pool_downsample,
    ("downsample", "avgpool"): _pool_downsample,
    ("mixer", "spectral"): _spectral,
    ("mixer", "attention"): _attention,
    ("ffn", "mlp"): _mlp,
    ("ffn", "pvt2"): _pvt2,
    ("head", "pool"): _pool_head,
    ("head", "class_attention"): _class_attention_head,
}


def _whole(name: str, node: Node, title: str, detail: str = "") -> Part:
    numbers = (node.out_shape.dims, node.params, node.flops, node.module_paths, detail)
    path = format_path(node.spec_path)
    return Part(name, node.kind, title, *numbers, component=node.component, owner=node.kind, spec_path=path)


def _opened(name: str, node: Node, title: str, depth: int, source: str = IN) -> list[Part]:
    """``node`` as one part, or at depth 3 as its layers named ``name.layer``; ``source`` is the part before it."""
    whole = _whole(name, node, title, args_text(node))
    layers = LAYERS[node.kind, node.component](node) if depth >= 3 and (node.kind, node.component) in LAYERS else []
    if not layers or sum(p.params for p in layers) != node.params or sum(p.flops for p in layers) != node.flops:
        return [whole]  # not opened, or its layer formulas drifted from the component's: draw it whole, not wrong
    prefix = f"{name}." if name else ""

    def local(ref: str) -> str:
        return source if ref == IN else prefix + ref

    return [
        replace(
            layer,
            name=prefix + layer.name,
            after=None if layer.after is None else tuple(map(local, layer.after)),
            component=node.component,
            owner=node.kind,
            spec_path=whole.spec_path,
            parent=name,
        )
        for layer in layers
    ]


def _block_parts(block: Node, depth: int) -> list[Part]:
    norm1, mixer, norm2, ffn = block.children
    add = Part("", "add", "+", block.out_shape.dims, owner="block", spec_path=format_path(block.spec_path))
    parts = [
        _whole("norm1", norm1, "norm1"),
        *_opened("mixer", mixer, f"mixer: {mixer.component}", depth, "norm1"),
        replace(add, name="add1", residual=IN),
        _whole("norm2", norm2, "norm2"),
        *_opened("ffn", ffn, f"ffn: {ffn.component}", depth, "norm2"),
        replace(add, name="add2", residual="add1"),
    ]
    return [replace(part, attrs={"mixers": [mixer.component]}) for part in parts]


def _merge(copies: Sequence[Sequence[Part]]) -> list[Part]:
    """One list of parts standing for several identical blocks: numbers summed, module paths joined."""
    merged = []
    for same in zip(*copies, strict=True):
        modules = tuple(m for part in same for m in part.modules)
        params, flops = sum(p.params for p in same), sum(p.flops for p in same)
        merged.append(replace(same[0], params=params, flops=flops, modules=modules))
    return merged


class _Builder:
    def __init__(self, plan: Plan, depth: int) -> None:
        self.plan, self.depth = plan, depth
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
        self.graph = nx.DiGraph(
            name=plan.name,
            params=plan.params,
            flops=plan.flops,
            input=str(plan.input),
            output=str(plan.out_shape),
            depth=depth,
            stages=stages,
            groups={},
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
        self.graph.add_node(node_id, **attrs)

    def _edge(self, source: str, target: str, kind: str) -> None:
        node = self.graph.nodes[source]
        self.graph.add_edge(source, target, kind=kind, shape=node["shape"], dims=list(node["dims"]))

    def stage(self, stage: StagePlan, inputs: list[str]) -> list[str]:
        stage_id, cluster = f"stages[{stage.index}]", f"stage {stage.index + 1}"
        if self.depth == 0:
            mixers = list(dict.fromkeys(block.args["mixer"] for block in stage.blocks))
            detail = f"{stage.embed.component} {stage.embed.kind}, {len(stage.blocks)} blocks: {', '.join(mixers)}"
            modules = tuple(f"{name}{stage.index + 1}" for name in ("patch_embed", "block", "norm"))
            numbers = (stage.out_shape.dims, stage.params, stage.flops, modules, detail)
            part = Part(stage_id, "stage", cluster, *numbers, component="stage", spec_path=stage_id)
            return self.add([replace(part, attrs={"mixers": mixers})], inputs)
        embed = stage.embed
        title = f"{embed.kind}: {embed.component}"
        outputs = self.add(_opened("", embed, title, self.depth), inputs, format_path(embed.spec_path), cluster=cluster)
        for group in collapse([block_key(block) for block in stage.blocks]):
            outputs = self.group(stage, group, outputs, cluster)
        norm = _whole(f"{stage_id}.norm", stage.norm, f"norm: {stage.norm.component}")
        return self.add([norm], outputs, cluster=cluster)

    def group(self, stage: StagePlan, group: Group, inputs: list[str], cluster: str) -> list[str]:
        blocks = stage.blocks[group.first : group.last + 1]
        unit = blocks[: group.period]
        ffns = {block.args["ffn"] for block in unit}
        names = [b.args["mixer"] if len(ffns) == 1 else f"{b.args['mixer']}/{b.args['ffn']}" for b in unit]
        title = f"{names[0]} block" if group.period == 1 else f"({', '.join(names)})×{group.repeat}"
        _, mixer, _, ffn = unit[0].children
        settings = [args_text(mixer) if group.period == 1 else "", f"{ffn.component} ffn, {args_text(ffn)}".strip(", ")]
        detail = " · ".join(text for text in settings if text)
        group_id = f"stages[{stage.index}].blocks[{span(group.first, group.last).replace('–', '-')}]"
        marks: dict[str, Any] = {"blocks": [group.first, group.last], "count": group.count, "period": group.period}
        marks["repeat"] = group.repeat
        mixers = list(dict.fromkeys(block.args["mixer"] for block in unit))
        params, flops = sum(b.params for b in blocks), sum(b.flops for b in blocks)
        if self.depth == 1:
            modules = tuple(m for block in blocks for m in block.module_paths)
            numbers = (stage.out_shape.dims, params, flops, modules, detail)
            part = Part(group_id, "block", title, *numbers, component="block", spec_path=format_path(unit[0].spec_path))
            return self.add([replace(part, attrs={"mixers": mixers})], inputs, cluster=cluster, **marks)
        about = {"cluster": cluster, "title": title, "detail": detail, "mixers": mixers}
        self.graph.graph["groups"][group_id] = {**about, "params": params, "flops": flops, **marks}
        outputs = inputs
        for k in range(group.period):
            merged = _merge([_block_parts(block, self.depth) for block in blocks[k :: group.period]])
            prefix = f"stages[{stage.index}].blocks[{group.first + k}]"
            outputs = self.add(merged, outputs, prefix, cluster=cluster, group=group_id, **marks)
        return outputs

    def head(self, inputs: list[str]) -> list[str]:
        head = self.plan.head
        return self.add(_opened("", head, f"head: {head.component}", self.depth), inputs, "head")


def to_graph(plan: Plan, depth: int = 1) -> nx.DiGraph:
    """The plan as a directed graph at ``depth`` 0 (stages), 1 (blocks), 2 (inside blocks) or 3 (layers).

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
    return builder.graph


def to_node_link(graph: nx.DiGraph) -> dict[str, Any]:
    """The graph as networkx node-link data (``nodes`` and ``edges`` lists), ready for ``json.dumps``."""
    try:
        data: dict[str, Any] = nx.node_link_data(graph, edges="edges")
    except TypeError:  # networkx before 3.4 calls the keyword ``link``
        data = nx.node_link_data(graph, link="edges")
    return data


def _scalar(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | tuple | dict) else value


def write_graphml(graph: nx.DiGraph, path: str | Path | BinaryIO) -> None:
    """Write GraphML (for Gephi, yEd, ...); lists and mappings become JSON text, as GraphML holds scalars only."""
    flat = nx.DiGraph(**{key: _scalar(value) for key, value in graph.graph.items()})
    flat.add_nodes_from((n, {k: _scalar(v) for k, v in attrs.items()}) for n, attrs in graph.nodes(data=True))
    flat.add_edges_from((u, v, {k: _scalar(x) for k, x in attrs.items()}) for u, v, attrs in graph.edges(data=True))
    nx.write_graphml(flat, str(path) if isinstance(path, Path) else path)
