"""Wall time and peak memory of archspec on hostile input, one fresh process per case.

    python benchmarks/hostile_inputs.py [--tree PATH] [--timeout S] [--repeats N]

Each case writes its files into a temporary folder and runs one archspec command there. The table
gives the case, the first line archspec printed ("hang" when the command was killed at the timeout,
"killed" when it passed ``--max-rss``), the median wall time of ``--repeats`` runs and the largest
peak RSS among them.
``--tree`` runs another checkout of archspec (its folder is put first on PYTHONPATH), so two
versions can be measured side by side by the same cases.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = "name: T\ninput: {size: 32}\nstages:\n  - {dim: 8, depth: 1, mixer: {type: spectral}}\n"


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _merge_bomb() -> str:
    """YAML merge keys nested nine deep, each level merging the one below ten times: about 600 bytes."""
    level = "&a0 {k: 0}"
    for i in range(1, 10):
        level = f"&a{i} {{<<: [{level}, {', '.join([f'*a{i - 1}'] * 9)}]}}"
    return f"name: x\nbomb: {level}\n"


def _zip_bomb(path: Path) -> None:
    """A torch-zip-shaped checkpoint whose one deflated member inflates to 1.5 GiB of zeros."""
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("bomb/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("bomb/.format_version", b"1")
        with archive.open("bomb/data/0", "w", force_zip64=True) as member:
            for _ in range(1536):
                member.write(chunk)


@dataclass
class Case:
    """Files to write (text, or a function that writes the file) and the archspec arguments to run."""

    files: dict[str, str | Callable[[Path], None]]
    argv: list[str]
    setup: Callable[[Path], None] | None = field(default=None)


def _fifo(folder: Path) -> None:
    os.mkfifo(folder / "pipe.yaml")


CASES: dict[str, Case] = {
    "valid spec": Case({}, ["validate", str(ROOT / "specs" / "spectformer.yaml")]),
    "alias bomb (10^9 values)": Case({"spec.yaml": _alias_bomb()}, ["validate", "spec.yaml"]),
    "merge-key bomb (600 bytes)": Case({"spec.yaml": _merge_bomb()}, ["validate", "spec.yaml"]),
    "5,000-level flow nesting": Case({"spec.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n"}, ["validate", "spec.yaml"]),
    "50 MB file": Case({"spec.yaml": "name: x\n" + "# padding line\n" * 3_500_000}, ["validate", "spec.yaml"]),
    "1 MiB flow list": Case({"spec.yaml": "name: [" + ", ".join(["0"] * 349_000) + "]\n"}, ["validate", "spec.yaml"]),
    "extends + 19,000 top-level keys": Case(
        {"spec.yaml": "extends: spectformer\n" + "".join(f"k{i}: 1\n" for i in range(19_000))},
        ["validate", "spec.yaml"],
    ),
    "extends + 4,500 top-level keys (under the cap)": Case(
        {"spec.yaml": "extends: spectformer\n" + "".join(f"k{i}: 1\n" for i in range(4_500))},
        ["validate", "spec.yaml"],
    ),
    "values over the cap across a chain": Case(
        {
            "base.yaml": TINY + "extra: [" + ", ".join(["1"] * 6_000) + "]\n",
            "spec.yaml": "extends: base.yaml\nmore: [" + ", ".join(["1"] * 6_000) + "]\n",
        },
        ["validate", "spec.yaml"],
    ),
    "named pipe as the spec": Case({}, ["validate", "pipe.yaml"], setup=_fifo),
    "64 stages × depth 1000": Case(
        {
            "spec.yaml": "name: deep\ninput: {size: 32}\nstages:\n  - {dim: 8, depth: 1000, mixer: {type: spectral}}\n"
            + "  - {dim: 8, depth: 1000, mixer: {type: spectral}, downsample: {type: none}}\n" * 63
        },
        ["validate", "spec.yaml"],
    ),
    "!!python/object/apply tag": Case(
        {"spec.yaml": "name: !!python/object/apply:os.system ['echo pwned']\n"}, ["validate", "spec.yaml"]
    ),
    "!!binary name": Case({"spec.yaml": "name: !!binary aGVsbG8=\n"}, ["validate", "spec.yaml"]),
    "depth: true": Case({"spec.yaml": TINY.replace("depth: 1", "depth: true")}, ["validate", "spec.yaml"]),
    "200-digit kernel": Case(
        {"spec.yaml": TINY.replace("type: spectral", "type: spectral, conv_in: 1" + "0" * 200)},
        ["validate", "spec.yaml"],
    ),
    "terminal escape in a key": Case(
        {"spec.yaml": TINY + '"\\e[1A\\e[2K\\rx.yaml: ok\\e[8m": 1\n'}, ["validate", "spec.yaml"]
    ),
    "900 KB type name": Case(
        {"spec.yaml": TINY.replace("type: spectral", "type: " + "s" * 900_000)}, ["validate", "spec.yaml"]
    ),
    "binary bytes": Case(
        {"spec.yaml": lambda path: path.write_bytes(bytes(range(256)) * 4)}, ["validate", "spec.yaml"]
    ),
    "extends cycle": Case({"spec.yaml": "extends: spec.yaml\nname: x\n"}, ["validate", "spec.yaml"]),
    "extends /etc/passwd": Case({"spec.yaml": "extends: /etc/passwd\nname: x\n"}, ["validate", "spec.yaml"]),
    "sweep of 1000 × 1000 × 1000": Case(
        {},
        ["sweep", str(ROOT / "specs" / "spectformer.yaml")]
        + [arg for i in range(3) for arg in ("--grid", f"stages.{i}.depth=" + ",".join(map(str, range(1, 1001))))],
    ),
    "zip bomb as weights": Case(
        {"bomb.pt": _zip_bomb},
        ["convert", str(ROOT / "specs" / "spectformer.yaml"), "bomb.pt", "-o", "out.pt"],
    ),
}


def _write(folder: Path, case: Case) -> None:
    for name, content in case.files.items():
        if callable(content):
            content(folder / name)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    if case.setup is not None:
        case.setup(folder)


def _rss_kib(pid: int) -> int:
    """The resident memory of a running process, in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


def _run(
    argv: list[str], folder: Path, env: dict[str, str], timeout: float, max_rss_kib: int
) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB and the first line printed, for one run."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "archspec", *argv], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        killed = ""
        while True:
            pid, _, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            over = _rss_kib(proc.pid) > max_rss_kib
            if over or time.perf_counter() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, _, usage = os.wait4(proc.pid, 0)
                killed = (
                    f"killed at {max_rss_kib / 2**20:.0f} GiB of memory"
                    if over
                    else f"hang (killed at {timeout:.0f} s)"
                )
                break
            time.sleep(0.01)
        wall = time.perf_counter() - start
        out.seek(0)
        lines = out.read().decode(errors="replace").splitlines()
    first = killed or (lines[0] if lines else "")
    if not killed and any(line.startswith("Traceback") for line in lines):
        first = "traceback: " + lines[-1]
    return wall, usage.ru_maxrss, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the archspec checkout to run (default: this one)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a run counts as a hang")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="run only the cases whose name contains this text")
    parser.add_argument("--max-rss", type=float, default=4.0, help="GiB of memory at which a run is killed")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.tree.resolve())}
    print("| case | first line printed | wall (s, median) | peak RSS (MiB) |")
    print("|---|---|---:|---:|")
    for name, case in CASES.items():
        if args.only not in name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            _write(folder, case)
            runs = [_run(case.argv, folder, env, args.timeout, int(args.max_rss * 2**20)) for _ in range(args.repeats)]
        wall = statistics.median(run[0] for run in runs)
        rss = max(run[1] for run in runs)
        message = runs[0][2].replace(str(ROOT) + "/", "").replace(str(args.tree.resolve()) + "/", "")
        shown = message if len(message) < 100 else message[:97] + "..."
        shown = shown.replace("|", "\\|").replace("`", "'")
        print(f"| {name} | `{shown}` | {wall:.2f} | {rss / 1024:.0f} |", flush=True)


if __name__ == "__main__":
    main()
