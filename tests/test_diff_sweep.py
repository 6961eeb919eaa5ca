"""diff and sweep: exact tables for known questions."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import ROOT, tiny

import archspec
from archspec.cli import main
from archspec.diff import diff_plans, format_diff
from archspec.sweep import activation_bytes, combinations, run_sweep, split_values

SPEC = str(ROOT / "specs" / "spectformer.yaml")


def _plan(*overrides: str):
    return archspec.plan(archspec.load_spec(SPEC, overrides))


def test_swapping_stage_2_to_attention():
    diff = diff_plans(_plan(), _plan("stages.1.mixer.type=attention"))
    change = "blocks 0–3 mixer: spectral(conv_in=3, conv_out=3) → attention"  # heads left to the default
    assert [(c.part, c.what, c.params, c.flops) for c in diff.changes] == [
        ("stage 2", [change], -1_346_560, -201_107_456)
    ]
    # Per block: filter 28·15·128·2 + two 3×3 convs (128·128·9 + 128) − attention (4·128² + 4·128).
    assert -1_346_560 == 4 * (4 * 128 * 128 + 4 * 128 - (28 * 15 * 128 * 2 + 2 * (128 * 128 * 9 + 128)))
    # FLOPs: attention (q/kv/proj linears + two 784×784 products) − (two convs + two FFTs + complex product).
    fft = round(28 * 2.5 * 28 * math.log2(28) + 15 * 5 * 28 * math.log2(28))
    spectral = 2 * (2 * 784 * 128 * 128 * 9) + 2 * 128 * fft + 6 * 28 * 15 * 128
    assert 4 * (2 * 784 * 128 * 512 + 4 * 784 * 784 * 128 - spectral) == -201_107_456
    assert diff.params == -1_346_560


def test_deltas_add_up_to_the_totals():
    a, b = _plan(), _plan("stages.2.depth=8", "stem.type=patch", "num_classes=10", "stages.3.dim=512",
                          "stages.3.mixer.heads=16", "head.heads=16")  # fmt: skip
    diff = diff_plans(a, b)
    assert sum(c.params for c in diff.changes) == b.params - a.params
    assert sum(c.flops for c in diff.changes) == b.flops - a.flops
    assert [c.part for c in diff.changes] == ["stage 1", "stage 2", "stage 3", "stage 4", "head"]
    data = json.loads(format_diff(diff, "a", "b", "json"))
    assert data["delta"] == {"params": b.params - a.params, "flops": b.flops - a.flops}


def test_identical_specs():
    text = format_diff(diff_plans(_plan(), _plan()), "A", "B")
    assert text.splitlines()[-1] == "no structural differences"


def _tiny(**changes: object) -> archspec.Plan:
    return archspec.plan(archspec.validate(tiny(**changes)))


def _stages(index: int, **fields: object) -> list[dict[str, object]]:
    stages = tiny()["stages"]
    stages[index] |= fields
    return stages


# One case per kind of phrase: the change to the tiny spec (patch stem; a 1-block spectral stage of width
# 8 on 8×8; a 2-block attention stage of width 16 on 4×4; pool head; drop_path_rate 0.1) and the exact
# changes diff reports as (part, phrases, params Δ).
PHRASES = {
    "image size": (
        {"input": {"channels": 3, "size": 48}},
        [("input", ["3×32×32 → 3×48×48"], 0), ("stage 1", ["grid 8×8 → 12×12"], 704),
         ("stage 2", ["grid 4×4 → 6×6"], 0), ("head", ["input 16×16 → 36×16, from stage 2"], 0)],
    ),
    "width": (
        {"stages": _stages(1, dim=24)},
        [("stage 2", ["dim 16 → 24"], 5912), ("head", ["input 16×16 → 16×24, from stage 2"], 40)],
    ),
    "width upstream": (
        {"stages": _stages(0, dim=12)},
        [("stage 1", ["dim 8 → 12"], 880), ("stage 2", ["input 8×8×8 → 12×8×8, from stage 1"], 576)],
    ),
    "depth up": (
        {"stages": _stages(1, depth=3)},
        [
            ("stage 2", [
                "depth 2 → 3",
                "block 2 added: attention(heads=2) + mlp(ratio=2.0)",
                "drop-path rates change (the ramp spans the model's 3 → 4 blocks)",
            ], 2224),
        ],
    ),
    "depth down": (
        {"stages": _stages(1, depth=1)},
        [("stage 2", ["depth 2 → 1", "block 1 removed",
                      "drop-path rates change (the ramp spans the model's 3 → 2 blocks)"], -2224)],
    ),
    "drop_path_rate": (
        {"drop_path_rate": 0.2},
        [("stage 2", ["drop-path rates change (drop_path_rate 0.1 → 0.2)"], 0)],
    ),
    "drop_path_rate and depth": (
        {"drop_path_rate": 0.3, "stages": _stages(1, depth=3)},
        [
            ("stage 2", [
                "depth 2 → 3",
                "block 2 added: attention(heads=2) + mlp(ratio=2.0)",
                "drop-path rates change (drop_path_rate 0.1 → 0.3 and the ramp spans the model's 3 → 4 blocks)",
            ], 2224),
        ],
    ),
    "mixer type": (
        {"stages": _stages(1, mixer={"type": "spectral"})},
        [("stage 2", ["blocks 0–1 mixer: attention(heads=2) → spectral"], -1408)],
    ),
    "mixer field": (
        {"stages": _stages(1, mixer={"type": "attention", "heads": 4})},
        [("stage 2", ["blocks 0–1 mixer: attention heads 2 → 4"], 0)],
    ),
    "ffn field": (
        {"stages": _stages(0, ffn={"type": "mlp", "ratio": 4})},
        [("stage 1", ["block 0 ffn: mlp ratio 2.0 → 4.0"], 272)],
    ),
    "block type": (
        {"stages": _stages(0, block={"type": "convnext"}, mixer={"type": "dwconv"})},
        [
            ("stage 1", [
                "block 0 block: prenorm → convnext",
                "block 0 flow: norm1 → m → drop_path → +x → norm2 → mlp → drop_path → +x ⇒ m → norm → mlp →"
                " drop_path → +x",
                "block 0 mixer: spectral → dwconv",
            ], -256),
        ],
    ),
    "block field": (
        {"stages": _stages(0, block={"type": "prenorm", "layer_scale": 1e-5})},
        [
            (
                "stage 1",
                [
                    "block 0 block: prenorm layer_scale None → 1e-05",
                    "block 0 flow: norm1 → m → drop_path → +x → norm2 → mlp → drop_path → +x"
                    " ⇒ norm1 → m → ls1 → drop_path → +x → norm2 → mlp → ls2 → drop_path → +x",
                ],
                16,
            )
        ],
    ),
    "block norm": (
        {"stages": _stages(0, block={"type": "prenorm", "norm": {"type": "layernorm", "eps": 1e-5}})},
        [("stage 1", ["block 0 block: prenorm norm: layernorm eps 1e-06 → 1e-05"], 0)],
    ),
    "end norm": (
        {"stages": _stages(0, norm={"type": "layernorm", "eps": 1e-5})},
        [("stage 1", ["end norm: layernorm eps 1e-06 → 1e-05"], 0)],
    ),
    "stem type": (
        {"stem": {"type": "conv", "layers": [{"channels": 8, "stride": 2}]}},
        [("stage 1", ["stem: patch → conv(layers=[1 item])"], 424)],
    ),
    "stem field": (
        {"stem": {"type": "patch", "patch": 2}},
        [
            ("stage 1", [
                "grid 8×8 → 16×16",
                "stem: patch patch 4 → 2",
            ], 1376),
            ("stage 2", [
                "grid 4×4 → 8×8",
            ], 0),
            ("head", [
                "input 16×16 → 64×16, from stage 2",
            ], 0),
        ],
    ),
    "downsample field": (
        {"stages": _stages(1, downsample={"type": "conv", "kernel": 2, "padding": 0})},
        [("stage 2", ["downsample: conv kernel 3 → 2, padding None → 0"], -640)],
    ),
    "stage added": (
        {"stages": [*tiny()["stages"], {"dim": 32, "depth": 1, "mixer": {"type": "attention", "heads": 4}}]},
        [("stage 2", ["drop-path rates change (the ramp spans the model's 3 → 4 blocks)"], 0),
         ("stage 3", ["added: dim 32, depth 1"], 17_472), ("head", ["input 16×16 → 4×32, from stage 3"], 80)],
    ),
    "stage removed": (  # stage 1's one block keeps drop-path 0: the first block of the ramp
        {"stages": tiny()["stages"][:1]},
        [("stage 2", ["removed: dim 16, depth 2"], -5_680), ("head", ["input 16×16 → 64×8, from stage 1"], -40)],
    ),
    "head type": (
        {"head": {"type": "class_attention", "heads": 2}},
        [("head", ["pool → class_attention(heads=2)"], 3280)],
    ),
    "head field": (
        {"head": {"type": "pool", "norm": "before_pool"}},
        [("head", ["pool norm after_pool → before_pool"], 0)],
    ),
    "classes": ({"num_classes": 7}, [("head", ["classes 5 → 7"], 34)]),
    "activation": (
        {"stages": _stages(0, ffn={"type": "mlp", "ratio": 2, "act": "silu"})},
        [("stage 1", ["block 0 ffn: mlp act: gelu → silu"], 0)],
    ),
    "norm kind": (
        {"stages": _stages(0, block={"type": "prenorm", "norm": "rmsnorm"})},
        [("stage 1", ["block 0 block: prenorm norm: layernorm → rmsnorm"], -16)],
    ),
    "sr_norm": (
        {"stages": _stages(1, mixer={"type": "attention", "heads": 2, "sr_ratio": 2, "sr_norm": "rmsnorm"})},
        [("stage 2", ["blocks 0–1 mixer: attention sr_ratio 1 → 2, sr_norm: layernorm(eps=1e-05) → rmsnorm"], 2112)],
    ),
    "flow": (
        {"stages": _stages(0, block={"type": "flow", "flow": [["m", "drop_path", "add", "norm1"],
                                                               ["mlp", "drop_path", "add", "norm2"]]})},
        [("stage 1", ["block 0 block: prenorm → flow",
                      "block 0 flow: norm1 → m → drop_path → +x → norm2 → mlp → drop_path → +x"
                      " ⇒ m → drop_path → +x → norm1 → mlp → drop_path → +norm1 → norm2"], 0)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", PHRASES, ids=str)
def test_every_phrase(kind):
    changes, expected = PHRASES[kind]
    a, b = _tiny(), _tiny(**changes)
    diff = diff_plans(a, b)
    assert [(c.part, c.what, c.params) for c in diff.changes] == expected
    assert sum(c.params for c in diff.changes) == b.params - a.params
    assert sum(c.flops for c in diff.changes) == b.flops - a.flops


def test_phrase_table_text():
    a, b = _tiny(), _tiny(drop_path_rate=0.2, stages=_stages(1, dim=24))
    change = "dim 16 → 24; drop-path rates change (drop_path_rate 0.1 → 0.2)"
    assert len(change) == 62  # the widest cell sets the column's width; numbers are right-aligned
    assert format_diff(diff_plans(a, b), "tiny", "wider", "md").splitlines() == [
        "- A: tiny — Tiny: 7,141 params, 0.000 GFLOPs",
        "- B: wider — Tiny: 13,093 params, 0.001 GFLOPs",
        "",
        f"| part          | {'change':62} |   params Δ |   GFLOPs Δ |",
        f"|:--------------|:{'-' * 63}|-----------:|-----------:|",
        f"| stage 2       | {change} |     +5,912 |     +0.000 |",
        f"| head          | {'input 16×16 → 16×24, from stage 2':62} |        +40 |     +0.000 |",
        f"| total (B − A) | {'':62} |     +5,952 |     +0.000 |",
    ]
    assert format_diff(diff_plans(a, b), "tiny", "wider").splitlines() == [
        "A: tiny — Tiny: 7,141 params, 0.000 GFLOPs",
        "B: wider — Tiny: 13,093 params, 0.001 GFLOPs",
        "",
        f"part           {'change':62}    params Δ    GFLOPs Δ",
        f"-------------  {'-' * 62}  ----------  ----------",
        f"stage 2        {change}      +5,912      +0.000",
        f"head           {'input 16×16 → 16×24, from stage 2':62}         +40      +0.000",
        f"-------------  {'-' * 62}  ----------  ----------",
        f"total (B − A)  {'':62}      +5,952      +0.000",
    ]


NO_CHANGE = re.compile(r"(?:^|[ (])(\S+) → \1(?:[,;)]|$)")


@pytest.mark.parametrize(
    "overrides",
    [
        ["stages.1.dim=192"], ["stages.0.dim=96"], ["stages.3.dim=512", "stages.3.mixer.heads=16", "head.heads=16"],
        ["drop_path_rate=0.2"], ["stages.2.depth=8"], ["head.aux_head=true"], ["head.blocks=2"], ["input.size=160"],
        ["stages.1.downsample.kernel=2"], ["stem.type=patch"], ["head.type=pool"],
    ],
    ids=" ".join,
)  # fmt: skip
def test_no_phrase_shows_an_unchanged_value(overrides):
    """A value on both sides of an arrow differs, and every phrase names what changed, never just "changed"."""
    diff = diff_plans(_plan(), _plan(*overrides))
    assert diff.changes
    for change in diff.changes:
        for what in change.what:
            assert not NO_CHANGE.search(what), what
            assert not what.endswith(" changed") and " changed," not in what, what


def test_grid_values():
    assert split_values("[256, 320],224") == ["[256, 320]", "224"]
    assert combinations(["a=1,2", "b=x,y"]) == [["a=1", "b=x"], ["a=1", "b=y"], ["a=2", "b=x"], ["a=2", "b=y"]]


def test_sweep_table(capsys):
    grid = ["--grid", "stages.2.depth=4,6,8", "--grid", "stages.1.mixer.type=spectral,attention"]
    assert main(["sweep", SPEC, *grid, "--format", "md"]) == 0
    overrides = [f"stages.2.depth={depth} stages.1.mixer.type={mixer}" for depth in (4, 6, 8)
                 for mixer in ("spectral", "attention")]  # fmt: skip
    assert max(map(len, overrides)) == 46  # the widest cell sets the column's width; numbers are right-aligned
    assert capsys.readouterr().out.splitlines() == [
        "| overrides                                      |     params |   GFLOPs |   activations (MiB) | status   |",
        "|:-----------------------------------------------|-----------:|---------:|--------------------:|:---------|",
        "| stages.2.depth=4 stages.1.mixer.type=spectral  | 12,941,734 |    6.333 |                28.1 | ok       |",
        "| stages.2.depth=4 stages.1.mixer.type=attention | 11,595,174 |    6.132 |                28.1 | ok       |",
        "| stages.2.depth=6 stages.1.mixer.type=spectral  | 14,183,334 |    6.915 |                30.5 | ok       |",
        "| stages.2.depth=6 stages.1.mixer.type=attention | 12,836,774 |    6.714 |                30.5 | ok       |",
        "| stages.2.depth=8 stages.1.mixer.type=spectral  | 15,424,934 |    7.498 |                32.9 | ok       |",
        "| stages.2.depth=8 stages.1.mixer.type=attention | 14,078,374 |    7.296 |                32.9 | ok       |",
    ]


def test_the_default_sweep_table_is_plain_text(capsys):
    assert main(["sweep", SPEC, "--grid", "stages.2.depth=4,8", "--grid", "stages.1.mixer.type=spectral"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "overrides                                          params    GFLOPs    activations (MiB)  status",
        "---------------------------------------------  ----------  --------  -------------------  --------",
        "stages.2.depth=4 stages.1.mixer.type=spectral  12,941,734     6.333                 28.1  ok",
        "stages.2.depth=8 stages.1.mixer.type=spectral  15,424,934     7.498                 32.9  ok",
    ]


def test_a_sweep_plans_every_variant_as_planning_it_alone_does():
    """The sweep's block cache is invisible: each row is what a fresh plan of its variant gives."""
    grid = ["stages.1.depth=1,4", "stages.2.mixer.heads=3,5,10", "drop_path_rate=0,0.3", "stages.3.dim=448,224"]
    rows = run_sweep(SPEC, grid)
    assert len(rows) == 24
    for row in rows:
        try:
            alone = _plan(*row.overrides)
        except archspec.SpecError as exc:
            assert row.status == "invalid: " + "; ".join(exc.lines())
            continue
        assert (row.status, row.params, row.flops, row.activations) == (
            "ok", alone.params, alone.flops, activation_bytes(alone)
        )  # fmt: skip
    assert sum(row.status == "ok" for row in rows) == 16  # 3 heads do not divide 320


def test_invalid_rows_do_not_stop_the_sweep(capsys):
    assert main(["sweep", SPEC, "--grid", "stages.2.mixer.heads=3,4", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "overrides,params,GFLOPs,activations (MiB),status"
    assert lines[1] == (
        "stages.2.mixer.heads=3,,,,invalid: --set stages.2.mixer.heads=3: stages[2].mixer.heads: "
        "3 heads do not divide the stage's dim 320"
    )
    assert lines[2] == "stages.2.mixer.heads=4,14183334,6.915,30.5,ok"  # plain numbers, no thousands separators


def test_sweep_measure_builds_and_times(capsys):
    assert main(["sweep", SPEC, "--grid", "num_classes=3,4", "--measure", "--repeats", "1", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert all(r["latency_ms"] > 0 for r in rows)
    assert [r["params"] for r in rows] == [14_183_334 - 3 * 449, 14_183_334 - 2 * 449]
