"""Images per second through the data layer: the streaming dataset under a DataLoader, and Catalog.load().

Writes 10,000 64×64 RGB JPEGs in 10 class folders (seeded content; kept in --dir to be reused),
then times full passes over ``Catalog.dataset`` through ``torch.utils.data.DataLoader(batch_size=64,
shuffle=True, num_workers=W, persistent_workers=W > 0)`` for each W in --workers, after one untimed
pass (which starts the workers and warms the page cache), and ``Catalog.load()`` once. Prints a
markdown table with the median of --repeats passes and the CPU it ran on.

    python benchmarks/loader_speed.py --repeats 3
    python benchmarks/loader_speed.py --dir /tmp/loader-speed --workers 0 2 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from archspec.data import scan
from archspec.runtime import machine_description


def generate(root: Path, count: int, classes: int, size: int, seed: int = 0) -> None:
    """``count`` JPEGs, ``size``×``size`` RGB, spread over ``classes`` folders; kept when already written."""
    recipe = {"count": count, "classes": classes, "size": size, "seed": seed}
    marker = root / ".recipe.json"  # hidden: the scan skips it
    if marker.exists() and json.loads(marker.read_text()) == recipe:
        return
    rng = np.random.default_rng(seed)
    for index in range(count):
        folder = root / f"class_{index % classes:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)  # smooth colour fields plus grain, like a photo
        image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.Resampling.BILINEAR), dtype=np.int16)
        image = np.clip(image + rng.integers(-12, 13, image.shape), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(folder / f"{index:05d}.jpg", quality=90)
    marker.write_text(json.dumps(recipe))


def passes(loader: DataLoader[tuple[torch.Tensor, int]], repeats: int) -> list[float]:
    """Seconds per full pass over ``loader``, after one untimed pass."""
    times = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        for _ in loader:
            pass
        if repeat:
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, help="where the JPEGs are written and reused (default: a temp dir)")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = args.dir or Path(scratch)
        start = time.perf_counter()
        generate(root, args.count, args.classes, args.size)
        written = time.perf_counter() - start
        start = time.perf_counter()
        catalog = scan(root)
        scanned = time.perf_counter() - start
        size = (args.size, args.size)
        dataset = catalog.dataset(np.arange(len(catalog.labels)), size)
        rows = []
        for workers in args.workers:
            loader = DataLoader(
                dataset, batch_size=args.batch, shuffle=True, num_workers=workers, persistent_workers=workers > 0,
                generator=torch.Generator().manual_seed(0),
            )  # fmt: skip
            times = passes(loader, args.repeats)
            median = statistics.median(times)
            rows.append(
                f"| dataset + DataLoader | {workers} | {len(dataset) / median:,.0f} | "
                f"{', '.join(f'{t:.2f}' for t in times)} |"
            )
            del loader
        start = time.perf_counter()
        images = catalog.load(size)
        loaded = time.perf_counter() - start
        rows.append(f"| Catalog.load() | (this process) | {len(images.y) / loaded:,.0f} | {loaded:.2f} (once) |")

    command = shlex.join(["python", "benchmarks/loader_speed.py", *sys.argv[1:]])
    print(f"`{command}`\n")
    print(
        f"{catalog.describe()}; on {machine_description()}; {os.cpu_count()} logical CPUs, "
        f"Python {platform.python_version()}.\n"
        f"Scan (file list and JPEG headers): {scanned:.2f} s; writing the JPEGs took {written:.1f} s "
        f"(0 when reused). Batches of {args.batch}, shuffled; each timed pass decodes every image once, "
        "after one untimed pass.\n"
    )
    print(f"| path | workers | images/s (median of {args.repeats}) | seconds per pass |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
