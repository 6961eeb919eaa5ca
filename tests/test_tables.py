"""archspec.tables: exact layouts, since scripts and the README read these tables."""

from __future__ import annotations

from archspec.tables import markdown_table, plain_table, text_table

HEADER = ("part", "what", "params")
ROWS = [("stage 1", "a|b", "1,024"), ("head", "", "0.100")]


def test_text_table():
    # A column is as wide as its widest cell, or its heading and two spaces; params is right-aligned.
    assert text_table(HEADER, ROWS, right={2}, total=("total", "", "1,024")).splitlines() == [
        "part     what      params",
        "-------  ------  --------",
        "stage 1  a|b        1,024",
        "head                0.100",
        "-------  ------  --------",
        "total               1,024",
    ]
    assert text_table(HEADER, ROWS).splitlines()[2:] == ["stage 1  a|b     1,024", "head             0.100"]


def test_plain_table_has_no_rules_and_no_trailing_spaces():
    assert plain_table(("kind", "type", "from"), [("stem", "conv", "archspec"), ("head", "x", "a")]).splitlines() == [
        "kind    type    from",
        "stem    conv    archspec",
        "head    x       a",
    ]


def test_markdown_table_escapes_pipes():
    assert markdown_table(HEADER, ROWS, right={2}).splitlines() == [
        "| part    | what   |   params |",
        "|:--------|:-------|---------:|",
        "| stage 1 | a\\|b   |    1,024 |",
        "| head    |        |    0.100 |",
    ]


def test_long_cells_are_never_wrapped():
    long = "x" * 500
    # one line whatever the terminal's width; column b is its heading and two spaces wide
    assert text_table(("a", "b"), [(long, "1")], right={1}).splitlines()[2] == f"{long}    1"
