"""Write a small, messy image folder for trying ``archspec fit`` on real files.

    python benchmarks/shapes_folder.py shapes [--per-class 200] [--seed 0]

Three classes (circle, square, triangle), one subfolder each. Every image has its own size (48 to
160 pixels a side, any aspect), colours and position; half are JPEGs, the rest PNGs, some of
them greyscale or palette images, so the folder mixes sizes, formats and modes as real ones do.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle")


def _image(kind: str, rng: np.random.Generator) -> Image.Image:
    width, height = (int(v) for v in rng.integers(48, 161, size=2))
    background = tuple(int(v) for v in rng.integers(0, 120, size=3))
    colour = tuple(int(v) for v in rng.integers(120, 256, size=3))
    image = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(image)
    side = int(rng.uniform(0.35, 0.8) * min(width, height))
    left = int(rng.integers(0, width - side + 1))
    top = int(rng.integers(0, height - side + 1))
    box = (left, top, left + side, top + side)
    if kind == "circle":
        draw.ellipse(box, fill=colour)
    elif kind == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(left + side // 2, top), (left, top + side), (left + side, top + side)], fill=colour)
    noise = rng.normal(0, 12, size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def write(root: Path, per_class: int = 200, seed: int = 0) -> int:
    """Write the folder; returns the number of images."""
    rng = np.random.default_rng(seed)
    count = 0
    for kind in CLASSES:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = _image(kind, rng)
            mode = rng.choice(["RGB", "RGB", "L", "P"])
            if mode == "L":
                image = image.convert("L")
            elif mode == "P":
                image = image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
            if i % 2 and mode != "P":
                image.save(folder / f"{i:04d}.jpg", quality=90)
            else:
                image.save(folder / f"{i:04d}.png")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"wrote {write(args.folder, args.per_class, args.seed)} images to {args.folder}")


if __name__ == "__main__":
    main()
