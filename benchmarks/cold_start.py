"""Wall time of archspec commands from a cold start: each run is a fresh process.

    python benchmarks/cold_start.py --repeats 9

Every command runs once untimed (so Python's bytecode caches exist, as after any install), then
``--repeats`` times; the table gives the median with min–max. ``python -c pass`` and
``python -c "import torch"`` are the floors the commands stand on. Child processes run with
bytecode caching on even where ``PYTHONDONTWRITEBYTECODE`` is set, since every installed package
normally has its caches.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archspec.runtime import machine_description  # imports torch only when called

ROOT = Path(__file__).resolve().parent.parent


def commands(scratch: Path) -> list[tuple[str, list[str]]]:
    # The installed entry point, as users run it; the one beside this interpreter, not a version
    # manager's shim (pyenv's adds a shell script and a second process).
    beside = Path(sys.executable).with_name("archspec")
    script = str(beside) if beside.exists() else shutil.which("archspec")
    cli = [script] if script else [sys.executable, "-m", "archspec"]
    return [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
        ("archspec validate specs/spectformer.yaml", [*cli, "validate", "specs/spectformer.yaml"]),
        ("archspec render specs/spectformer.yaml -o x.dot",
         [*cli, "render", "specs/spectformer.yaml", "-o", str(scratch / "x.dot"), "--force"]),
        ("archspec build specs/spectformer-h-l.yaml --device meta --no-tree",
         [*cli, "build", "specs/spectformer-h-l.yaml", "--device", "meta", "--no-tree"]),
    ]  # fmt: skip


def wall_times(command: list[str], repeats: int, env: dict[str, str]) -> list[float]:
    subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    print(f"{machine_description()}, Python {sys.version.split()[0]}, median of {args.repeats} fresh processes\n")
    print("| command | wall s (median, min–max) |")
    print("|---|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        for label, command in commands(Path(scratch)):
            times = wall_times(command, args.repeats, env)
            print(f"| `{label}` | {statistics.median(times):.2f} ({min(times):.2f}–{max(times):.2f}) |")


if __name__ == "__main__":
    main()
