"""Time and peak memory of `archspec validate` on hostile spec files, one fresh process per case.

    python benchmarks/hostile_inputs.py

Prints a Markdown table: case, first message line, wall time (median of 3) and peak RSS of the process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _alias_bomb() -> bytes:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    return ("\n".join(lines) + "\n").encode()


CASES: dict[str, bytes | None] = {
    "valid spec (specs/spectformer.yaml)": None,
    "alias bomb (10^9 values)": _alias_bomb(),
    "5,000-level nesting": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "50 MB file": b"name: x\n" + b"# padding line\n" * 3_500_000,
    "!!python/object/apply tag": b"name: !!python/object/apply:os.system ['echo pwned']\n",
    "binary bytes": bytes(range(256)) * 4,
    "empty file": b"",
    "depth 10^9, dim 10^7": b"name: x\nstages:\n  - {dim: 10000000, depth: 1000000000, mixer: {type: spectral}}\n",
    "extends cycle": b"extends: cycle.yaml\nname: x\n",
    "extends escaping (/etc/passwd)": b"extends: /etc/passwd\nname: x\n",
}


def _run(path: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS in KiB and the first stderr (or stdout) line of one validate run."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "archspec", "validate", path], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    _, _status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    first = (err or out).splitlines()[0] if (err or out) else ""
    return wall, usage.ru_maxrss, first


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, content in CASES.items():
            if content is None:
                path = str(root / "specs" / "spectformer.yaml")
            else:
                path = str(Path(tmp) / ("cycle.yaml" if "cycle" in case else "spec.yaml"))
                Path(path).write_bytes(content)
            runs = [_run(path) for _ in range(3)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            message = runs[0][2].replace(tmp + "/", "").replace(str(root) + "/", "")
            rows.append((case, message, wall, rss))
    print("| case | message | wall (s, median of 3) | peak RSS (MiB) |")
    print("|---|---|---:|---:|")
    for case, message, wall, rss in rows:
        shown = message if len(message) < 110 else message[:107] + "..."
        print(f"| {case} | `{shown}` | {wall:.2f} | {rss / 1024:.0f} |")


if __name__ == "__main__":
    main()
