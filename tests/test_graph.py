"""The plan as a graph, for every shipped spec and depth: node counts, collapsing, totals, shapes, residuals."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import networkx as nx
import pytest
from conftest import SPECS, tiny
from test_components import _with_component
from torch import nn

import archspec
from archspec import registry
from archspec.graph import DEPTHS, Group, collapse, to_drawing, to_graph, to_node_link, write_graphml
from archspec.nodes import Plan

# Counted by hand from the specs. Every shipped spec has four stages whose blocks are all alike and a
# class-attention head, drawn at every depth as its steps: class token, class block 0, then stage 4's
# norm (which the head applies there, so stage 4 ends with its blocks) and the classifier; SpectFormer-H
# adds the aux head and the node combining both logits. So depth 0 is input + 4 stages + 4 head nodes
# + output = 10 (12 with the aux head), depth 1 input + 4 × (embed, one group) + 3 norms + 4 + output
# = 17 (19), and depth 2 opens each group into one block of 6 nodes: 17 + 4 × 5 = 37 (39). At depth
# 3 a block of the documented SpectFormer is norm1, mixer, add, norm2, ffn, add with the mixer as
# conv_in, rfft2, filter, irfft2, conv_out (spectral, 13 nodes) or q, kv, sdpa, proj (attention, 12),
# and pvt2 as fc1, dwconv, act, fc2; its conv stem is 3 layers + proj + norm, a downsample proj + norm:
# 1 + (5 + 13 + 1) + (2 + 13 + 1) + (2 + 12 + 1) + (2 + 12) + 4 + 1 = 70. SpectFormer-H has no
# spectral convs (−2 per spectral stage) and the aux head and its combination (+2): 70 − 4 + 2 = 68.
EXPECTED_NODES = {
    "spectformer.yaml": (10, 17, 37, 70),
    "spectformer-h-s.yaml": (12, 19, 39, 68),
    "spectformer-h-b.yaml": (12, 19, 39, 68),
    "spectformer-h-l.yaml": (12, 19, 39, 68),
}
# (data, residual) edges: one data edge into every node but the input, plus one more into each sdpa
# (q and kv) and into the combination of the two classifiers; two residual edges per drawn block.
EXPECTED_EDGES = {
    "spectformer.yaml": ((9, 0), (16, 0), (36, 8), (71, 8)),
    "spectformer-h-s.yaml": ((12, 0), (19, 0), (39, 8), (70, 8)),
    "spectformer-h-b.yaml": ((12, 0), (19, 0), (39, 8), (70, 8)),
    "spectformer-h-l.yaml": ((12, 0), (19, 0), (39, 8), (70, 8)),
}
# Per stage, the depth-1 groups as (first, last, count): each stage is one run of identical blocks.
EXPECTED_GROUPS = {
    "spectformer.yaml": [[(0, 2, 3)], [(0, 3, 4)], [(0, 5, 6)], [(0, 2, 3)]],
    "spectformer-h-s.yaml": [[(0, 2, 3)], [(0, 3, 4)], [(0, 5, 6)], [(0, 2, 3)]],
    "spectformer-h-b.yaml": [[(0, 2, 3)], [(0, 3, 4)], [(0, 11, 12)], [(0, 2, 3)]],
    "spectformer-h-l.yaml": [[(0, 2, 3)], [(0, 5, 6)], [(0, 17, 18)], [(0, 2, 3)]],
}
# The tiny spec: patch stem, a 1-block spectral stage, a 2-block attention stage, and a pool head drawn
# as pool, stage 2's norm (applied to the pooled vector) and the classifier.
TINY_NODES = (7, 10, 20, 31)
TINY_EDGES = ((6, 0), (9, 0), (19, 4), (31, 4))

HEAD_STEPS = ("concat", "combine")  # drawn steps of a head's forward that plan no layer of their own
COMPONENTS = [(cls.kind, cls.type_name()) for cls in registry.components()]
spec_ids = pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
depths = pytest.mark.parametrize("depth", DEPTHS)


@functools.cache
def load(path: Path) -> Plan:
    return archspec.plan(archspec.load_spec(path))


def tiny_plan(**changes: object) -> Plan:
    return archspec.plan(archspec.validate(tiny(**changes)))


def edge_counts(graph: nx.DiGraph) -> tuple[int, int]:
    kinds = [kind for _, _, kind in graph.edges(data="kind")]
    return kinds.count("data"), kinds.count("residual")


def plan_shapes(plan: Plan) -> dict[str, str]:
    """The output shape the plan gives each graph node that stands for a plan node, by graph id (the last
    stage's norm drawn among the head's layers has the shape of what it reads: see test_head_form)."""
    shapes = {"input": str(plan.input), "output": str(plan.out_shape), "head": str(plan.head.out_shape)}
    shapes |= {f"head.{child.name}": str(child.out_shape) for child in plan.head.children}
    for stage in plan.stages:
        at = f"stages[{stage.index}]"
        shapes[at] = shapes[f"{at}.norm"] = str(stage.out_shape)
        shapes["stem" if stage.index == 0 else f"{at}.downsample"] = str(stage.embed.out_shape)
        for j, block in enumerate(stage.blocks):
            shapes[f"{at}.blocks[{j}]"] = str(block.out_shape)  # a group of one block
            for child in block.children:
                name = child.kind if child.kind in ("mixer", "ffn") else child.name
                shapes[f"{at}.blocks[{j}].{name}"] = str(child.out_shape)
            for step in block.flow:
                if step.add:
                    shapes[f"{at}.blocks[{j}].{step.name}"] = str(block.out_shape)
            for k in range(j + 1, len(stage.blocks)):  # a group of blocks j to k
                shapes[f"{at}.blocks[{j}-{k}]"] = str(block.out_shape)
    return shapes


def test_every_spec_has_expected_counts():
    names = sorted(p.name for p in SPECS)
    assert names == sorted(EXPECTED_NODES) == sorted(EXPECTED_EDGES) == sorted(EXPECTED_GROUPS)


@depths
@spec_ids
def test_node_and_edge_counts(path, depth):
    graph = to_graph(load(path), depth)
    assert graph.number_of_nodes() == EXPECTED_NODES[path.name][depth]
    assert edge_counts(graph) == EXPECTED_EDGES[path.name][depth]
    assert nx.is_directed_acyclic_graph(graph)


@depths
def test_tiny_counts(depth):
    graph = to_graph(tiny_plan(), depth)
    assert (graph.number_of_nodes(), edge_counts(graph)) == (TINY_NODES[depth], TINY_EDGES[depth])


@depths
@spec_ids
def test_totals_equal_the_plan(path, depth):
    plan = load(path)
    graph = to_graph(plan, depth)
    assert sum(params for _, params in graph.nodes(data="params")) == plan.params
    assert sum(flops for _, flops in graph.nodes(data="flops")) == plan.flops
    assert graph.graph["params"] == plan.params
    stages = graph.graph["stages"]
    assert [stages[f"stage {s.index + 1}"]["params"] for s in plan.stages] == [s.params for s in plan.stages]
    for name, stage in stages.items():  # a stage's nodes add up to its total, its norm wherever it is drawn
        inside = [attrs["params"] for _, attrs in graph.nodes(data=True) if attrs.get("cluster") == name]
        norm = graph.nodes.get(f"stages[{stage['index']}].norm", {})
        elsewhere = norm["params"] if norm.get("parent") == "head" else 0
        assert sum(inside) + (elsewhere if depth else 0) == (stage["params"] if depth else 0)


def assert_edge_shapes(plan: Plan, depth: int) -> None:
    graph = to_graph(plan, depth)
    expected = plan_shapes(plan)
    checked = 0
    for source, _, attrs in graph.edges(data=True):
        assert attrs["shape"] == graph.nodes[source]["shape"] == "×".join(map(str, attrs["dims"]))
        if graph.nodes[source].get("parent") == "head" and source not in plan_heads(plan):
            checked += 1  # the head's own steps and the norm it applies: test_head_form checks them
        elif source in expected:
            assert attrs["shape"] == expected[source], source
            checked += 1
    if depth < 3:  # above the layers every edge leaves a node the plan has a shape for, or the head's
        assert checked == graph.number_of_edges()


def plan_heads(plan: Plan) -> set[str]:
    """The graph ids of the head's planned layers."""
    return {f"head.{child.name}" for child in plan.head.children}


@depths
@spec_ids
def test_edge_shapes_are_the_plans(path, depth):
    assert_edge_shapes(load(path), depth)


@depths
def test_tiny_edge_shapes_are_the_plans(depth):
    assert_edge_shapes(tiny_plan(), depth)


@spec_ids
def test_groups_cover_each_stage(path):
    plan = load(path)
    graph = to_graph(plan, 1)
    for stage, expected in zip(plan.stages, EXPECTED_GROUPS[path.name], strict=True):
        groups = [
            a
            for _, a in graph.nodes(data=True)
            if a["kind"] == "block" and a.get("cluster") == f"stage {stage.index + 1}"
        ]
        assert [(*g["blocks"], g["count"]) for g in groups] == expected
        assert sum(g["count"] for g in groups) == len(stage.blocks)
        assert sum(g["params"] for g in groups) == sum(block.params for block in stage.blocks)
    deep = to_graph(plan, 2).graph["groups"]
    assert [(*g["blocks"], g["count"]) for g in deep.values()] == [
        g for stage in EXPECTED_GROUPS[path.name] for g in stage
    ]


@spec_ids
def test_residual_edges_only_inside_blocks(path):
    plan = load(path)
    for depth in (0, 1):
        assert edge_counts(to_graph(plan, depth))[1] == 0
    for depth in (2, 3):
        graph = to_graph(plan, depth)
        residual = [(u, v) for u, v, kind in graph.edges(data="kind") if kind == "residual"]
        assert len(residual) == 8
        assert {graph.nodes[v]["kind"] for _, v in residual} == {"add"}
        # add2's skip starts at add1; add1's at whatever fed the block.
        assert sorted(v.rsplit(".", 1)[1] for _, v in residual) == ["add1"] * 4 + ["add2"] * 4


def test_pattern_collapses_to_one_group():
    pattern = [{"type": "spectral", "blocks": 1}, {"type": "attention", "heads": 2, "blocks": 1}] * 2
    stages = tiny()["stages"]
    stages[1] |= {"depth": 4, "mixer": pattern}
    plan = tiny_plan(stages=stages)
    graph = to_graph(plan, 1)
    (group,) = (a for _, a in graph.nodes(data=True) if a["kind"] == "block" and a["cluster"] == "stage 2")
    assert group["title"] == "(spectral, attention)×2"
    assert (group["blocks"], group["count"], group["period"], group["repeat"]) == ([0, 3], 4, 2, 2)
    assert group["mixers"] == ["spectral", "attention"]
    assert graph.has_node("stages[1].blocks[0-3]")
    deep = to_graph(plan, 2)
    assert deep.number_of_nodes() == TINY_NODES[2] + 6  # one drawn block per pattern position
    assert deep.nodes["stages[1].blocks[1].mixer"]["component"] == "attention"
    assert deep.nodes["stages[1].blocks[1].mixer"]["module_paths"] == ["block2.1.m", "block2.3.m"]
    for depth in DEPTHS:
        assert sum(p for _, p in to_graph(plan, depth).nodes(data="params")) == plan.params
        assert_edge_shapes(plan, depth)


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("aaa", [(0, 1, 3)]),
        ("abab", [(0, 2, 2)]),
        ("aabab", [(0, 1, 1), (1, 2, 2)]),
        ("abababa", [(0, 2, 3), (6, 1, 1)]),
        ("abcabcab", [(0, 3, 2), (6, 1, 1), (7, 1, 1)]),
        ("aabbaabb", [(0, 1, 2), (2, 1, 2), (4, 1, 2), (6, 1, 2)]),  # a unit holding a run is no pattern
        ("ab", [(0, 1, 1), (1, 1, 1)]),
        ("", []),
    ],
)
def test_collapse(keys, expected):
    assert collapse(list(keys)) == [Group(*group) for group in expected]


@spec_ids
def test_node_attributes(path):
    layers = to_graph(load(path), 3)
    assert {"stem.layers[0]", "stem.proj", "stem.norm", "stages[1].downsample.proj", "head.head"} <= set(layers)
    required = {"kind", "component", "owner", "title", "label", "shape", "dims", "params", "flops", "spec_path"}
    for _, attrs in layers.nodes(data=True):
        assert required <= set(attrs)
        assert attrs["module_path"] == (attrs["module_paths"][0] if attrs["module_paths"] else "")
    blocks = to_graph(load(path), 1)
    assert blocks.nodes["stages[1].downsample"]["module_paths"] == ["patch_embed2"]
    assert blocks.nodes["stages[0].blocks[0-2]"]["module_paths"] == ["block1.0", "block1.1", "block1.2"]
    assert blocks.nodes["stages[0].blocks[0-2]"]["spec_path"] == "stages[0].mixer"


def assert_modules_hold_params(graph: nx.DiGraph, model: nn.Module) -> None:
    """Every node's params are exactly the parameters of the modules it names in the built model."""
    for node, attrs in graph.nodes(data=True):
        held = 0
        for name in attrs["module_paths"]:
            try:
                held += sum(p.numel() for p in model.get_submodule(name).parameters())
            except AttributeError:  # a bare parameter, such as the spectral filter's complex_weight
                held += model.get_parameter(name).numel()
        assert held == attrs["params"], node


@depths
@spec_ids
def test_module_paths_hold_the_params(path, depth):
    assert_modules_hold_params(to_graph(load(path), depth), _built(path))


@functools.cache
def _built(path: Path) -> nn.Module:
    return archspec.build(load(path))


@pytest.mark.parametrize(("kind", "name"), COMPONENTS, ids=[f"{k}-{n}" for k, n in COMPONENTS])
def test_component_layers_hold_its_params(kind, name):
    """Generated from the registry: at depth 3 a component is opened into the layers it planned."""
    plan = archspec.plan(archspec.validate(_with_component(kind, name)))
    graph = to_graph(plan, 3)
    layers = [
        a
        for _, a in graph.nodes(data=True)
        if (a["owner"], a["component"]) == (kind, name) and "parent" in a and a["kind"] not in HEAD_STEPS
    ]
    node = next((node for node in plan.walk() if (node.kind, node.component) == (kind, name)), None)
    if node is None and kind == "part":
        pytest.skip(f"part {name!r} is planned as the component it holds, whose own case covers it")
    assert node is not None
    if node.kind != "block":  # a block's parts are drawn at depth 2 already, in the order of its flow
        titles = [part.title or part.name for part in node.children]
        assert [a["title"] for a in layers[: len(node.children)]] == titles
    assert sum(p for _, p in graph.nodes(data="params")) == plan.params
    assert sum(f for _, f in graph.nodes(data="flops")) == plan.flops
    assert_modules_hold_params(graph, archspec.build(plan))
    assert_edge_shapes(plan, 3)


def test_a_node_without_children_is_drawn_whole():
    """A component that plans no layers (a plugin, say) stays one node at depth 3."""
    plan = tiny_plan()
    whole = replace(plan, head=replace(plan.head, children=()))
    graph, opened = to_graph(whole, 3), to_graph(plan, 3)
    assert "head" in graph and {"head.pool", "head.head"} <= set(opened) - set(graph)
    assert graph.number_of_nodes() == opened.number_of_nodes() - 1
    assert sum(p for _, p in graph.nodes(data="params")) == plan.params


def test_bad_depth():
    with pytest.raises(ValueError, match="depth must be 0, 1, 2 or 3, got 4"):
        to_graph(tiny_plan(), 4)


@depths
def test_node_link_and_graphml_round_trip(depth, tmp_path):
    graph = to_graph(load(SPECS[0]), depth)
    data = json.loads(json.dumps(to_node_link(graph)))
    assert [n["id"] for n in data["nodes"]] == list(graph)
    assert len(data["edges"]) == graph.number_of_edges()
    assert data["graph"]["params"] == graph.graph["params"]
    write_graphml(graph, tmp_path / "g.graphml")
    back = nx.read_graphml(tmp_path / "g.graphml")
    assert list(back) == list(graph)
    assert sum(params for _, params in back.nodes(data="params")) == graph.graph["params"]
    assert json.loads(back.graph["stages"]) == graph.graph["stages"]


@spec_ids
@pytest.mark.parametrize("depth", DEPTHS)
def test_drawing_and_networkx_graph_agree(path, depth):
    plan = load(path)
    drawing, graph = to_drawing(plan, depth), to_graph(plan, depth)
    assert graph.graph == drawing.attrs
    assert list(graph.nodes(data=True)) == list(drawing.nodes.items())
    assert list(graph.edges(data=True)) == drawing.edges()  # same order, so the DOT text is the same
    for node in drawing.nodes:
        ours = sorted((u, v, attrs["kind"]) for u, v, attrs in drawing.in_edges(node))
        assert sorted(graph.in_edges(node, data="kind")) == ours


def test_render_to_dot_does_not_load_networkx(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from archspec.cli import main; "
        f"status = main(['render', 'specs/spectformer.yaml', '-o', {str(tmp_path / 'x.dot')!r}, '-q']); "
        "print('networkx' in sys.modules, status)"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert result.stdout.splitlines()[-1] == "False 0", result.stderr


def _token_head_spec() -> dict[str, object]:
    attention = {"type": "attention", "heads": 2}
    stage = {"dim": 8, "depth": 2, "mixer": attention, "ffn": {"type": "mlp", "ratio": 2}}
    return tiny(stem={"type": "patch", "patch": 4, "cls_token": True}, stages=[stage], head={"type": "token"})


CLASS_ATTENTION = {"type": "class_attention", "heads": 2}
COMBINE = ("head.combine", "output", "5")
# Per head type and setting: the spec, and the edges (source, target, shape) from the last block ("…") to the
# output, as each head's forward runs: PoolModel norms the mean (after_pool) or the tokens (before_pool),
# TokenModel the class token it reads, ClassAttentionModel the tokens after its class blocks, which head
# (class token) and aux_head (the other tokens) read before their logits are combined.
HEAD_FORMS = {
    "pool-after_pool": (
        tiny(),
        [("…", "head.pool", "16×16"), ("head.pool", "stages[1].norm", "16"), ("stages[1].norm", "head.head", "16"),
         ("head.head", "output", "5")],
    ),
    "pool-before_pool": (
        tiny(head={"type": "pool", "norm": "before_pool"}),
        [("…", "stages[1].norm", "16×16"), ("stages[1].norm", "head.pool", "16×16"), ("head.pool", "head.head", "16"),
         ("head.head", "output", "5")],
    ),
    "pool-mlp": (
        tiny(head={"type": "pool", "mlp": {"ratio": 2}}),
        [("…", "head.pool", "16×16"), ("head.pool", "stages[1].norm", "16"), ("stages[1].norm", "head.fc1", "16"),
         ("head.fc1", "head.act", "32"), ("head.act", "head.norm", "32"), ("head.norm", "head.fc2", "32"),
         ("head.fc2", "output", "5")],
    ),
    "pool-conv": (
        tiny(head={"type": "pool", "norm": "before_pool", "conv": {"channels": 24}}),
        [("…", "stages[1].norm", "16×16"), ("stages[1].norm", "head.conv", "16×16"),
         ("head.conv", "head.norm", "24×4×4"), ("head.norm", "head.act", "24×4×4"), ("head.act", "head.pool", "24×4×4"),
         ("head.pool", "head.head", "24"), ("head.head", "output", "5")],
    ),
    "token": (
        _token_head_spec(),
        [("…", "head.cls", "65×8"), ("head.cls", "stages[0].norm", "8"), ("stages[0].norm", "head.head", "8"),
         ("head.head", "output", "5")],
    ),
    "class_attention": (
        tiny(head=CLASS_ATTENTION),
        [("…", "head.cls_token", "16×16"), ("head.cls_token", "head.post_network[0]", "17×16"),
         ("head.post_network[0]", "stages[1].norm", "17×16"), ("stages[1].norm", "head.head", "17×16"),
         ("head.head", "output", "5")],
    ),
    "class_attention-aux_head": (
        tiny(head=CLASS_ATTENTION | {"aux_head": True}),
        [("…", "head.cls_token", "16×16"), ("head.cls_token", "head.post_network[0]", "17×16"),
         ("head.post_network[0]", "stages[1].norm", "17×16"), ("stages[1].norm", "head.head", "17×16"),
         ("stages[1].norm", "head.aux_head", "17×16"), ("head.head", "head.combine", "5"),
         ("head.aux_head", "head.combine", "16×5"), COMBINE],
    ),
    "class_attention-aux_head-no-blocks": (
        tiny(head=CLASS_ATTENTION | {"aux_head": True, "blocks": 0}),
        [("…", "head.cls_token", "16×16"), ("head.cls_token", "stages[1].norm", "17×16"),
         ("stages[1].norm", "head.head", "17×16"), ("stages[1].norm", "head.aux_head", "17×16"),
         ("head.head", "head.combine", "5"), ("head.aux_head", "head.combine", "16×5"), COMBINE],
    ),
}  # fmt: skip
head_forms = pytest.mark.parametrize("form", HEAD_FORMS, ids=str)


def head_tail(plan: Plan, depth: int) -> list[tuple[str, str, str]]:
    """The edges into the head's nodes, the last stage's norm and the output; sources elsewhere are "…"."""
    drawing = to_drawing(plan, depth)
    ours = {node for node, a in drawing.nodes.items() if a.get("parent") == "head"}
    ours |= {f"stages[{plan.stages[-1].index}].norm", "output"}
    return [(u if u in ours else "…", v, a["shape"]) for u, v, a in drawing.edges() if v in ours]


@depths
@head_forms
def test_head_form(form, depth):
    """The last stage's norm is drawn where the head applies it, and the aux head's logits are combined."""
    spec, tail = HEAD_FORMS[form]
    plan = archspec.plan(archspec.validate(spec))
    norm_id = f"stages[{plan.stages[-1].index}].norm"
    in_head = tail[0][1] != norm_id
    if depth == 0 and not in_head:  # the norm is part of the last stage's node
        tail = [("…", tail[1][1], tail[0][2]), *tail[2:]]
    assert head_tail(plan, depth) == tail
    graph = to_graph(plan, depth)
    if in_head:
        module = f"norm{len(plan.stages)}"
        norm = graph.nodes[norm_id]
        assert (norm["parent"], norm["detail"], norm["module_paths"]) == (
            "head",
            f"{module}, applied by the head",
            [module],
        )
        assert "cluster" not in norm
        if depth == 0:
            assert graph.nodes[f"stages[{plan.stages[-1].index}]"]["module_paths"][-1] != module
    elif depth:
        assert graph.nodes[norm_id]["cluster"] == f"stage {len(plan.stages)}" and "parent" not in graph.nodes[norm_id]
    if any(target == "head.combine" for _, target, _ in tail):
        combine = graph.nodes["head.combine"]
        assert combine["detail"] == "head + 0.5 × max over tokens of aux_head"
        assert (combine["params"], combine["flops"], combine["module_paths"]) == (0, 0, [])
    assert sum(p for _, p in graph.nodes(data="params")) == plan.params
    assert sum(f for _, f in graph.nodes(data="flops")) == plan.flops


@head_forms
def test_head_form_is_what_the_built_model_does(form):
    """The drawing against the module: the final norm sees the drawn shape, the head's modules run in the
    drawn order, and with an aux head the output is the drawn combination (eval) or both logits (training)."""
    import torch

    plan = archspec.plan(archspec.validate(HEAD_FORMS[form][0]))
    drawing = to_drawing(plan, 1)
    model = archspec.build(plan)
    norm_id = f"stages[{plan.stages[-1].index}].norm"
    region = [n for n, a in drawing.nodes.items() if a.get("parent") == "head" or n == norm_id]
    order = [path for node in region for path in drawing.nodes[node]["module_paths"]]
    calls: list[str] = []
    seen: dict[str, tuple[torch.Size, torch.Tensor]] = {}  # module path: (input shape, output)

    def record(path: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            calls.append(path)
            seen[path] = args[0].shape[1:], output

        return hook

    for path in order:
        model.get_submodule(path).register_forward_hook(record(path))
    image = torch.randn(1, *plan.input.dims)
    with torch.no_grad():
        logits = model.eval()(image)
    assert calls == order
    assert list(seen[f"norm{len(plan.stages)}"][0]) == drawing.nodes[norm_id]["dims"]
    if "head.combine" in drawing.nodes:
        head, aux = seen["head"][1], seen["aux_head"][1]
        torch.testing.assert_close(logits, head + 0.5 * aux.max(dim=1).values)
        with torch.no_grad():
            pair = archspec.nn.TokenLabelling(model.eval())(image)
        assert [tuple(t.shape) for t in pair] == [(1, 5), (1, 16, 5)]
        torch.testing.assert_close(pair[0], head)
