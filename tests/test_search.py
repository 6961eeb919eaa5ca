"""archspec search: the space file, refusals from the plan, studies shared by workers, reports and exports.

Trials train a tiny spec for one epoch on the bundled digits at 16×16, so a trained trial takes about a
second; the refusals and the determinism checks train nothing (objectives params and gflops).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, tiny

optuna = pytest.importorskip("optuna")

import archspec  # noqa: E402
from archspec.cli import main  # noqa: E402
from archspec.errors import SpecError  # noqa: E402
from archspec.search_space import load_space, shipped_spaces, space_schema  # noqa: E402

SPACE = {
    "spec": "base.yaml",
    "space": {
        "stages.0.dim": {"int": [8, 16], "step": 8},
        "stages.1.mixer.type": ["attention", "pool"],
        "stages.1.mixer.heads": {"choice": [1, 2], "when": {"stages.1.mixer.type": "attention"}},
        "drop_path_rate": {"float": [0.0, 0.2], "step": 0.1},
    },
}
TRAIN = ["--size", "16", "--epochs", "1", "--batch", "128", "--threads", "1"]


def _files(folder: Path, **changes) -> Path:
    (folder / "base.yaml").write_text(json.dumps(tiny()))
    space = folder / "space.yaml"
    space.write_text(yaml.safe_dump({**SPACE, **changes}, sort_keys=False))
    return space


def _report(space: Path, storage: str, capsys, *extra: str) -> dict:
    assert (
        main(["search", "--space", str(space), "--storage", storage, "--trials", "0", "--format", "json", *extra]) == 0
    )
    return json.loads(capsys.readouterr().out)


# The space file.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "spec: base.yaml\nspace:\n  stages.0.dim: {int: [8, 16], choice: [8]}\n",
            "space.yaml:3:3: space['stages.0.dim']: give one of int, float or choice (found int and choice) [AS204]",
        ),
        (
            "spec: base.yaml\nspace:\n  stages.0.dim: {int: [8, 16], stepp: 8}\n",
            "space.yaml:3:32: space['stages.0.dim'].stepp: unknown key (an axis has int, float, choice, step, log and "
            "when) [AS201]",
        ),
        (
            "spec: base.yaml\nspace:\n  a.b: [1]\n  stages.0.dim: {int: [16, 8]}\n",
            "space.yaml:4:3: space['stages.0.dim']: the range [16, 8] is empty: low must not exceed high [AS204]",
        ),
        (
            "spec: base.yaml\nspace:\n  stages.1.mixer.heads: {choice: [1], when: {stages.1.mixer.type: attention}}\n"
            "  stages.1.mixer.type: [attention, pool]\n",
            "space.yaml:3:46: space['stages.1.mixer.heads'].when['stages.1.mixer.type']: stages.1.mixer.type must be a "
            "key declared above this one [AS204]",
        ),
        (
            "spec: base.yaml\nspace:\n  stages.1.mixer.type: [attention, pool]\n"
            "  stages.1.mixer.heads: {choice: [1], when: {stages.1.mixer.type: spectral}}\n",
            "space.yaml:4:46: space['stages.1.mixer.heads'].when['stages.1.mixer.type']: spectral is not a value of "
            "stages.1.mixer.type (attention, pool) [AS204]",
        ),
        (
            "spec: base.yaml\nspace:\n  stages.0.dimm: [8, 16]\n",
            "space.yaml:3:3: space['stages.0.dimm']: no value of stages.0.dimm gives a valid spec: --set "
            "stages.0.dimm=8: stages[0].dimm: unknown key 'dimm'; did you mean 'dim'? [AS1101]",
        ),
        (
            "spec: nowhere.yaml\nspace:\n  stages.0.dim: [8]\n",
            "space.yaml:1:1: spec: nowhere.yaml: no such file or shipped spec [AS204]",
        ),
        (
            "spec: base.yaml\nspace: {}\n",
            "space.yaml:2:1: space: Dictionary should have at least 1 item after validation, not 0 [AS204]",
        ),
    ],
    ids=["two kinds", "unknown key", "empty range", "when below", "when value", "typo in a key", "no base", "empty"],
)
def test_a_bad_space_file_is_located_at_its_line_and_column(tmp_path, capsys, text, expected):
    (tmp_path / "base.yaml").write_text(json.dumps(tiny()))
    (tmp_path / "space.yaml").write_text(text)
    with pytest.raises(SpecError) as info:
        load_space(tmp_path / "space.yaml")
    assert [f"{line} [{p.code}]" for line, p in zip(info.value.lines(), info.value.problems, strict=True)] == [
        f"{tmp_path}/{expected}"
    ]
    assert main(["search", "--space", str(tmp_path / "space.yaml"), "--trials", "0"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"{tmp_path}/{expected}"


def test_the_schema_file_is_current_and_takes_every_shipped_space():
    import jsonschema

    written = json.loads((ROOT / "specs" / "search.schema.json").read_text())
    assert written == space_schema()
    jsonschema.Draft202012Validator.check_schema(written)
    assert [path.name for path in shipped_spaces()] == ["spectformer-digits.yaml"]
    for path in shipped_spaces():
        jsonschema.validate(yaml.safe_load(path.read_text()), written)
        space = load_space(path.stem)  # a shipped space by its name
        assert space.base.resolve() == (path.parent.parent / "digits" / "spectformer-digits.yaml").resolve()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"spec": "x", "space": {"a": {"int": [1, 2], "stepp": 1}}}, written)


# Refusals from the plan, determinism, studies.


def test_candidates_over_a_constraint_are_pruned_by_the_plan_and_counted_without_training(tmp_path, capsys):
    limit = archspec.plan(archspec.load_spec(tmp_path / _files(tmp_path).parent / "base.yaml")).params
    space = _files(tmp_path, constraints={"max_params": limit})
    storage = str(tmp_path / "s.db")
    argv = ["search", "--space", str(space), "--storage", storage, "--objectives", "params,gflops", "--trials", "6"]
    assert main([*argv, "--seed", "3", "--sampler", "random", "--size", "16"]) == 0
    capsys.readouterr()
    report = _report(space, storage, capsys)
    refused = [t for t in report["trials"] if t["state"] == "PRUNED"]
    done = [t for t in report["trials"] if t["state"] == "COMPLETE"]
    assert len(done) == 6  # refusals do not count towards --trials
    assert refused, "the space holds candidates wider than the base, so some must be refused"
    assert report["counts"]["PRUNED by the plan"] == len(refused)
    for trial in refused:
        assert trial["pruned_by"] == "plan"
        assert trial["reason"] == f"{trial['params']:,} params, over max_params {limit:,}"
    assert all(t["params"] <= limit and t["fit_s"] is None and t["accuracies"] == [] for t in done)
    assert all("stages.0.dim=16" in t["settings"] for t in refused)


def test_the_same_seed_on_a_fresh_storage_proposes_the_same_first_trials(tmp_path, capsys):
    space = _files(tmp_path)
    proposals = []
    for run, seed in enumerate(("7", "7", "8")):
        storage = str(tmp_path / f"{run}.db")
        argv = ["search", "--space", str(space), "--storage", storage, "--objectives", "params", "--trials", "5"]
        assert main([*argv, "--seed", seed]) == 0
        capsys.readouterr()
        proposals.append([t["settings"] for t in _report(space, storage, capsys)["trials"]])
    assert proposals[0] == proposals[1]
    assert proposals[0] != proposals[2]
    assert len(proposals[0]) == 5


def test_a_study_keeps_its_objectives_and_space(tmp_path, capsys):
    space = _files(tmp_path)
    storage = str(tmp_path / "s.db")
    argv = ["search", "--space", str(space), "--storage", storage, "--trials", "1"]
    assert main([*argv, "--objectives", "params"]) == 0
    capsys.readouterr()
    assert main([*argv, "--objectives", "gflops"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: study space was made with the objectives params, not gflops: give those, or another --study [AS1102]"
    )
    assert main(["search", "--space", str(space), "--storage", storage, "--trials", "0", "--study", "other"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: --study other: no such study in this storage (studies: space) [AS1102]"
    )


# Training, pruning in training, Ctrl-C.


def test_trials_train_report_and_export_children_that_reproduce_their_params(tmp_path, capsys):
    space = _files(tmp_path)
    storage = str(tmp_path / "s.db")
    argv = ["search", "--space", str(space), "--storage", storage, "--trials", "2", "--seed", "0", *TRAIN]
    assert main([*argv, "--plot", str(tmp_path / "front.png"), "--export-best", str(tmp_path / "best")]) == 0
    capsys.readouterr()
    assert (tmp_path / "front.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = _report(space, storage, capsys, "--objectives", "accuracy,gflops")
    assert report["study"] == "space" and report["objectives"] == ["accuracy", "gflops"]
    trials = report["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE", "COMPLETE"]
    for trial in trials:
        assert trial["values"] == [trial["accuracy"], trial["gflops"]]
        assert 0 <= trial["accuracy"] <= 1 and trial["fit_s"] > 0
        assert trial["adapted"] == ["input.channels=1", "input.size=16", "num_classes=10"]
        assert trial["precision"] == "fp32"  # --precision auto, on a device without native bfloat16 (conftest)
    front = [t for t in trials if t["pareto"]]
    assert front
    children = sorted((tmp_path / "best").iterdir())
    assert [p.name for p in children] == [f"space-trial{t['number']}.yaml" for t in front]
    for path, trial in zip(children, front, strict=True):
        planned = archspec.plan(archspec.load_spec(path))
        assert planned.params == trial["params"]
        assert yaml.safe_load(path.read_text())["extends"] == "../base.yaml"
    again = ["search", "--space", str(space), "--storage", storage, "--trials", "0"]
    assert main([*again, "--export-best", str(tmp_path / "best")]) == 2
    assert "exists; pass --force to overwrite it [AS602]" in capsys.readouterr().err


def test_the_pruner_stops_a_trial_after_an_epoch_and_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(optuna.pruners.MedianPruner, "prune", lambda self, study, trial: True)
    space = _files(tmp_path)
    storage = str(tmp_path / "s.db")
    argv = ["search", "--space", str(space), "--storage", storage, "--trials", "1", "--objectives", "accuracy"]
    assert main([*argv, *TRAIN]) == 0
    capsys.readouterr()
    (trial,) = _report(space, storage, capsys, "--objectives", "accuracy")["trials"]
    assert (trial["state"], trial["pruned_by"]) == ("PRUNED", "training")
    assert trial["reason"] == f"behind the median after epoch 1 ({trial['accuracies'][0]:.2%})"


def test_an_interrupt_marks_the_running_trial_failed_and_keeps_the_finished_ones(tmp_path, capsys, monkeypatch):
    from archspec import fit

    space = _files(tmp_path)
    storage = str(tmp_path / "s.db")
    argv = ["search", "--space", str(space), "--storage", storage, "--objectives", "accuracy,params", *TRAIN]
    assert main([*argv, "--trials", "1"]) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(fit, "fit", interrupted)
    assert main([*argv, "--trials", "3"]) == 130
    capsys.readouterr()
    trials = _report(space, storage, capsys, "--objectives", "accuracy,params")["trials"]
    assert [(t["state"], t["reason"]) for t in trials] == [("COMPLETE", None), ("FAIL", "interrupted")]


def test_without_optuna_search_says_what_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["search", "--space", "spectformer-digits"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "error: archspec search needs Optuna: pip install optuna sqlalchemy (or pip install -e '.[search]' in a "
        "checkout) [AS601]"
    )


# Several workers on one study.


def _workers(space: Path, storage: str, trials: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "archspec", "search", "--space", str(space), "--storage", storage,
               "--trials", str(trials), "-q", *TRAIN]  # fmt: skip
    runs = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    for run in runs:
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err.decode()


def _check_shared(space: Path, storage: str, capsys, trials: int) -> None:
    report = _report(space, storage, capsys)
    numbers = [t["number"] for t in report["trials"]]
    assert numbers == list(range(2 * trials))  # each number once
    assert report["counts"]["COMPLETE"] == 2 * trials
    for trial in report["trials"]:
        assert trial["settings"] and trial["params"] > 0 and trial["gflops"] > 0
        assert 0 <= trial["accuracy"] <= 1 and isinstance(trial["pareto"], bool)
    assert any(t["pareto"] for t in report["trials"])


def test_two_workers_share_one_sqlite_study(tmp_path, capsys):
    space = _files(tmp_path)
    _workers(space, str(tmp_path / "shared.db"), 3)
    _check_shared(space, str(tmp_path / "shared.db"), capsys, 3)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def postgres():
    """A PostgreSQL server on loopback, in a temporary folder, for the test's life."""
    pytest.importorskip("psycopg")
    folder = next((Path(p) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))), None)
    initdb = shutil.which("initdb") or (str(folder / "initdb") if folder else None)
    if initdb is None:
        pytest.skip("no PostgreSQL server here (Debian: apt-get install postgresql)")
    bin_dir = Path(initdb).resolve().parent
    home = Path(tempfile.mkdtemp(prefix="archspec-pg-"))  # pytest's own folders are closed to other users
    data = home / "data"
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root without a postgres user to start the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
        os.chmod(home, 0o755)
        data.mkdir()
        shutil.chown(data, "postgres")
    port = _free_port()
    run = lambda *command: subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)  # noqa: E731
    done = run(str(bin_dir / "initdb"), "-D", str(data), "-U", "archspec", "--auth=trust", "-E", "UTF8")
    if done.returncode:
        pytest.skip(f"initdb failed: {done.stderr.strip()[:200]}")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={data}"
    done = run(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(data / "log"), "-w", "start")
    if done.returncode:
        pytest.skip(f"pg_ctl could not start a server: {done.stderr.strip()[:200]}")
    try:
        created = run(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "archspec", "search")
        assert created.returncode == 0, created.stderr
        yield f"postgresql+psycopg://archspec@127.0.0.1:{port}/search"
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


def test_two_workers_share_one_postgresql_study(tmp_path, capsys, postgres):
    space = _files(tmp_path)
    start = time.monotonic()
    _workers(space, postgres, 2)
    assert time.monotonic() - start < 300
    _check_shared(space, postgres, capsys, 2)


def test_component_types_and_mixer_patterns_are_choices_like_any_value(tmp_path, capsys):
    space = _files(
        tmp_path,
        space={
            "stages.1.mixer": {"choice": [[{"type": "attention", "heads": 2, "blocks": 1}, "pool"], {"type": "pool"}]},
            "stages.0.ffn": [{"type": "mlp", "ratio": 2}, {"type": "mlp", "ratio": 4}],
        },
    )
    storage = str(tmp_path / "s.db")
    argv = ["search", "--space", str(space), "--storage", storage, "--objectives", "params", "--trials", "4"]
    assert main([*argv, "--seed", "2", "--sampler", "random"]) == 0
    capsys.readouterr()
    trials = _report(space, storage, capsys)["trials"]
    for trial in trials:
        assert trial["state"] == "COMPLETE"
        planned = archspec.plan(archspec.load_spec(tmp_path / "base.yaml", [*trial["settings"], *trial["adapted"]]))
        assert planned.params == trial["params"]
    seen = {setting for trial in trials for setting in trial["settings"]}
    assert seen == {
        "stages.1.mixer=[{type: attention, heads: 2, blocks: 1}, pool]", "stages.1.mixer={type: pool}",
        "stages.0.ffn={type: mlp, ratio: 2}", "stages.0.ffn={type: mlp, ratio: 4}",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--storage", "{space}", "--trials", "1"],
            "error: --storage {space} is the --space file: give the study a file of its own [AS601]",
        ),
        (
            ["--export-best", "{space}", "--trials", "1"],
            "error: --export-best {space}: not a folder; it names the folder the specs go to [AS601]",
        ),
        (
            ["--storage", "{folder}/none.db", "--trials", "0"],
            "error: --storage {folder}/none.db: no such file; --trials 0 reports a study already stored [AS601]",
        ),
        (
            ["--plot", "{space}", "--trials", "0"],
            "error: --plot {space} is the --space file: writing it would destroy what the run reads; give another file "
            "name [AS603]",
        ),
    ],
    ids=["storage is the space", "export-best is a file", "nothing stored", "plot is the space"],
)
def test_outputs_that_would_destroy_an_input_are_refused_before_any_work(tmp_path, capsys, extra, message):
    space = _files(tmp_path)
    before = space.read_bytes()
    argv = [part.format(space=space, folder=tmp_path) for part in extra]
    assert main(["search", "--space", str(space), "--objectives", "params", *argv]) in (1, 2)
    assert capsys.readouterr().err.splitlines()[0] == message.format(space=space, folder=tmp_path)
    assert space.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.yaml", "space.yaml"]


def test_a_space_whose_every_candidate_breaks_the_constraints_stops_at_once(tmp_path, capsys):
    space = _files(tmp_path, constraints={"max_params": 1})
    argv = ["search", "--space", str(space), "--storage", str(tmp_path / "s.db"), "--objectives", "params"]
    started = time.monotonic()
    assert main([*argv, "--trials", "1", "--seed", "0"]) == 1
    assert time.monotonic() - started < 30
    last = capsys.readouterr().err.splitlines()[-2]
    assert last.startswith("error: the plan refused every one of the space's 18 candidates: the space and its ")
    assert last.endswith("params, over max_params 1 [AS1101]")


def test_a_spec_given_on_the_command_line_replaces_the_space_files_and_is_checked_against_it(tmp_path, capsys):
    space = _files(tmp_path)
    storage = ["--storage", str(tmp_path / "s.db"), "--trials", "0"]
    assert main(["search", "resnet19", "--space", str(space), *storage]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "resnet19: no such file or shipped spec; did you mean resnet18, resnet50? [AS101]"
    )
    assert main(["search", "resnet18", "--space", str(space), *storage]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"{space}:8:3: space['stages.1.mixer.type']: no value of stages.1.mixer.type gives a valid spec: --set "
        "stages.1.mixer.type=attention: stages[1].mixer: 'basic' blocks have no token mixer; remove 'mixer' [AS1101]"
    )


def test_a_storage_that_cannot_be_written_is_named_without_a_traceback(tmp_path, capsys):
    space = _files(tmp_path)
    database = tmp_path / "s.db"
    argv = ["search", "--space", str(space), "--objectives", "params", "--trials", "1"]
    assert main([*argv, "--storage", str(database)]) == 0
    capsys.readouterr()
    read_only = f"sqlite:///file:{database}?mode=ro&uri=true"  # what a full disk or a read-only file gives
    assert main([*argv, "--storage", read_only]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: --storage {read_only}: cannot read or write the study: (sqlite3.OperationalError) attempt to "
        "write a readonly database [AS603]"
    )
    assert len(_report(space, str(database), capsys)["trials"]) == 1


def test_candidates_over_the_memory_budget_are_refused_untrained_unless_lifted(tmp_path, capsys, monkeypatch):
    from archspec import budget

    space = _files(tmp_path)
    storage = str(tmp_path / "s.db")
    # 4 MiB: the 1.75 MiB of images load, but images, model and a batch of 128 exceed the 2 MiB budget
    monkeypatch.setattr(budget, "available_bytes", lambda: 4 * 2**20)
    argv = ["search", "--space", str(space), "--storage", storage, "--trials", "1", "--seed", "0", *TRAIN]
    assert main(argv) == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-2]
        .startswith(
            "error: the plan refused every one of the space's 18 candidates: the space and its constraints leave no "
            "valid candidate; the last: over the memory budget: Tiny needs about"
        )
    )
    report = _report(space, storage, capsys)
    assert report["counts"]["COMPLETE"] == 0 and len(report["trials"]) >= 18
    for trial in report["trials"]:
        assert (trial["state"], trial["pruned_by"], trial["accuracies"]) == ("PRUNED", "plan", [])
        assert trial["reason"].startswith("over the memory budget: ")
        assert trial["reason"].endswith("; check the spec for a typo, or --no-budget")
    assert main([*argv, "--no-budget"]) == 0  # lifted: the same candidates train
    capsys.readouterr()
    assert _report(space, storage, capsys)["counts"]["COMPLETE"] == 1
