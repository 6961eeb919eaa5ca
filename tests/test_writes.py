"""Writing outputs: destinations checked before any work, whole files or none, clean errors, one mode."""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, default_sigint, tiny

from archspec import export as export_module
from archspec.cli import main
from archspec.output import (
    STALE_AFTER,
    OutputError,
    OutputExistsError,
    sweep_stale,
    write_atomic,
    write_text_atomic,
)

SPEC = str(ROOT / "specs" / "spectformer.yaml")
HINT_AS603 = (
    "hint (AS603, cannot write output): the message gives the reason: create the folder, free disk space, or name a "
    "regular file (a directory, link or device is never replaced)\n"
)
HINT_AS602 = "hint (AS602, output exists): pick another file name or pass --force to replace it\n"


def _spec_file(folder: Path, spec: dict[str, object] | None = None) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(spec or tiny()))
    return path


def _writing_commands(spec: str, out: str) -> dict[str, list[str]]:
    return {
        "build --save": ["build", spec, "--no-tree", "--save", out],
        "convert -o": ["convert", spec, "weights.pth", "-o", out],
        "render -o": ["render", spec, "-o", out],
        "export -o": ["export", spec, "--format", "pt2", "-o", out],
        "schema -o": ["schema", "-o", out],
    }


COMMANDS = list(_writing_commands("", ""))


# The destination is checked before any work.


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_folder_is_refused_before_any_work(tmp_path, command, capsys):
    out = tmp_path / "out" / "model.dot"
    missing_spec = str(tmp_path / "no-such-spec.yaml")  # read first, it would be an AS101 error
    assert main(_writing_commands(missing_spec, str(out))[command]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {out}: No such file or directory (the folder {out.parent} does not exist) [AS603]\n"
        + HINT_AS603
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_file_is_refused_before_any_work(tmp_path, command, capsys):
    out = tmp_path / "model.dot"
    out.write_bytes(b"keep me")
    assert main(_writing_commands(str(tmp_path / "no-such-spec.yaml"), str(out))[command]) == 2
    assert capsys.readouterr().err == f"error: {out} exists; pass --force to overwrite it [AS602]\n" + HINT_AS602
    assert out.read_bytes() == b"keep me"


def test_a_file_as_the_folder_is_refused(tmp_path, capsys):
    parent = tmp_path / "notes.txt"
    parent.write_text("a file, not a folder")
    out = parent / "schema.json"
    assert main(["schema", "-o", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {out}: Not a directory ({parent} is not a folder) [AS603]\n" + HINT_AS603
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder regardless of its mode")
def test_a_read_only_folder_is_refused(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    out = folder / "schema.json"
    assert main(["schema", "-o", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {out}: Permission denied (the folder {folder} is not writable) [AS603]\n" + HINT_AS603
    )


# Only a regular file is ever replaced, --force or not.


def _not_a_regular_file(tmp_path: Path, kind: str) -> tuple[Path, str]:
    if kind == "directory":
        path = tmp_path / "a-folder"
        path.mkdir()
        return path, "a directory"
    if kind == "symbolic link":
        target = tmp_path / "target.json"
        target.write_text("the link's target")
        path = tmp_path / "link.json"
        path.symlink_to(target)
        return path, "a symbolic link"
    if kind == "dangling link":
        path = tmp_path / "dangling.json"
        path.symlink_to(tmp_path / "nowhere.json")
        return path, "a symbolic link"
    if kind == "FIFO":
        path = tmp_path / "fifo"
        os.mkfifo(path)
        return path, "a FIFO"
    if kind == "socket":
        path = tmp_path / "sock"
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
        return path, "a socket"
    return Path("/dev/null"), "a character device"


KINDS = ["directory", "symbolic link", "dangling link", "FIFO", "socket", "device"]


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize("kind", KINDS)
def test_only_regular_files_are_replaced(tmp_path, monkeypatch, kind, force, capsys):
    monkeypatch.chdir(tmp_path)  # a socket's path must stay short
    path, described = _not_a_regular_file(Path("."), kind)
    before = sorted(p.name for p in Path(".").iterdir())
    assert main(["schema", "-o", str(path), *(["--force"] if force else [])]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {path}: it is {described}; only a regular file is ever replaced [AS603]\n" + HINT_AS603
    )
    assert sorted(p.name for p in Path(".").iterdir()) == before
    if kind == "symbolic link":
        assert path.is_symlink() and Path("target.json").read_text() == "the link's target"


def test_force_replaces_a_regular_file(tmp_path, capsys):
    out = tmp_path / "schema.json"
    out.write_text("old")
    assert main(["schema", "-o", str(out), "--force"]) == 0
    assert capsys.readouterr().err == f"wrote {out}\n"
    assert out.read_text().startswith("{")
    assert [p.name for p in tmp_path.iterdir()] == ["schema.json"]


def test_render_refuses_a_directory_even_with_force(tmp_path, capsys):
    folder = tmp_path / "drawing.dot"
    folder.mkdir()
    assert main(["render", SPEC, "-o", str(folder), "--force"]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot write {folder}: it is a directory; only a regular file is ever replaced [AS603]\n" + HINT_AS603
    )
    assert folder.is_dir() and list(folder.iterdir()) == []


# Every failed write is one located error, never a traceback.


def _limited(command: list[str], blocks: int) -> subprocess.CompletedProcess[str]:
    """``command`` in a shell that limits files to ``blocks`` KiB (the kernel refuses larger writes)."""
    script = f"trap '' XFSZ; ulimit -f {blocks}; exec \"$@\""
    return subprocess.run(
        ["bash", "-c", script, "bash", sys.executable, "-m", "archspec", *command],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["schema -o", "build --save"])
def test_a_write_the_file_system_refuses_is_a_clean_error(tmp_path, command):
    out = tmp_path / "out" / "big.file"
    out.parent.mkdir()
    spec = _spec_file(tmp_path)
    args = {
        "schema -o": ["schema", "-o", str(out)],
        "build --save": ["build", str(spec), "--no-tree", "--save", str(out)],
    }
    result = _limited(args[command], blocks=4)
    assert result.returncode == 1
    assert result.stderr.endswith(f"error: cannot write {out}: File too large [AS603]\n" + HINT_AS603)
    assert "Traceback" not in result.stderr
    assert list(out.parent.iterdir()) == []


def test_a_failing_writer_leaves_nothing_and_names_the_reason(tmp_path):
    out = tmp_path / "weights.pt"

    def full(handle):
        handle.write(b"part")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError) as raised:
        write_atomic(out, full)
    assert str(raised.value) == f"cannot write {out}: No space left on device"
    assert raised.value.code == "AS603"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["summary", SPEC], ["schema"], ["render", SPEC]], ids=["summary", "schema", "dot"])
def test_a_full_stdout_is_a_clean_error(command):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [sys.executable, "-m", "archspec", *command], stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            timeout=120,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == "error: cannot write to stdout: No space left on device [AS603]\n" + HINT_AS603


# A reader that goes away ends the command quietly.


def test_a_pipeline_into_head_ends_quietly():
    command = f"set -o pipefail; {sys.executable} -m archspec summary specs/spectformer.yaml | head -1"
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout == "SpectFormer: 14,183,334 params, 6.915 GFLOPs per sample\n"
    assert result.stderr == ""
    assert result.returncode in (0, 141)  # 141 when head left before the last line was written


def test_a_pipeline_into_head_that_leaves_early_ends_with_sigpipe_status():
    command = (
        f"set -o pipefail; {sys.executable} -m archspec summary specs/spectformer-h-l.yaml --format json | head -1"
    )
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.stdout == "{\n"
    assert result.stderr == ""
    assert result.returncode == 141


# Ctrl-C and SIGTERM during a real checkpoint save: status 130 and no temporary file.

BIG_HEAD = {
    "name": "BigHead",
    "input": {"channels": 3, "size": 16},
    "num_classes": 1_000_000,  # a 32M-parameter head: cheap to build, over 100 MB to save
    "stages": [{"dim": 32, "depth": 1, "mixer": {"type": "spectral"}}],
}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_save_exits_130_and_leaves_nothing(tmp_path, sig):
    spec = _spec_file(tmp_path, BIG_HEAD)
    out = tmp_path / "out"
    out.mkdir()
    command = [sys.executable, "-m", "archspec", "build", str(spec), "--no-tree", "-q", "--save", str(out / "w.pt")]
    with subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT, preexec_fn=default_sigint
    ) as proc:
        deadline = time.monotonic() + 120
        while not any(out.iterdir()):  # the temporary file appears as torch starts writing
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.002)
        [temp] = out.iterdir()
        assert re.fullmatch(rf"\.w\.pt\.{proc.pid}\.[0-9a-f]{{8}}\.tmp", temp.name)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "interrupted\n"
    assert list(out.iterdir()) == []


# Temporary files carry their writer's pid; those of dead writers are swept by the next write.


def test_temporary_files_are_named_after_target_and_writer(tmp_path):
    seen = []
    write_atomic(tmp_path / "x.bin", lambda handle: seen.extend(p.name for p in tmp_path.iterdir()))
    assert len(seen) == 1
    assert re.fullmatch(rf"\.x\.bin\.{os.getpid()}\.[0-9a-f]{{8}}\.tmp", seen[0])


def _dead_pid() -> int:
    with subprocess.Popen([sys.executable, "-c", "pass"]) as proc:
        proc.wait()
    return proc.pid


def _aged(path: Path, seconds: float = STALE_AFTER + 60) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then), follow_symlinks=False)
    return path


def test_stale_temporary_files_of_the_same_target_are_swept(tmp_path, capsys):
    dead = _dead_pid()
    stale = tmp_path / f".schema.json.{dead}.0badcafe.tmp"
    stale.write_bytes(b"half a schema")
    _aged(stale)
    kept = {
        "fresh": tmp_path / f".schema.json.{dead}.1badcafe.tmp",  # its writer may be in another container
        "alive": tmp_path / ".schema.json.1.2badcafe.tmp",  # pid 1 is always running
        "other target": tmp_path / f".other.json.{dead}.3badcafe.tmp",
        "not our naming": tmp_path / f".schema.json.{dead}.tmp",
        "old naming": tmp_path / ".schema.json.abc123.tmp",
        "no dot": tmp_path / f"schema.json.{dead}.4badcafe.tmp",
    }
    for name, path in kept.items():
        path.write_text(name)
        if name != "fresh":
            _aged(path)
    folder = tmp_path / f".schema.json.{dead}.5badcafe.tmp"
    folder.mkdir()
    link = tmp_path / f".schema.json.{dead}.6badcafe.tmp"
    link.symlink_to(kept["other target"])
    _aged(link)
    assert main(["schema", "-o", str(tmp_path / "schema.json")]) == 0
    assert not stale.exists()
    assert all(path.read_text() == name for name, path in kept.items())
    assert folder.is_dir() and link.is_symlink()
    assert capsys.readouterr().err == f"wrote {tmp_path / 'schema.json'}\n"


def test_sweeping_keeps_the_suffix_an_exporter_needs(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".model.pt2.{dead}.0badcafe.tmp.pt2"
    stale.write_bytes(b"half a program")
    _aged(stale)
    other = tmp_path / f".model.pt2.{dead}.1badcafe.tmp.onnx"
    other.write_bytes(b"not the suffix of this target")
    _aged(other)
    assert sweep_stale(tmp_path / "model.pt2", ".pt2") == [stale]
    assert other.exists()


# An export is checked before it is published.


@pytest.mark.parametrize("existing", [False, True], ids=["new", "replacing"])
def test_a_failed_export_check_publishes_nothing(tmp_path, monkeypatch, existing, capsys):
    spec = _spec_file(tmp_path)
    out = tmp_path / "out" / "model.pt2"
    out.parent.mkdir()
    if existing:
        out.write_bytes(b"the last good export")
    checked = []
    real_check = export_module._check_pt2

    def check(model, plan, path, *rest):
        checked.append(Path(path))
        assert Path(path).stat().st_size > 0  # the program is written, and not yet published
        if existing:
            assert out.read_bytes() == b"the last good export"
        else:
            assert not out.exists()
        return real_check(model, plan, path, *rest)

    monkeypatch.setattr(export_module, "_check_pt2", check)
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # every difference, even 0, now fails
    assert main(["export", str(spec), "--format", "pt2", "-o", str(out), *(["--force"] if existing else [])]) == 1
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"error: the exported program at batch 1, 32×32 differs from the eager model by \S+ \(tolerance -1.0\) "
        r"\[AS802\]\n"
        r"hint \(AS802, cannot export\): .*\n",
        err,
    )
    [temp] = checked
    assert temp.parent == out.parent and re.fullmatch(r"\.model\.pt2\.\d+\.[0-9a-f]{8}\.tmp\.pt2", temp.name)
    assert [p.name for p in out.parent.iterdir()] == (["model.pt2"] if existing else [])
    if existing:
        assert out.read_bytes() == b"the last good export"


# Of two runs creating one file, only one publishes it.


def test_a_file_that_appears_during_the_write_is_not_replaced(tmp_path):
    out = tmp_path / "drawing.dot"

    def meanwhile(handle):
        handle.write(b"ours")
        out.write_bytes(b"theirs")  # another run finished first

    with pytest.raises(OutputExistsError) as raised:
        write_atomic(out, meanwhile)
    assert str(raised.value) == f"{out} exists (it appeared while this file was written); pass --force to overwrite it"
    assert out.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["drawing.dot"]
    write_atomic(out, meanwhile, force=True)
    assert out.read_bytes() == b"ours"


def test_without_hard_links_the_name_is_claimed_exclusively(tmp_path, monkeypatch):
    def no_hard_links(source, target):
        raise OSError(errno.EPERM, os.strerror(errno.EPERM), str(source))

    monkeypatch.setattr(os, "link", no_hard_links)
    out = tmp_path / "drawing.dot"
    assert write_text_atomic(out, "first") == out
    assert out.read_text() == "first"
    other = tmp_path / "other.dot"

    def meanwhile(handle):
        handle.write(b"ours")
        other.write_bytes(b"theirs")

    with pytest.raises(OutputExistsError, match="it appeared while this file was written"):
        write_atomic(other, meanwhile)
    assert other.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drawing.dot", "other.dot"]


def test_two_renders_of_one_new_file_report_one_write(tmp_path):
    out = tmp_path / "same.dot"
    command = [sys.executable, "-m", "archspec", "render", SPEC, "-o", str(out)]
    procs = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    results = sorted((proc.wait(timeout=120), proc.communicate()[1]) for proc in procs)
    assert [status for status, _ in results] == [0, 2]
    assert results[0][1] == f"wrote {out}\n"
    assert results[1][1].startswith(f"error: {out} exists")
    assert results[1][1].endswith("pass --force to overwrite it [AS602]\n" + HINT_AS602)
    assert out.read_text().startswith("digraph")
    assert [p.name for p in tmp_path.iterdir()] == ["same.dot"]


# Every output has the mode a plain open() gives.


def test_every_output_has_the_mode_of_a_plain_open(tmp_path, capsys):
    spec = str(_spec_file(tmp_path))
    weights = tmp_path / "reference.pth"
    out = tmp_path / "out"
    out.mkdir()
    old = os.umask(0o027)
    try:
        with open(out / "plain", "w"):
            pass
        import archspec

        torch.save(archspec.build(archspec.load_spec(spec)).state_dict(), weights)
        commands = [
            ["build", spec, "--no-tree", "--save", str(out / "built.pt")],
            ["convert", spec, str(weights), "-o", str(out / "converted.pt")],
            ["render", spec, "-o", str(out / "drawing.dot")],
            ["render", spec, "-o", str(out / "graph.json")],
            ["schema", "-o", str(out / "schema.json")],
            ["export", spec, "--format", "pt2", "-o", str(out / "model.pt2")],
            ["export", spec, "--format", "onnx", "-o", str(out / "model.onnx")],
        ]
        for command in commands:
            assert main(command) == 0, capsys.readouterr().err
        write_text_atomic(out / "table.csv", "a,b\n1,2\n")
    finally:
        os.umask(old)
    modes = {path.name: oct(path.stat().st_mode & 0o777) for path in out.iterdir()}
    assert modes == dict.fromkeys(
        ["plain", "built.pt", "converted.pt", "drawing.dot", "graph.json", "schema.json", "model.pt2", "model.onnx",
         "table.csv"],
        "0o640",
    )  # fmt: skip


def test_a_replaced_file_keeps_its_mode(tmp_path, capsys):
    target = tmp_path / "schema.json"
    target.write_text("old")
    target.chmod(0o600)
    assert main(["schema", "-o", str(target), "--force"]) == 0
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert target.read_text().startswith("{")
    export = tmp_path / "model.pt2"
    export.write_text("old")
    export.chmod(0o604)
    assert main(["export", str(_spec_file(tmp_path)), "--format", "pt2", "-o", str(export), "--force"]) == 0
    assert oct(export.stat().st_mode & 0o777) == "0o604"


@pytest.mark.parametrize(
    ("argv", "option", "source"),
    [
        (["render", "{spec}", "-o", "{spec}"], "--output", "SPEC"),
        (["build", "{spec}", "--weights", "{weights}", "--save", "{weights}"], "--save", "--weights"),
        (["build", "{spec}", "--init-from", "{weights}", "--save", "{weights}"], "--save", "--init-from"),
        (["convert", "{spec}", "{weights}", "-o", "{weights}"], "--output", "WEIGHTS"),
        (["export", "{spec}", "--weights", "{weights}", "-o", "{weights}"], "--output", "--weights"),
    ],
    ids=["render", "build --weights", "build --init-from", "convert", "export"],
)
def test_no_command_writes_over_a_file_it_reads(tmp_path, capsys, argv, option, source):
    spec = _spec_file(tmp_path)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"the user's weights")
    filled = [arg.format(spec=spec, weights=weights) for arg in argv]
    target = weights if "{weights}" in argv[-1] else spec
    before = target.read_bytes()
    assert main([*filled, "--force"]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: {option} {target} is the {source} file: writing it would destroy what the run reads; "
        "give another file name [AS603]"
    )
    assert target.read_bytes() == before
