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
from archspec.plan import Plan

# Counted by hand from the specs. Every shipped spec has four stages whose blocks are all alike, so
# depth 1 is input + 4 × (embed, one group, norm) + head + output = 15, and depth 2 opens each group
# into one block of 6 nodes: 15 + 4 × 5 = 35. At depth 3 a block of the documented SpectFormer is
# norm1, mixer, add, norm2, ffn, add with the mixer as conv_in, rfft2, filter, irfft2, conv_out
# (spectral, 13 nodes) or q, kv, sdpa, proj (attention, 12), and pvt2 as fc1, dwconv, act, fc2;
# its conv stem is 3 layers + proj + norm, a downsample proj + norm, the head one class block +
# classifier: 1 + (5 + 13 + 1) + (2 + 13 + 1) + 2 × (2 + 12 + 1) + 2 + 1 = 69. SpectFormer-H has no
# spectral convs (−2 per spectral stage) and an aux head (+1): 69 − 4 + 1 = 66.
EXPECTED_NODES = {
    "spectformer.yaml": (7, 15, 35, 69),
    "spectformer-h-s.yaml": (7, 15, 35, 66),
    "spectformer-h-b.yaml": (7, 15, 35, 66),
    "spectformer-h-l.yaml": (7, 15, 35, 66),
}
# (data, residual) edges: one data edge into every node but the input, plus one more into each sdpa
# (q and kv) and into the output when an aux head also feeds it; two residual edges per drawn block.
EXPECTED_EDGES = {
    "spectformer.yaml": ((6, 0), (14, 0), (34, 8), (70, 8)),
    "spectformer-h-s.yaml": ((6, 0), (14, 0), (34, 8), (68, 8)),
    "spectformer-h-b.yaml": ((6, 0), (14, 0), (34, 8), (68, 8)),
    "spectformer-h-l.yaml": ((6, 0), (14, 0), (34, 8), (68, 8)),
}
# Per stage, the depth-1 groups as (first, last, count): each stage is one run of identical blocks.
EXPECTED_GROUPS = {
    "spectformer.yaml": [[(0, 2, 3)], [(0, 3, 4)], [(0, 5, 6)], [(0, 2, 3)]],
    "spectformer-h-s.yaml": [[(0, 2, 3)], [(0, 3, 4)], [(0, 5, 6)], [(0, 2, 3)]],
    "spectformer-h-b.yaml": [[(0, 2, 3)], [(0, 3, 4)], [(0, 11, 12)], [(0, 2, 3)]],
    "spectformer-h-l.yaml": [[(0, 2, 3)], [(0, 5, 6)], [(0, 17, 18)], [(0, 2, 3)]],
}
# The tiny spec: patch stem, a 1-block spectral stage, a 2-block attention stage, pool head.
TINY_NODES = (5, 9, 19, 31)
TINY_EDGES = ((4, 0), (8, 0), (18, 4), (31, 4))

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
    """The output shape the plan gives each graph node that stands for a plan node, by graph id."""
    shapes = {"input": str(plan.input), "output": str(plan.out_shape), "head": str(plan.head.out_shape)}
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
    for name, stage in stages.items():  # a stage's nodes add up to its total
        inside = [attrs["params"] for _, attrs in graph.nodes(data=True) if attrs.get("cluster") == name]
        assert sum(inside) == (stage["params"] if depth else 0)


def assert_edge_shapes(plan: Plan, depth: int) -> None:
    graph = to_graph(plan, depth)
    expected = plan_shapes(plan)
    checked = 0
    for source, _, attrs in graph.edges(data=True):
        assert attrs["shape"] == graph.nodes[source]["shape"] == "×".join(map(str, attrs["dims"]))
        if source in expected:
            assert attrs["shape"] == expected[source], source
            checked += 1
    if depth < 3:  # above the layers every edge leaves a node the plan has a shape for
        assert checked == graph.number_of_edges()


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
            a for _, a in graph.nodes(data=True) if a["kind"] == "block" and a["cluster"] == f"stage {stage.index + 1}"
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
    layers = [a for _, a in graph.nodes(data=True) if (a["owner"], a["component"]) == (kind, name) and "parent" in a]
    node = next(node for node in plan.walk() if (node.kind, node.component) == (kind, name))
    if node.kind != "block":  # a block's parts are drawn at depth 2 already, in the order of its flow
        titles = [part.args.get("title", part.name) for part in node.children]
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
