"""One vocabulary: every subcommand's parser is walked, and an option two commands share means one thing.

Also: the old spellings still work, store what their replacements store and warn with the exact
message; argparse's own messages name no Python types.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import pytest

from archspec import cli_options as opt
from archspec.cli import _parser, main

PLANNING = {"summary", "render", "build", "convert", "bench", "export", "fit", "sweep", "search"}
"""The commands that plan or build a model at an input size, so take --input and --size."""
BUDGETED = {"build", "convert", "bench", "export", "fit", "sweep", "search"}
"""The commands that check the memory budget before building, so take --no-budget."""
TABLES = {"summary", "list", "diff", "sweep", "fit", "bench", "search"}
"""The commands that print tables, so take --format from the shared vocabulary."""
TYPE_NAMES = {"whole number", "number", "seed", "thread count", "CxHxW", "N|HxW", "batch sizes"}
"""The names argparse may print for a value it cannot read ("invalid whole number value")."""
DIFFERENT_TYPES = {("bench", "--batch"): "bench times several batch sizes in one run: 1,8"}
"""Options that take another type on one command, with the reason."""


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


COMMANDS = _commands()


def _options(visible: bool = True) -> dict[str, dict[str, argparse.Action]]:
    """Option string → command → its action; only the ones ``--help`` shows, or only the hidden old spellings."""
    found: dict[str, dict[str, argparse.Action]] = defaultdict(dict)
    for name, parser in COMMANDS.items():
        for action in parser._actions:
            if (action.help != argparse.SUPPRESS) == visible:
                for option in action.option_strings:
                    found[option][name] = action
    return found


OPTIONS = _options()


def _kind(action: argparse.Action) -> str:
    return "flag" if action.nargs == 0 else "value"


def _type_name(action: argparse.Action) -> str | None:
    return None if action.type is None else getattr(action.type, "__name__", repr(action.type))


def _visible_choices(action: argparse.Action) -> set[object]:
    return set(action.choices or ()) - set(getattr(action, "renamed_values", {}))


@pytest.mark.parametrize("option", sorted(o for o, uses in OPTIONS.items() if len(uses) > 1))
def test_a_shared_option_has_one_kind_type_metavar_and_alias_set(option):
    uses = OPTIONS[option]
    assert len({_kind(a) for a in uses.values()}) == 1, {c: _kind(a) for c, a in uses.items()}
    assert len({tuple(a.option_strings) for a in uses.values()}) == 1, {c: a.option_strings for c, a in uses.items()}
    typed = {c: _type_name(a) for c, a in uses.items() if (c, option) not in DIFFERENT_TYPES}
    assert len(set(typed.values())) == 1, typed
    metavars = {c: a.metavar for c, a in uses.items() if (c, option) not in DIFFERENT_TYPES and option != "--format"}
    assert len(set(metavars.values())) <= 1, metavars


def test_every_command_that_plans_takes_input_and_size_and_the_budgeted_ones_no_budget():
    assert set(OPTIONS["--input"]) == PLANNING
    assert set(OPTIONS["--size"]) == PLANNING
    assert set(OPTIONS["--no-budget"]) == BUDGETED
    for command in PLANNING:
        assert OPTIONS["--input"][command].metavar == "CxHxW"
        assert OPTIONS["--size"][command].metavar == "N|HxW"
        assert OPTIONS["--input"][command].help == opt.INPUT_HELP
    assert {OPTIONS["--no-budget"][c].help for c in BUDGETED} == {opt.NO_BUDGET_HELP}


def test_force_only_overwrites_and_is_given_only_where_a_file_is_written():
    assert {c: a.help for c, a in OPTIONS["--force"].items()} == dict.fromkeys(
        ["build", "convert", "render", "sweep", "fit", "search", "export", "schema"], opt.FORCE_HELP
    )


def test_format_is_table_for_plain_text_and_md_for_markdown_everywhere():
    formats = OPTIONS["--format"]
    assert set(formats) == TABLES | {"export"}
    for command in TABLES:
        action = formats[command]
        assert action.default == "table", command
        assert {"table", "json"} <= _visible_choices(action) <= set(opt.FORMATS), command
    assert _visible_choices(formats["export"]) == {"onnx", "pt2"}  # a file type, not a table


def test_precision_is_one_option_from_one_vocabulary():
    assert set(OPTIONS["--precision"]) == {"build", "bench", "fit", "sweep", "search"}
    for command, action in OPTIONS["--precision"].items():
        assert action.default == ("auto" if command in {"fit", "sweep", "search"} else "fp32"), command
        assert set(action.choices) <= set(opt.PRECISIONS), command
        assert action.help.endswith(f"(default: {action.default})"), command
    assert set(OPTIONS["--precision"]["build"].choices) == set(opt.PARAMETER_DTYPE)
    assert set(OPTIONS["--precision"]["bench"].choices) == set(opt.AUTOCAST_DTYPE)


def test_no_visible_option_keeps_an_old_spelling():
    assert not {"--warmup", "--dtype", "--amp"} & set(OPTIONS)
    assert set(OPTIONS["--warmup-runs"]) == {"bench"}
    assert set(OPTIONS["--warmup-epochs"]) == {"fit", "search"}


OLD_SPELLINGS = [
    (["build", "x", "--dtype", "bfloat16"], "precision", "bf16", "--dtype bfloat16", "--precision bf16"),
    (["bench", "x", "--dtype", "bfloat16"], "precision", "bf16-mixed", "--dtype bfloat16", "--precision bf16-mixed"),
    (["bench", "x", "--dtype", "float32"], "precision", "fp32", "--dtype float32", "--precision fp32"),
    (["fit", "x", "--amp"], "precision", "bf16-mixed", "--amp", "--precision bf16-mixed"),
    (["sweep", "x", "--amp"], "precision", "bf16-mixed", "--amp", "--precision bf16-mixed"),
    (["bench", "x", "--warmup", "5"], "warmup_runs", 5, "--warmup", "--warmup-runs"),
    (["fit", "x", "--warmup", "0.5"], "warmup_epochs", 0.5, "--warmup", "--warmup-epochs"),
    (["bench", "x", "--force"], "no_budget", True, "--force", "--no-budget"),
    (["diff", "x", "y", "--format", "text"], "format", "table", "--format text", "--format table"),
]


@pytest.mark.parametrize("argv, dest, value, old, new", OLD_SPELLINGS, ids=[" ".join(s[0]) for s in OLD_SPELLINGS])
def test_an_old_spelling_stores_what_its_replacement_stores_and_says_so(argv, dest, value, old, new):
    args = _parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert opt.deprecations(args) == [f"{old} is deprecated and will be removed in the next release: use {new}"]


def test_old_spellings_are_hidden_from_help_and_listed_for_the_docs():
    hidden = _options(visible=False)
    assert {option: sorted(uses) for option, uses in hidden.items()} == {
        "--dtype": ["bench", "build"],
        "--amp": ["fit", "sweep"],
        "--warmup": ["bench", "fit"],
        "--force": ["bench"],
    }


def test_the_deprecation_warning_reaches_stderr_once(capsys):
    assert main(["diff", "spectformer-digits", "spectformer-digits", "--format", "text"]) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        "warning: --format text is deprecated and will be removed in the next release: use --format table\n"
    )
    assert captured.out.splitlines()[-1] == "no structural differences"


def _typed_options() -> list[tuple[str, str]]:
    return sorted(
        (command, action.option_strings[-1])
        for command, parser in COMMANDS.items()
        for action in parser._actions
        if action.type is not None and action.option_strings and action.help != argparse.SUPPRESS
    )


@pytest.mark.parametrize("command, option", _typed_options())
def test_argparse_names_no_python_type_for_a_value_it_cannot_read(command, option, capsys):
    positionals = {"diff": ["a", "b"], "convert": ["s", "w", "-o", "o"], "validate": ["s"], "sweep": ["s"]}
    argv = [command, *positionals.get(command, ["s"] if command not in ("list", "schema") else []), option, "x!"]
    with pytest.raises(SystemExit) as stopped:
        _parser().parse_args(argv)
    assert stopped.value.code == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith(f"archspec {command}: error: argument {option}")
    name = _type_name(COMMANDS[command]._option_string_actions[option])
    assert name in TYPE_NAMES
    if name in ("CxHxW", "N|HxW", "batch sizes"):  # these types explain what they expected
        assert last.endswith("got x!")
    else:
        assert last.endswith(f"invalid {name} value: 'x!'")


def test_input_and_size_plan_what_the_set_overrides_plan(capsys):
    outputs = []
    for extra in (["--size", "32"], ["--input", "3x32x32"], ["--set", "input.size=[32, 32]"]):
        assert main(["summary", "spectformer-digits", "--format", "json", *extra]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2]
    with pytest.raises(SystemExit):
        _parser().parse_args(["summary", "x", "--size", "16", "--input", "1x16x16"])
    assert capsys.readouterr().err.splitlines()[-1] == (
        "archspec summary: error: argument --input: not allowed with argument --size"
    )


def test_no_budget_lifts_the_budget_and_force_still_does_for_now_with_a_warning(capsys):
    build = ["build", "spectformer-digits", "--no-tree", "--max-params", "10"]
    assert main(build) == 1
    refused = capsys.readouterr().err.splitlines()[0]
    assert refused.endswith("over --max-params 10; raise the limit or pass --no-budget [AS401]")
    assert main([*build, "--no-budget"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main([*build, "--force"]) == 0
    assert capsys.readouterr().err.splitlines()[0] == (
        "warning: --force lifts the memory budget only until the next release, when it will just overwrite files: "
        "use --no-budget"
    )


def test_the_old_amp_still_picks_float16_on_a_gpu_without_bfloat16(monkeypatch):
    import torch

    from archspec.cli import _precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert _precision(_parser().parse_args(["fit", "x", "--amp", "--device", "cuda"])) == "fp16-mixed"
    assert _precision(_parser().parse_args(["fit", "x", "--precision", "bf16-mixed", "--device", "cuda"])) == (
        "bf16-mixed"
    )
    assert _precision(_parser().parse_args(["sweep", "x", "--amp"])) == "bf16-mixed"  # the CPU
