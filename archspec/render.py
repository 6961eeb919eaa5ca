"""Draw a plan: DOT text through the ``graphviz`` package; SVG, PNG and PDF through Graphviz's ``dot``. Torch-free.

The picture is laid out top to bottom: a title line with the model's totals, one cluster per stage
labelled with its width, grid and parameter total, and one node per graph node with an HTML-table
label (what it is, the blocks it covers, its settings, output shape, parameters and FLOPs), filled
by colour family with a legend. Edges are labelled with the tensor shape they carry (at depth 2 and
3 only where the shape changes, as inside a block it rarely does); residual edges are dashed.
Output files are written whole or not at all.
"""

from __future__ import annotations

import html
import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import graphviz

from archspec.errors import ArchspecError
from archspec.graph import (
    Drawing,
    blocks_text,
    format_flops,
    format_params,
    to_drawing,
    to_graph,
    to_node_link,
    write_graphml,
)
from archspec.nodes import Plan
from archspec.output import write_atomic

FORMATS = ("svg", "png", "pdf", "dot", "json", "graphml")
NEEDS_DOT = ("svg", "png", "pdf")
DOT_TIMEOUT_S = 60
FONT = "Helvetica,Arial,sans-serif"
CLUSTER_NAMES = {"cluster": "", "group": "group", "parent": "layers"}  # node attribute → DOT cluster prefix
ClusterPath = tuple[tuple[str, str], ...]

# The structural colour families, in legend order after the components' own: (fill, legend text).
# Pale fills keep black text readable.
STRUCTURE = {
    "conv": ("#d3ecc9", "conv (stem, downsample)"),
    "ffn": ("#e6dbf3", "FFN"),
    "norm": ("#e8e8e8", "norm"),
    "head": ("#f6cdd3", "head"),
    "other": ("#ffffff", "input, output, other"),
}


def colour_families() -> dict[str, tuple[str, str]]:
    """Every colour family: first each registered mixer and block that names a ``colour`` (a block is
    drawn in its mixer's colour, or in its own when it has no mixer), then :data:`STRUCTURE`."""
    from archspec import registry

    own = {
        cls.type_name(): (cls.colour, f"{cls.type_name()} {cls.kind}")
        for kind in ("mixer", "block")
        for cls in registry.components(kind)
        if cls.colour is not None
    }
    return {**own, **{name: value for name, value in STRUCTURE.items() if name not in own}}


class RenderError(ArchspecError):
    """A picture or export cannot be written: unknown format, missing ``dot`` binary, ``dot`` failing."""

    code = "AS801"


def family(attrs: dict[str, Any], families: dict[str, tuple[str, str]] | None = None) -> str:
    """The colour family of a graph node: its mixer (or block type) for blocks and mixers, else what it belongs to."""
    families = colour_families() if families is None else families
    kind: str = attrs["kind"]
    owner: str = attrs["owner"]
    if kind in ("input", "output", "add", "act"):
        return "other"
    if kind == "norm":
        return "norm"
    if owner in ("stem", "downsample"):
        return "conv"
    if owner in ("head", "ffn"):
        return owner
    mixers: list[str] = attrs.get("mixers", [])
    return mixers[0] if len(mixers) == 1 and mixers[0] in families else "other"


def _fill(attrs: dict[str, Any], families: dict[str, tuple[str, str]]) -> str:
    """One family's colour, or a gradient through each mixer's colour for a mixed pattern of blocks."""
    mixers = [m for m in attrs.get("mixers", []) if m in families]
    if attrs["kind"] in ("block", "stage") and len(mixers) > 1:
        return ":".join(families[m][0] for m in mixers)
    return families[family(attrs, families)][0]


def _text(text: str, size: float | None = None, colour: str | None = None, bold: bool = False) -> str:
    text = html.escape(text, quote=False)
    text = f"<B>{text}</B>" if bold else text
    if size is not None or colour is not None:
        size_attr = f' POINT-SIZE="{size}"' if size is not None else ""
        colour_attr = f' COLOR="{colour}"' if colour is not None else ""
        text = f"<FONT{size_attr}{colour_attr}>{text}</FONT>"
    return text


def _table(rows: list[str]) -> str:
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="0">{cells}</TABLE>>'


def _numbers(params: int, flops: int) -> str:
    return f"{format_params(params)} params · {format_flops(flops)}"


def node_label(attrs: dict[str, Any]) -> str:
    """An HTML-table label: title, blocks covered, settings, output shape, parameters and FLOPs."""
    title = attrs["title"]
    if attrs["kind"] != "block" and attrs.get("repeat", 1) > 1:
        title += f"  ×{attrs['repeat']}"  # inside a drawn group: the numbers below cover every repeat
    rows = [_text(title, bold=True)]
    if attrs["kind"] == "block" and (covered := blocks_text(attrs)):
        rows.append(_text(covered, 8))
    if attrs["detail"]:
        rows.append(_text(attrs["detail"], 7.5, "#444444"))
    rows.append(_text(f"→ {attrs['shape']}", 8))
    if attrs["params"] or attrs["flops"]:
        rows.append(_text(_numbers(attrs["params"], attrs["flops"]), 8))
    return _table(rows)


def _legend(used: list[str], families: dict[str, tuple[str, str]]) -> str:
    rows = "".join(
        f'<TR><TD BGCOLOR="{families[name][0]}" BORDER="1" WIDTH="14"></TD>'
        f'<TD ALIGN="LEFT">{_text(families[name][1], 8)}</TD></TR>'
        for name in used
    )
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="1">{rows}</TABLE>>'


def _title(drawing: Drawing) -> str:
    g = drawing.attrs
    totals = f"{g['params']:,} params · {format_flops(g['flops'])} · input {g['input']} · depth {g['depth']}"
    return f"<{_text(g['name'], 13, bold=True)}<BR/>{_text(totals, 9)}>"


def _left_lines(lines: list[str], title: str | None = None) -> str:
    """Short left-justified lines, so that the edge running down a cluster's middle stays clear of them."""
    rows = ([_text(title, 9, bold=True)] if title else []) + [_text(line, 8) for line in lines]
    return "<" + "".join(f"{row}<BR ALIGN='LEFT'/>" for row in rows) + ">"


def _cluster_label(drawing: Drawing, level: str, key: str, attrs: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The label and style of a stage cluster, a collapsed group or the layers of one component."""
    if level == "cluster":
        stage = drawing.attrs["stages"][key]
        grid = "×".join(map(str, stage["grid"]))
        lines = [
            f"dim {stage['dim']} · {grid}",
            f"{format_params(stage['params'])} params",
            format_flops(stage["flops"]),
        ]
        return _left_lines(lines, key), {"style": "rounded", "color": "#777777"}
    if level == "group":
        group = drawing.attrs["groups"][key]
        lines = [group["title"], blocks_text(group), f"{format_params(group['params'])} params"]
        return _left_lines([*lines, format_flops(group["flops"])]), {"style": "rounded,dashed", "color": "#999999"}
    return _left_lines([f"{attrs['owner']}:", attrs["component"]]), {"style": "dotted", "color": "#999999"}


def _layers_owner(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The member whose owner names a cluster of layers: not the last stage's norm drawn among the head's."""
    return next((m for m in members if m["kind"] != "norm" or m["owner"] != "norm"), members[0] if members else {})


def _cluster_id(level: str, key: str) -> str:
    return "_".join(filter(None, ("cluster", CLUSTER_NAMES[level], re.sub(r"\W+", "_", key).strip("_"))))


def _input_shapes(drawing: Drawing, node: str) -> set[str]:
    return {attrs["shape"] for _, _, attrs in drawing.in_edges(node)}


def _digraph(drawing: Drawing) -> graphviz.Digraph:
    dot = graphviz.Digraph(
        drawing.attrs["name"],
        graph_attr={
            "rankdir": "TB",
            "label": _title(drawing),
            "labelloc": "t",
            "fontname": FONT,
            "nodesep": "0.15",
            "ranksep": "0.18",
            "margin": "0.1",
            "newrank": "true",
        },
        node_attr={
            "shape": "box",
            "style": "rounded,filled",
            "fontname": FONT,
            "fontsize": "9",
            "margin": "0.08,0.03",
            "penwidth": "0.8",
            "color": "#555555",
        },
        edge_attr={"fontname": FONT, "fontsize": "7.5", "arrowsize": "0.5", "color": "#555555"},
    )
    families = colour_families()
    # Nest each node in its stage, then its collapsed group, then the component it is a layer of,
    # in the graph's order so that the DOT text reads from input to output.
    items: dict[ClusterPath, list[str | ClusterPath]] = {(): []}
    for node, attrs in drawing.nodes.items():
        path = tuple((level, attrs[level]) for level in CLUSTER_NAMES if level in attrs)
        for end in range(1, len(path) + 1):
            if path[:end] not in items:
                items[path[:end]] = []
                items[path[: end - 1]].append(path[:end])
        items[path].append(node)

    def emit(into: graphviz.Digraph, path: ClusterPath) -> None:
        for item in items[path]:
            if isinstance(item, tuple):
                level, key = item[-1]
                members = [drawing.nodes[i] for i in items[item] if isinstance(i, str)]
                with into.subgraph(name=_cluster_id(level, key)) as sub:
                    label, style = _cluster_label(drawing, level, key, _layers_owner(members))
                    sub.attr(label=label, labeljust="l", fontname=FONT, **style)
                    emit(sub, item)
            elif drawing.nodes[item]["kind"] == "add":
                into.node(item, "+", shape="circle", width="0.22", fixedsize="true", fillcolor="#ffffff")
            else:
                into.node(item, node_label(drawing.nodes[item]), fillcolor=_fill(drawing.nodes[item], families))

    emit(dot, ())
    for source, target, attrs in drawing.edges():
        if attrs["kind"] == "residual":
            dot.edge(source, target, style="dashed", color="#888888", constraint="false", tailport="e", headport="e")
        elif drawing.attrs["depth"] <= 1 or attrs["shape"] not in _input_shapes(drawing, source):
            dot.edge(source, target, label=f" {attrs['shape']}")
        else:
            dot.edge(source, target)
    used = [name for name in families if any(family(attrs, families) == name for attrs in drawing.nodes.values())]
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label=f"<{_text('legend', 8, bold=True)}>", style="rounded", color="#bbbbbb", fontname=FONT)
        legend.node("legend", _legend(used, families), shape="plain", style="")
    return dot


def to_dot(plan: Plan, depth: int = 1) -> str:
    """The plan drawn at ``depth`` (see :func:`archspec.graph.to_drawing`), as DOT text."""
    source: str = _digraph(to_drawing(plan, depth)).source
    return source


MISSING_DOT = (
    "writing {fmt} needs Graphviz's `dot` program, which is not on PATH (the Python package "
    "`graphviz` only writes DOT text). Install Graphviz: `apt-get install graphviz` on Debian/Ubuntu, "
    "`brew install graphviz` on macOS, or `conda install graphviz`. A .dot, .json or .graphml file "
    "needs no `dot`."
)


def run_dot(source: str, fmt: str) -> bytes:
    """Lay out DOT ``source`` with Graphviz's ``dot`` and return the ``fmt`` file's bytes."""
    binary = shutil.which("dot")
    if binary is None:
        raise RenderError(MISSING_DOT.format(fmt=fmt.upper()))
    try:
        done = subprocess.run(
            [binary, f"-T{fmt}"], input=source.encode(), capture_output=True, timeout=DOT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"Graphviz's dot took over {DOT_TIMEOUT_S} s; try a smaller depth") from None
    except OSError as exc:
        raise RenderError(f"cannot run {binary}: {exc.strerror}") from None
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise RenderError(f"Graphviz's dot failed (exit {done.returncode}): {message}")
    output: bytes = done.stdout
    return output


def export(plan: Plan, fmt: str, depth: int = 1) -> bytes:
    """The plan drawn at ``depth`` as the bytes of a ``fmt`` file (one of :data:`FORMATS`)."""
    if fmt in NEEDS_DOT:
        return run_dot(to_dot(plan, depth), fmt)
    if fmt == "dot":
        return to_dot(plan, depth).encode()
    graph = to_graph(plan, depth)
    if fmt == "json":
        return json.dumps(to_node_link(graph), indent=1, ensure_ascii=False).encode() + b"\n"
    buffer = io.BytesIO()
    write_graphml(graph, buffer)
    return buffer.getvalue()


def render(plan: Plan, path: str | Path, depth: int = 1, fmt: str | None = None, force: bool = False) -> Path:
    """Write the plan drawn at ``depth`` to ``path``, in ``fmt`` or else the format its suffix names.

    Formats: svg, png and pdf (laid out by Graphviz's ``dot``), dot (DOT text), json (networkx
    node-link data) and graphml (for Gephi, yEd and the like). The file is written whole or not at
    all, and an existing one is only replaced when ``force`` is set.

    Raises:
        RenderError: the format is unknown, ``dot`` is needed but missing or fails, or the folder
            does not exist.
        OutputExistsError: ``path`` exists and ``force`` is not set.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.removeprefix(".")).lower()
    if fmt not in FORMATS:
        named = f"format '{fmt}'" if fmt else "no format (the file name has no suffix)"
        raise RenderError(f"cannot write {path}: {named}; valid formats: {', '.join(FORMATS)}")
    if fmt in NEEDS_DOT and shutil.which("dot") is None:
        raise RenderError(MISSING_DOT.format(fmt=fmt.upper()))  # before any work
    if not path.parent.is_dir():
        raise RenderError(f"cannot write {path}: the folder {path.parent} does not exist")
    # The file is made inside write_atomic's guard, so an existing file is refused before any work
    # and a failing dot leaves nothing behind.
    return write_atomic(path, lambda file: file.write(export(plan, fmt, depth)), force)
