"""Drawing plans: golden DOT text, real renders through Graphviz's dot, formats, failures, no torch."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib

import networkx as nx
import pytest
from conftest import DATA, ROOT, SPECS, tiny

import archspec
from archspec.graph import DEPTHS, to_graph
from archspec.output import OutputExistsError
from archspec.render import FORMATS, RenderError, render, to_dot

SPECTFORMER = ROOT / "specs" / "spectformer.yaml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
GOLDEN_HINT = (
    "regenerate with: python3 -c \"import sys; sys.path.insert(0, 'tests'); from conftest import tiny; "
    "import archspec; from archspec.render import to_dot; "
    "open('tests/data/tiny.dot', 'w').write(to_dot(archspec.plan(archspec.validate(tiny()))))\" "
    "and look at the picture before committing it"
)


def spectformer() -> archspec.Plan:
    return archspec.plan(archspec.load_spec(SPECTFORMER))


def png_size(data: bytes) -> tuple[int, int]:
    """Decode a PNG far enough to trust it: signature, every chunk's CRC, and pixel data of the header's size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    width, height, bits, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = 1 + (width * channels * bits + 7) // 8  # a filter byte, then the pixels
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * row
    assert b"IEND" in chunks
    return width, height


def test_dot_golden_for_the_tiny_spec():
    text = to_dot(archspec.plan(archspec.validate(tiny())))
    assert text == (DATA / "tiny.dot").read_text(encoding="utf-8"), GOLDEN_HINT


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_dot_holds_every_node_stage_and_legend(path, depth):
    plan = archspec.plan(archspec.load_spec(path))
    text = to_dot(plan, depth)
    graph = to_graph(plan, depth)
    for node in graph:  # DOT quotes ids that are not plain words
        assert f'\t"{node}" [' in text or f"\t{node} [" in text
    assert text.count(" -> ") == graph.number_of_edges()
    assert text.count("style=dashed") == (8 if depth >= 2 else 0)  # the residual edges
    assert (text.count("subgraph cluster_stage_") == 4) == (depth > 0)
    assert "subgraph cluster_legend" in text and "spectral mixer" in text and "attention mixer" in text
    assert f"{plan.params:,} params" in text


@needs_dot
def test_real_render_of_spectformer(tmp_path):
    plan = spectformer()
    svg = render(plan, tmp_path / "spectformer.svg")
    png = render(plan, tmp_path / "spectformer.png")
    assert svg.stat().st_size > 10_000
    text = svg.read_text(encoding="utf-8")
    assert "<svg" in text and "SpectFormer" in text and "14,183,334 params" in text
    assert ">stage 4<" in text and ">dim 448 · 7×7<" in text and ">blocks 0–5 ×6<" in text
    width, height = png_size(png.read_bytes())
    assert 200 < width < 2000 and 800 < height < 2000  # one screen at the default depth
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


@needs_dot
def test_real_render_to_pdf_and_deeper(tmp_path):
    plan = spectformer()
    assert render(plan, tmp_path / "m.pdf").read_bytes().startswith(b"%PDF")
    _, height = png_size(render(plan, tmp_path / "m.png", depth=3).read_bytes())
    assert height > 2000  # every layer drawn: taller than one screen, but it still renders


@pytest.mark.parametrize("fmt", ["dot", "json", "graphml"])
def test_formats_without_dot(fmt, tmp_path, monkeypatch):
    monkeypatch.setattr("archspec.render.shutil.which", lambda name: None)
    plan = spectformer()
    out = render(plan, tmp_path / f"model.{fmt}", depth=2)
    graph = to_graph(plan, 2)
    if fmt == "dot":
        assert out.read_text(encoding="utf-8") == to_dot(plan, 2)
    elif fmt == "json":
        data = json.loads(out.read_text(encoding="utf-8"))
        assert len(data["nodes"]) == graph.number_of_nodes() and len(data["edges"]) == graph.number_of_edges()
    else:
        assert nx.read_graphml(out).number_of_nodes() == graph.number_of_nodes()


def test_missing_dot_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr("archspec.render.shutil.which", lambda name: None)
    with pytest.raises(RenderError) as raised:
        render(spectformer(), tmp_path / "model.png")
    assert str(raised.value) == (
        "writing PNG needs Graphviz's `dot` program, which is not on PATH (the Python package `graphviz` "
        "only writes DOT text). Install Graphviz: `apt-get install graphviz` on Debian/Ubuntu, "
        "`brew install graphviz` on macOS, or `conda install graphviz`. A .dot, .json or .graphml file needs no `dot`."
    )
    assert list(tmp_path.iterdir()) == []
    assert render(spectformer(), tmp_path / "model.dot").read_text(encoding="utf-8").startswith("digraph SpectFormer {")


def test_unknown_format(tmp_path):
    with pytest.raises(
        RenderError, match=r"model\.jpg: format 'jpg'; valid formats: svg, png, pdf, dot, json, graphml"
    ):
        render(spectformer(), tmp_path / "model.jpg")
    with pytest.raises(RenderError, match="no format"):
        render(spectformer(), tmp_path / "model")
    assert render(spectformer(), tmp_path / "model", fmt="dot").read_text(encoding="utf-8").startswith("digraph")
    assert set(FORMATS) == {"svg", "png", "pdf", "dot", "json", "graphml"}


def test_existing_file_is_kept(tmp_path, monkeypatch):
    out = tmp_path / "model.svg"
    out.write_text("old")
    # a dot that fails, so the test needs no Graphviz: the existing file is refused before dot runs
    monkeypatch.setattr("archspec.render.shutil.which", lambda name: "/bin/false")
    with pytest.raises(OutputExistsError):
        render(spectformer(), out)
    with pytest.raises(RenderError, match=r"Graphviz's dot failed \(exit 1\)"):
        render(spectformer(), out, force=True)
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.svg"]  # no temporary file left behind
    with pytest.raises(RenderError, match=r"the folder .* does not exist"):
        render(spectformer(), tmp_path / "missing" / "model.dot")


def test_render_does_not_import_torch():
    code = (
        "import sys, archspec, archspec.render, archspec.graph\n"
        "plan = archspec.plan(archspec.load_spec(sys.argv[1]))\n"
        "text = archspec.render.to_dot(plan, 3)\n"
        "assert archspec.graph.to_graph(plan, 3).number_of_nodes() == 70\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "print(len(text))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(SPECTFORMER)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 10_000


def _dot_lines(spec: str, depth: int) -> list[str]:
    return to_dot(archspec.plan(archspec.load_spec(ROOT / "specs" / spec)), depth).splitlines()


@pytest.mark.parametrize("depth", DEPTHS)
def test_dot_draws_the_aux_head_and_its_combination(depth):
    """SpectFormer-H: the head applies stage 4's norm after its class block; both classifiers read the norm's
    output and their logits meet in one combine node, the only node feeding the output, at every depth."""
    lines = _dot_lines("spectformer-h-s.yaml", depth)
    edges = [line.strip() for line in lines if " -> " in line]
    labelled = depth <= 1  # deeper, only edges that change the shape are labelled
    expected = [
        '"head.cls_token" -> "head.post_network[0]" [label=" 50×448"]',
        '"head.post_network[0]" -> "stages[3].norm"' + (' [label=" 50×448"]' if labelled else ""),
        '"stages[3].norm" -> "head.head"' + (' [label=" 50×448"]' if labelled else ""),
        '"stages[3].norm" -> "head.aux_head"' + (' [label=" 50×448"]' if labelled else ""),
        '"head.head" -> "head.combine" [label=" 1000"]',
        '"head.aux_head" -> "head.combine" [label=" 49×1000"]',
        '"head.combine" -> output' + (' [label=" 1000"]' if labelled else ""),
    ]
    assert edges[-7:] == expected
    assert [e for e in edges if e.endswith("output") or "-> output " in e] == [expected[-1]]
    head = lines[lines.index("\tsubgraph cluster_layers_head {") :]
    names = [line.split(" [", 1)[0].strip() for line in head[2:8]]
    assert names == [
        '"head.cls_token"', '"head.post_network[0]"', '"stages[3].norm"', '"head.head"', '"head.aux_head"',
        '"head.combine"',
    ]  # fmt: skip
    assert "<B>combine</B>" in head[7] and "head + 0.5 × max over tokens of aux_head" in head[7]
    assert "norm4, applied by the head" in head[4] and "→ 50×448" in head[4]
    assert "head:</FONT><BR ALIGN='LEFT'/><FONT POINT-SIZE=\"8\">class_attention" in head[1]


@pytest.mark.parametrize(
    ("spec", "edges"),
    [
        ("zoo/convnext_tiny.yaml", ['"head.pool" -> "stages[3].norm" [label=" 768"]',
                                    '"stages[3].norm" -> "head.head" [label=" 768"]']),
        ("zoo/deit_tiny_patch16_224.yaml", ['"head.cls" -> "stages[0].norm" [label=" 192"]',
                                            '"stages[0].norm" -> "head.head" [label=" 192"]']),
        ("spectformer.yaml", ['"head.post_network[0]" -> "stages[3].norm" [label=" 50×448"]',
                              '"stages[3].norm" -> "head.head" [label=" 50×448"]']),
    ],
)  # fmt: skip
def test_dot_draws_the_final_norm_where_the_head_applies_it(spec, edges):
    lines = [line.strip() for line in _dot_lines(spec, 1)]
    norm = edges[0].split(" -> ")[1].split(" [")[0]
    assert [line for line in lines if " -> " in line and norm in line] == edges
