"""Wall time and peak memory of archspec on hostile input, one fresh process per case.

    python benchmarks/hostile_inputs.py [--tree PATH] [--timeout S] [--repeats N] [--only TEXT] [--verbose]

Each case writes its files into a temporary folder and runs one archspec command there. The table
gives the case (its group, then its name), the first line archspec printed ("hang" when the command
was killed at the timeout, "killed" when it passed ``--max-rss``), the median wall time of
``--repeats`` runs and the largest peak RSS among them. Where the line that matters comes later (an
error after fit has described the data, say), a case names a text to look for, and the cell shows the
first line holding it from that text on, after "… ". A case may also expect an exit status, files left byte-identical
or another check of the folder afterwards; where one fails, the cell reads "FAILED: ..." with what
went wrong, then what was printed. ``--verbose`` writes each case's exit status and whole output to
stderr.

The groups are ``spec`` (spec files, for validate, sweep and convert), ``fit`` (fit's options and
the files it writes), ``data`` (what fit reads as images), ``checkpoint`` (files read by
``fit --resume`` and ``build --weights``) and ``search`` (space files, search's storage and outputs).
``--only`` takes a group's name, or any text in a case's name.
``--tree`` runs another checkout of archspec (its folder is put first on PYTHONPATH), so two
versions can be measured side by side by the same cases.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


Setup = Callable[[Path, "Workshop"], None]
Check = Callable[[Path], "str | None"]


@dataclass
class Case:
    """Files to write (text, or a function that writes the file) and the archspec arguments to run.

    ``setup`` prepares the folder further (it may run archspec through the :class:`Workshop`); ``env``
    adds environment variables to the run. What a run must leave behind: an exit status among ``exits``
    (any, when empty), the files named in ``unchanged`` byte-identical, and ``check`` returning None
    (else the problem, in words). ``shows`` picks the line the table shows: the first one holding it, from
    that text on.
    """

    files: dict[str, str | Callable[[Path], None]]
    argv: list[str]
    setup: Setup | None = field(default=None)
    group: str = "spec"
    env: dict[str, str] = field(default_factory=dict)
    exits: tuple[int, ...] = ()
    unchanged: tuple[str, ...] = ()
    check: Check | None = field(default=None)
    shows: str = ""


class Workshop:
    """What the setups share: the environment archspec runs in, and files made once per run of this script
    (a ``fit --save`` checkpoint and ``build --save`` weights of :data:`TINY`), made by the archspec measured."""

    def __init__(self, env: Mapping[str, str], scratch: Path) -> None:
        self.env = dict(env)
        self.scratch = scratch
        self._made: dict[str, Path] = {}

    def archspec(self, argv: list[str], cwd: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "archspec", *argv], cwd=cwd, env=self.env, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"setup: archspec {' '.join(argv)} failed:\n{done.stdout}{done.stderr}")

    def _make(self, name: str, argv: list[str]) -> Path:
        if name not in self._made:
            (self.scratch / "t.yaml").write_text(TINY, encoding="utf-8")
            self.archspec([*argv, "--save", name], self.scratch)
            self._made[name] = self.scratch / name
        return self._made[name]

    def fit_checkpoint(self) -> Path:
        """A one-epoch ``fit --save`` checkpoint of TINY on digits (1 channel, 8×8, 10 classes)."""
        return self._make("fit.pt", ["fit", "t.yaml", *FIT_ARGS])

    def weights(self) -> Path:
        """``build --save`` weights of TINY as written (3 channels, 32×32, 1000 classes)."""
        return self._make("weights.pt", ["build", "t.yaml", "--no-tree"])


FIT_ARGS = ["--epochs", "1", "--threads", "1"]
"""What every fit case trains with, when it trains: one epoch on one thread."""
USAGE, INVALID, OK = (2,), (1,), (0,)
"""Exit statuses: a usage error, an error with an AS code, success."""
REFUSED = (1, 2)


def _fifo(folder: Path, _: Workshop) -> None:
    os.mkfifo(folder / "pipe.yaml")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Small files built on the spot: images, .npy and .npz files, PNGs written by hand.


def _pattern(label: int, index: int, shape: tuple[int, int]) -> Any:
    """Pixels in [0, 1) that tell the class apart: the class sets the stripes, the index the noise."""
    import numpy as np

    rows, cols = np.indices(shape)
    stripes = ((rows if label else cols) // 2 % 2).astype(np.float64)
    noise = np.random.default_rng(index * 31 + label).random(shape)
    return np.clip(0.7 * stripes + 0.3 * noise, 0, 0.999)


def _class_folders(
    root: Path, make: Callable[[Path, Any, int], None], classes: tuple[str, ...] = ("a", "b"), count: int = 10,
    shape: tuple[int, int] = (16, 16),
) -> None:  # fmt: skip
    """One subfolder of ``root`` per class, each with ``count`` images that ``make(stem, pixels, index)`` writes."""
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            make(root / name / f"{index:02d}", _pattern(label, index, shape), index)


def _grey_png(stem: Path, pixels: Any, _: int) -> None:
    from PIL import Image

    Image.fromarray((pixels * 255).astype("uint8"), mode="L").save(stem.with_suffix(".png"))


def _png16(stem: Path, pixels: Any, _: int) -> None:
    from PIL import Image

    Image.fromarray((pixels * 65535).astype("uint16")).save(stem.with_suffix(".png"))


def _float_tiff(stem: Path, pixels: Any, _: int) -> None:
    from PIL import Image

    Image.fromarray(pixels.astype("float32"), mode="F").save(stem.with_suffix(".tif"))


def _jpeg_or_png(stem: Path, pixels: Any, index: int) -> None:
    """An RGB image of a size that changes with ``index``, as a JPEG or a PNG by turns."""
    import numpy as np
    from PIL import Image

    height, width = 24 + 7 * index, 60 - 3 * index
    grey = np.resize(pixels, (height, width))
    rgb = (np.stack([grey, grey[::-1], 1 - grey], axis=-1) * 255).astype("uint8")
    Image.fromarray(rgb, mode="RGB").save(stem.with_suffix(".jpg" if index % 2 else ".png"))


def _grey_folder(name: str, classes: tuple[str, ...] = ("a", "b")) -> Setup:
    def setup(folder: Path, _: Workshop) -> None:
        _class_folders(folder / name, _grey_png, classes)

    return setup


def _empty_class(folder: Path, _: Workshop) -> None:
    _class_folders(folder / "data", _grey_png)
    (folder / "data" / "c").mkdir()


def _link_to_root(folder: Path, _: Workshop) -> None:
    _class_folders(folder / "data", _grey_png, ("b",))
    (folder / "data" / "a").symlink_to("/")


def _npy(array: Any) -> bytes:
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    """The magic string and header of an .npy file declaring ``shape`` and ``dtype``, without the data."""
    import numpy as np
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    header = {"descr": npy.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    npy.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def _digit_arrays(count: int) -> tuple[Any, Any]:
    """``count`` 8×8 greyscale images (uint8) and labels of two classes."""
    import numpy as np

    labels = np.arange(count, dtype=np.int64) % 2
    x = np.stack([(_pattern(int(label), i, (8, 8)) * 255).astype(np.uint8) for i, label in enumerate(labels)])
    return x, labels


def _npz(path: Path) -> None:
    """A valid npz of 40 8×8 images in two classes."""
    import numpy as np

    x, y = _digit_arrays(40)
    np.savez(path, x=x, y=y)


def _huge_label(path: Path) -> None:
    import numpy as np

    x, y = _digit_arrays(72)  # 5.7 KB in all
    y[0] = 10**12
    np.savez(path, x=x, y=y)


def _ten_tib_header(path: Path) -> None:
    """x declares 274,877,906 images of 200×200 bytes (10 TiB) and y as many labels; neither holds any data."""
    count = 10 * 2**40 // (200 * 200)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", _npy_header((count, 200, 200), "uint8"))
        archive.writestr("y.npy", _npy_header((count,), "int64"))


def _deflate_bomb(path: Path) -> None:
    """x inflates from about 1 MB to 1 GiB of zeros (16,384 images of 256×256); y holds real labels."""
    import numpy as np

    count = 16_384
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((count, 256, 256), "uint8"))
            chunk = bytes(1 << 20)
            for _ in range(count * 256 * 256 // len(chunk)):
                member.write(chunk)
        archive.writestr("y.npy", _npy(np.arange(count, dtype=np.int64) % 2), compress_type=zipfile.ZIP_STORED)


def _no_magic(path: Path) -> None:
    import numpy as np

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"these bytes are no .npy file\n" * 40)
        archive.writestr("y.npy", _npy(np.arange(40, dtype=np.int64) % 2))


def _broken_deflate(path: Path) -> None:
    """A compressed npz whose x member starts its deflate stream with 16 bytes of 0xff (an invalid block type)."""
    import numpy as np

    x, y = _digit_arrays(200)
    np.savez_compressed(path, x=x, y=y)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x.npy")
    with path.open("r+b") as handle:
        handle.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        handle.write(b"\xff" * 16)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _black_png(width: int, height: int, rows: int) -> bytes:
    """A greyscale PNG of ``width``×``height`` whose first ``rows`` rows of black pixels are stored."""
    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter type 0, then the pixels
    idat = b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _big_pngs(folder: Path, _: Workshop) -> None:
    """Four complete 10000×10000 black PNGs (100 megapixels, about 100 KB each), two per class."""
    image = _black_png(10_000, 10_000, 10_000)
    for name in ("a/0.png", "a/1.png", "b/0.png", "b/1.png"):
        (folder / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / "data" / name).write_bytes(image)


def _bomb_png(folder: Path, _: Workshop) -> None:
    """A 100000×100000 PNG header (10^10 pixels) with one stored row, beside a class of plain images."""
    _class_folders(folder / "data", _grey_png, ("b",))
    (folder / "data" / "a").mkdir()
    (folder / "data" / "a" / "bomb.png").write_bytes(_black_png(100_000, 100_000, 1))


# Checkpoints: one made by archspec, then edited with torch.


def _torch() -> Any:
    import torch

    return torch


def _copy_of(source: Callable[[Workshop], Path], name: str) -> Setup:
    def setup(folder: Path, shop: Workshop) -> None:
        shutil.copyfile(source(shop), folder / name)

    return setup


def _edited(source: Callable[[Workshop], Path], edit: Callable[[dict[str, Any]], Any], name: str) -> Setup:
    """Save to ``name`` what ``edit`` returns for the checkpoint ``source`` made, or the checkpoint edited in place."""

    def setup(folder: Path, shop: Workshop) -> None:
        torch = _torch()
        checkpoint = torch.load(source(shop), weights_only=False)
        edited = edit(checkpoint)
        torch.save(checkpoint if edited is None else edited, folder / name)

    return setup


def _forged_history(checkpoint: dict[str, Any]) -> None:
    """Claim a 50-epoch run whose last epoch reached 99.9%."""
    state = checkpoint["fit"]
    state["run"]["epochs"] = 50
    state["history"].append({**state["history"][-1], "epoch": 50, "val_acc": 0.999, "val_loss": 0.01})


def _run_as_list(checkpoint: dict[str, Any]) -> None:
    checkpoint["fit"]["run"] = list(checkpoint["fit"]["run"].items())


def _no_param_groups(checkpoint: dict[str, Any]) -> None:
    del checkpoint["fit"]["optimizer"]["param_groups"]


def _clock_as_text(checkpoint: dict[str, Any]) -> None:
    checkpoint["fit"]["clock"] = "0.14 s"


def _meta_tensors(checkpoint: dict[str, Any]) -> dict[str, Any]:
    torch = _torch()
    return {key: torch.empty_like(value, device="meta") for key, value in checkpoint["state_dict"].items()}


def _integer_tensors(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {key: value.round().long() for key, value in checkpoint["state_dict"].items()}


def _timm_train_checkpoint(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The dict timm's train.py saves, around these weights."""
    args = argparse.Namespace(
        model="T", lr=0.001, epochs=300, batch_size=128, opt="adamw", weight_decay=0.05, amp=True,
        data_dir="/data/imagenet", mean=None, img_size=[32, 32], drop_path=0.1, sched="cosine",
    )  # fmt: skip
    return {
        "epoch": 299,
        "arch": "T",
        "state_dict": checkpoint["state_dict"],
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5, "weight_decay": 0.05, "params": [0, 1, 2]}]},
        "version": 2,
        "args": args,
        "metric": 72.5,
    }


SPEC_DEPTH = 4_500
"""Levels of the nested spec in a checkpoint: about 41 KB of pickle."""


def _deep_spec(folder: Path, shop: Workshop) -> None:
    """A checkpoint without weights whose spec, saved for another model, is a mapping nested :data:`SPEC_DEPTH` deep."""
    torch = _torch()
    spec: Any = {"name": "deep"}
    for _ in range(SPEC_DEPTH):
        spec = {"stages": spec}
    checkpoint = {**torch.load(shop.weights(), weights_only=False), "spec": spec, "state_dict": {}}
    checkpoint["spec_fingerprint"] = "0" * 16
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * SPEC_DEPTH))  # the pickler recurses once per level
    try:
        torch.save(checkpoint, folder / "deep.pt")
    finally:
        sys.setrecursionlimit(limit)


def _safetensors_header(path: Path) -> None:
    header = b'{"w": {"dtype": "F32", "shape": [2.5, Infinity], "data_offsets": [0, 8]}}'
    path.write_bytes(len(header).to_bytes(8, "little") + header + bytes(8))


def _gfnet_odd_key(folder: Path, _: Workshop) -> None:
    torch = _torch()
    torch.save({"blocks." + "9" * 5_000 + ".filter.complex_weight": torch.zeros(1)}, folder / "odd.pt")


# Checks made after a run.


def _is_link(name: str) -> Check:
    def check(folder: Path) -> str | None:
        return None if (folder / name).is_symlink() else f"{name} is no longer a symbolic link"

    return check


def _absent(name: str) -> Check:
    def check(folder: Path) -> str | None:
        return f"{name} was written" if os.path.lexists(folder / name) else None

    return check


def _grouped(group: str, cases: dict[str, Case]) -> dict[str, Case]:
    for case in cases.values():
        case.group = group
    return cases


def _fit(*argv: str) -> list[str]:
    return ["fit", "t.yaml", *argv, *FIT_ARGS]


KEY_PATH = "abc." * 20_000
"""A --set key path of 20,000 levels, 80 KB."""


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

FIT_CASES = _grouped(
    "fit",
    {
        "--resume v.pt --save v.pt --log v.pt --force": Case(
            {"t.yaml": TINY},
            _fit("--resume", "v.pt", "--save", "v.pt", "--log", "v.pt", "--force"),
            setup=_copy_of(Workshop.fit_checkpoint, "v.pt"),
            exits=REFUSED,
            unchanged=("v.pt",),
        ),
        "--save same.pt --log same.pt": Case(
            {"t.yaml": TINY}, _fit("--save", "same.pt", "--log", "same.pt"), exits=REFUSED, check=_absent("same.pt")
        ),
        "--resume from another --lr, --log old.jsonl --force": Case(
            {"t.yaml": TINY, "old.jsonl": '{"epoch": 1, "val_acc": 0.5}\n'},
            _fit("--lr", "2e-3", "--resume", "v.pt", "--log", "old.jsonl", "--force"),
            setup=_copy_of(Workshop.fit_checkpoint, "v.pt"),
            exits=INVALID,
            unchanged=("old.jsonl", "v.pt"),
            shows="error",
        ),
        "--save a symbolic link (--force)": Case(
            {"t.yaml": TINY, "target.pt": "not a checkpoint\n"},
            _fit("--save", "link.pt", "--force"),
            setup=lambda folder, _: (folder / "link.pt").symlink_to("target.pt"),
            exits=REFUSED,
            unchanged=("target.pt",),
            check=_is_link("link.pt"),
        ),
        "--save inside the --data folder": Case(
            {"t.yaml": TINY},
            _fit("--data", "data", "--save", "data/a/out.pt"),
            setup=_grey_folder("data"),
            exits=REFUSED,
            check=_absent("data/a/out.pt"),
        ),
        "--log naming the --data npz (--force)": Case(
            {"t.yaml": TINY, "d.npz": _npz},
            _fit("--data", "d.npz", "--log", "d.npz", "--force"),
            exits=REFUSED,
            unchanged=("d.npz",),
        ),
        "--wd 1e300": Case({"t.yaml": TINY}, _fit("--wd", "1e300"), exits=USAGE),
        "--warmup-epochs 1e308": Case({"t.yaml": TINY}, _fit("--warmup-epochs", "1e308"), exits=USAGE),
        "--batch 10**20 --no-budget": Case(
            {"t.yaml": TINY}, _fit("--batch", str(10**20), "--no-budget"), exits=USAGE, shows="error"
        ),
        "WORLD_SIZE=2 without RANK": Case({"t.yaml": TINY}, _fit(), env={"WORLD_SIZE": "2"}, exits=USAGE),
        "--size 2048 on digits": Case({"t.yaml": TINY}, _fit("--size", "2048"), exits=INVALID, shows="error"),
        "sweep --fit with a 65536-wide variant": Case(
            {"t.yaml": TINY},
            ["sweep", "t.yaml", "--fit", "digits", "--grid", "stages.0.dim=8,65536", *FIT_ARGS],
            exits=OK,
            shows="not trained",
        ),
        "--set key path of 20,000 levels (80 KB)": Case(
            {"t.yaml": TINY}, _fit("--set", KEY_PATH + "x=1"), exits=USAGE, shows="error"
        ),
        "sweep --grid key path of 20,000 levels (80 KB)": Case(
            {"t.yaml": TINY}, ["sweep", "t.yaml", "--grid", KEY_PATH + "x=1,2"], exits=USAGE
        ),
    },
)

DATA_CASES = _grouped(
    "data",
    {
        "16-bit greyscale PNGs": Case(
            {"t.yaml": TINY},
            _fit("--data", "data"),
            setup=lambda folder, _: _class_folders(folder / "data", _png16),
            exits=OK,
        ),
        "float TIFFs in [0, 1)": Case(
            {"t.yaml": TINY},
            _fit("--data", "data"),
            setup=lambda folder, _: _class_folders(folder / "data", _float_tiff),
            exits=OK,
        ),
        "mixed-size JPEGs and PNGs, --size 32": Case(
            {"t.yaml": TINY},
            _fit("--data", "data", "--size", "32"),
            setup=lambda folder, _: _class_folders(folder / "data", _jpeg_or_png),
            exits=OK,
        ),
        "an empty class folder": Case(
            {"t.yaml": TINY},
            _fit("--data", "data"),
            setup=_empty_class,
            exits=INVALID,
        ),
        "--data digits beside a ./digits folder": Case(
            {"t.yaml": TINY}, _fit("--data", "digits"), setup=_grey_folder("digits", ("0", "1")), exits=INVALID
        ),
        "a class folder linking to /": Case(
            {"t.yaml": TINY},
            _fit("--data", "data"),
            setup=_link_to_root,
            exits=INVALID,
        ),
        "a named pipe x.npz": Case(
            {"t.yaml": TINY},
            _fit("--data", "x.npz"),
            setup=lambda folder, _: os.mkfifo(folder / "x.npz"),
            exits=INVALID,
        ),
        "npz of 5.7 KB with the label 10**12": Case(
            {"t.yaml": TINY, "d.npz": _huge_label}, _fit("--data", "d.npz"), exits=INVALID
        ),
        "npz whose header declares 10 TiB": Case(
            {"t.yaml": TINY, "d.npz": _ten_tib_header}, _fit("--data", "d.npz"), exits=INVALID
        ),
        "npz member inflating 1 MB to 1 GiB": Case(
            {"t.yaml": TINY, "d.npz": _deflate_bomb}, _fit("--data", "d.npz"), exits=INVALID
        ),
        "npz member without .npy magic": Case(
            {"t.yaml": TINY, "d.npz": _no_magic}, _fit("--data", "d.npz"), exits=INVALID
        ),
        "npz with a corrupt deflate stream": Case(
            {"t.yaml": TINY, "d.npz": _broken_deflate}, _fit("--data", "d.npz"), exits=INVALID, shows="error"
        ),
        "four 100-megapixel PNGs of 100 KB": Case(
            {"t.yaml": TINY}, _fit("--data", "data"), setup=_big_pngs, exits=INVALID
        ),
        "PNG declaring 10^10 pixels (decompression bomb)": Case(
            {"t.yaml": TINY}, _fit("--data", "data"), setup=_bomb_png, exits=INVALID
        ),
    },
)

CHECKPOINT_CASES = _grouped(
    "checkpoint",
    {
        "--resume of a forged history (epoch 50 at 99.9%)": Case(
            {"t.yaml": TINY},
            ["fit", "t.yaml", "--resume", "v.pt", "--epochs", "50", "--threads", "1"],
            setup=_edited(Workshop.fit_checkpoint, _forged_history, "v.pt"),
            exits=INVALID,
            shows="error",
        ),
        "--resume with the run as a list": Case(
            {"t.yaml": TINY},
            _fit("--resume", "v.pt"),
            setup=_edited(Workshop.fit_checkpoint, _run_as_list, "v.pt"),
            exits=INVALID,
            shows="error",
        ),
        "--resume without optimizer param_groups": Case(
            {"t.yaml": TINY},
            _fit("--resume", "v.pt"),
            setup=_edited(Workshop.fit_checkpoint, _no_param_groups, "v.pt"),
            exits=INVALID,
            shows="error",
        ),
        "--resume with the clock as text": Case(
            {"t.yaml": TINY},
            _fit("--resume", "v.pt"),
            setup=_edited(Workshop.fit_checkpoint, _clock_as_text, "v.pt"),
            exits=INVALID,
            shows="error",
        ),
        "safetensors shape [2.5, Infinity]": Case(
            {"t.yaml": TINY, "w.safetensors": _safetensors_header},
            ["build", "t.yaml", "--no-tree", "--weights", "w.safetensors"],
            exits=INVALID,
        ),
        "GFNet key with a 5,000-digit block number": Case(
            {},
            ["build", str(ROOT / "specs" / "zoo" / "gfnet-ti.yaml"), "--no-tree", "--weights", "odd.pt"],
            setup=_gfnet_odd_key,
            exits=INVALID,
        ),
        f"stored spec nested {SPEC_DEPTH:,} deep": Case(
            {"t.yaml": TINY}, ["build", "t.yaml", "--no-tree", "--weights", "deep.pt"], setup=_deep_spec, exits=INVALID
        ),
        "saved from the meta device": Case(
            {"t.yaml": TINY},
            ["build", "t.yaml", "--no-tree", "--weights", "meta.pt"],
            setup=_edited(Workshop.weights, _meta_tensors, "meta.pt"),
            exits=INVALID,
        ),
        "integer tensors for float parameters": Case(
            {"t.yaml": TINY},
            ["build", "t.yaml", "--no-tree", "--weights", "int.pt"],
            setup=_edited(Workshop.weights, _integer_tensors, "int.pt"),
            exits=INVALID,
            shows="dtype:",
        ),
        "timm train.py checkpoint (args: Namespace)": Case(
            {"t.yaml": TINY},
            ["build", "t.yaml", "--no-tree", "--weights", "timm.pth.tar"],
            setup=_edited(Workshop.weights, _timm_train_checkpoint, "timm.pth.tar"),
            exits=OK,
        ),
    },
)

SPACE = "spec: t.yaml\nspace:\n  stages.0.dim: [8, 16]\n"
"""A search space over TINY's first width."""
SEARCH = ["search", "--space", "s.yaml", "--objectives", "params", "--trials", "2"]

SEARCH_CASES = _grouped(
    "search",
    {
        "valid space, plan objectives only": Case({"t.yaml": TINY, "s.yaml": SPACE}, SEARCH, exits=OK, shows="trials:"),
        "named pipe as the space": Case(
            {"t.yaml": TINY}, ["search", "--space", "pipe.yaml"], setup=_fifo, exits=INVALID
        ),
        "alias bomb as the space": Case({"s.yaml": _alias_bomb()}, ["search", "--space", "s.yaml"], exits=INVALID),
        "65 axes": Case(
            {"t.yaml": TINY, "s.yaml": "spec: t.yaml\nspace:\n" + "".join(f"  k{i}: [1]\n" for i in range(65))},
            ["search", "--space", "s.yaml"],
            exits=INVALID,
        ),
        "2,000 choices": Case(
            {"t.yaml": TINY, "s.yaml": "spec: t.yaml\nspace:\n  stages.0.dim: [" + ", ".join(["8"] * 2000) + "]\n"},
            ["search", "--space", "s.yaml"],
            exits=INVALID,
        ),
        "a typo in a key path": Case(
            {"t.yaml": TINY, "s.yaml": SPACE.replace("dim", "dimm")}, ["search", "--space", "s.yaml"], exits=INVALID
        ),
        "constraints nothing meets": Case(
            {"t.yaml": TINY, "s.yaml": SPACE + "constraints: {max_params: 1}\n"},
            SEARCH,
            exits=INVALID,
            shows="error",
        ),
        "--storage the space file": Case(
            {"t.yaml": TINY, "s.yaml": SPACE}, [*SEARCH, "--storage", "s.yaml"], exits=USAGE, unchanged=("s.yaml",)
        ),
        "--storage the base spec": Case(
            {"t.yaml": TINY, "s.yaml": SPACE}, [*SEARCH, "--storage", "t.yaml"], exits=USAGE, unchanged=("t.yaml",)
        ),
        "--export-best a file": Case(
            {"t.yaml": TINY, "s.yaml": SPACE}, [*SEARCH, "--export-best", "t.yaml"], exits=USAGE, unchanged=("t.yaml",)
        ),
        "--plot the space file": Case(
            {"t.yaml": TINY, "s.yaml": SPACE}, [*SEARCH, "--plot", "s.yaml"], exits=REFUSED, unchanged=("s.yaml",)
        ),
        "--trials 0 with nothing stored": Case(
            {"t.yaml": TINY, "s.yaml": SPACE},
            [*SEARCH[:-1], "0", "--storage", "none.db"],
            exits=USAGE,
            check=_absent("none.db"),
        ),
        "unreachable PostgreSQL": Case(
            {"t.yaml": TINY, "s.yaml": SPACE},
            [*SEARCH, "--storage", "postgresql+psycopg://x@127.0.0.1:1/x"],
            exits=INVALID,
        ),
    },
)

CASES |= FIT_CASES | DATA_CASES | CHECKPOINT_CASES | SEARCH_CASES
GROUPS = sorted({case.group for case in CASES.values()})


def _write(folder: Path, case: Case, shop: Workshop) -> None:
    for name, content in case.files.items():
        if callable(content):
            content(folder / name)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    if case.setup is not None:
        case.setup(folder, shop)


def _rss_kib(pid: int) -> int:
    """The resident memory of a running process, in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
    except OSError:
        return 0


@dataclass
class Run:
    """One run of a case: what it cost and what it printed (stdout and stderr together)."""

    wall: float
    """Seconds."""
    rss_kib: int
    lines: list[str]
    status: int | None
    """The exit status; None when the run was killed (``killed`` says why)."""
    killed: str = ""

    def first(self, holding: str = "") -> str:
        """The first line printed (from ``holding`` on, in the first line holding it, if one does); the last
        one after a traceback; why the run was killed."""
        if self.killed:
            return self.killed
        if any(line.startswith("Traceback") for line in self.lines):
            return "traceback: " + self.lines[-1]
        found = (line[line.index(holding) :] for line in self.lines if holding in line)
        return next(found, self.lines[0] if self.lines else "")


def _run(argv: list[str], folder: Path, env: Mapping[str, str], timeout: float, max_rss_kib: int) -> Run:
    """One run of ``archspec argv`` in ``folder``, killed at ``timeout`` seconds or ``max_rss_kib`` of memory."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "archspec", *argv], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        killed = ""
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            over = _rss_kib(proc.pid) > max_rss_kib
            if over or time.perf_counter() - start > timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
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
    code = None if killed else os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_maxrss, lines, code, killed)


def _problems(case: Case, run: Run, folder: Path, digests: Mapping[str, str]) -> list[str]:
    """What ``run`` left otherwise than ``case`` expects (a run killed at a limit is reported as such instead)."""
    problems = []
    if run.status is not None and case.exits and run.status not in case.exits:
        expected = " or ".join(map(str, case.exits))
        last = run.lines[-1] if run.lines else "nothing printed"
        problems.append(f"exit {run.status}, not {expected} (last line: {last})")
    for name, digest in digests.items():
        if not os.path.lexists(folder / name):
            problems.append(f"{name} was removed")
        elif _digest(folder / name) != digest:
            problems.append(f"{name} was changed")
    if run.status is not None and not any(case.shows in line for line in run.lines):
        problems.append(f"no line holds {case.shows!r}")
    found = case.check(folder) if case.check is not None else None
    if found:
        problems.append(found)
    return problems


def _cell(text: str, limit: int = 100) -> str:
    shown = text if len(text) < limit else text[: limit - 3] + "..."
    return shown.replace("|", "\\|").replace("`", "'")


def _measure(case: Case, shop: Workshop, args: argparse.Namespace) -> tuple[str, float, float, list[Run]]:
    """The first-line cell, median wall seconds, largest peak RSS (MiB) and the runs, of one case."""
    env = {**shop.env, **case.env}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            _write(folder, case, shop)
        except Exception as exc:  # an archspec that cannot make the setup's files, say
            return f"setup failed: {_cell(str(exc).splitlines()[0])}", float("nan"), float("nan"), []
        digests = {name: _digest(folder / name) for name in case.unchanged}
        runs, problems = [], []
        for _ in range(args.repeats):
            runs.append(_run(case.argv, folder, env, args.timeout, int(args.max_rss * 2**20)))
            problems += [p for p in _problems(case, runs[-1], folder, digests) if p not in problems]
    first = runs[0].first(case.shows)
    later = bool(case.shows) and bool(runs[0].lines) and not runs[0].lines[0].startswith(first)
    message = ("… " if later else "") + first.replace(str(ROOT) + "/", "").replace(str(args.tree.resolve()) + "/", "")
    cell = f"`{_cell(message)}`"
    if problems:
        cell = f"FAILED: {_cell('; '.join(problems), 160)}; printed {cell}"
    wall = statistics.median(run.wall for run in runs)
    return cell, wall, max(run.rss_kib for run in runs) / 1024, runs


def _picked(only: str) -> dict[str, Case]:
    if only in GROUPS:
        return {name: case for name, case in CASES.items() if case.group == only}
    return {name: case for name, case in CASES.items() if only in name}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="the archspec checkout to run (default: this one)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a run counts as a hang")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only",
        default="",
        help=f"run one group of cases ({', '.join(GROUPS)}), or the cases whose name has this text",
    )
    parser.add_argument("--max-rss", type=float, default=4.0, help="GiB of memory at which a run is killed")
    parser.add_argument(
        "--verbose", action="store_true", help="also write each case's exit status and full output to stderr"
    )
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.tree.resolve())}
    print("| case | first line printed | wall (s, median) | peak RSS (MiB) |")
    print("|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as scratch:
        shop = Workshop(env, Path(scratch))
        for name, case in _picked(args.only).items():
            cell, wall, rss, runs = _measure(case, shop, args)
            print(f"| {case.group}: {name} | {cell} | {wall:.2f} | {rss:.0f} |", flush=True)
            if args.verbose and runs:
                print(f"--- {case.group}: {name}: exit {runs[0].status}", *runs[0].lines, sep="\n", file=sys.stderr)


if __name__ == "__main__":
    main()
