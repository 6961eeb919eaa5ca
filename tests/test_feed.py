"""fit on image folders: mixed sizes, the in-memory and streaming feeds (same numbers), augmentation,
and the memory budget of sweep --fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny

import archspec
from archspec import budget
from archspec.cli import main

PIL = pytest.importorskip("PIL", reason="the fit extra (pip install -e '.[fit]') is not installed")

SPEC = tiny(drop_path_rate=0.0, num_classes=3)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three classes of JPEGs and PNGs in four sizes, a bright band marking the class."""
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    sizes = [(12, 16), (16, 12), (20, 20), (9, 14)]  # (height, width)
    for label, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir()
        for i in range(6):
            height, width = sizes[i % len(sizes)]
            pixels = rng.integers(0, 60, size=(height, width, 3), dtype=np.uint8)
            pixels[:, label * width // 3 : (label + 1) * width // 3] += 180
            suffix = ".jpg" if i % 2 else ".png"
            Image.fromarray(pixels).save(root / name / f"{i}{suffix}")
    return root


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    path.write_text(json.dumps(SPEC))
    return path


def test_a_mixed_size_folder_trains_at_the_size_given(folder, spec_file, capsys):
    argv = ["fit", str(spec_file), "--data", str(folder), "--epochs", "1", "--size", "16", "--resize", "pad"]
    assert main([*argv, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[:4] == [
        f"{folder}: 18 images, 4 sizes from 9×14 to 20×20 (height×width), 3 channels, 3 classes",
        "split: 15 train / 3 validation (seed 0)",
        f"variant: {spec_file} --set input.size=16",
        "data: held in memory (13.5 KiB; it fits the memory budget)",
    ]
    assert json.loads(out)["loader"] == "data: held in memory (13.5 KiB; it fits the memory budget)"


def test_without_a_size_mixed_images_go_in_at_the_specs_own_size(folder, tmp_path):
    from archspec.data import scan
    from archspec.fit import adapt

    path = tmp_path / "five.yaml"
    path.write_text(json.dumps(tiny(num_classes=5)))
    native = archspec.plan(archspec.load_spec(path))
    assert adapt(native, scan(folder)) == ["num_classes=3"]  # no input.size: 32×32, as the spec says


def _history(folder: Path, spec_file: Path, *options: str) -> list[dict]:
    from archspec.data import scan, split
    from archspec.fit import FitConfig, adapt, fit

    catalog = scan(folder)
    native = archspec.plan(archspec.load_spec(spec_file))
    plan = archspec.plan(archspec.load_spec(spec_file, adapt(native, catalog, (16, 16))))
    config = FitConfig(epochs=2, batch=4, augment="augment" in options)
    loader, workers = options[0], int(options[1])
    result = fit(plan, catalog, split(catalog), config, loader=loader, workers=workers)
    assert result.loader.startswith("data: held in memory" if loader == "memory" else "data: streamed from disk")
    return [{k: v for k, v in vars(m).items() if k not in ("seconds", "samples_per_s")} for m in result.history]


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augmented"])
def test_streaming_gives_the_numbers_of_the_in_memory_feed(folder, spec_file, augment):
    torch.set_num_threads(1)
    extra = ("augment",) if augment else ()
    held = _history(folder, spec_file, "memory", "0", *extra)
    assert _history(folder, spec_file, "stream", "0", *extra) == held
    if not augment:
        assert _history(folder, spec_file, "stream", "2") == held  # decoded by two worker processes


def test_auto_streams_a_folder_over_the_budget(folder, spec_file, capsys, monkeypatch):
    from archspec import feed

    monkeypatch.setattr(budget, "available_bytes", lambda: 2**30)
    monkeypatch.setattr(feed, "default_workers", lambda: 0)
    argv = ["fit", str(spec_file), "--data", str(folder), "--epochs", "1", "--size", "1024", "--no-budget"]
    monkeypatch.setattr(feed.StreamFeed, "train_batches", _stop)
    assert main(argv) == 130
    assert capsys.readouterr().err.splitlines()[3] == (
        "data: streamed from disk, decoded by this process (in memory the images would take 54.0 MiB, over the "
        "budget of 512.0 MiB)"
    )


def _stop(self, batches):
    raise KeyboardInterrupt
    yield


def test_stream_is_for_folders(spec_file, tmp_path, capsys):
    data = tmp_path / "x.npz"
    np.savez(data, x=np.zeros((6, 8, 8), np.uint8), y=np.arange(6) % 2)
    assert main(["fit", str(spec_file), "--data", str(data), "--loader", "stream"]) == 1
    assert capsys.readouterr().err.splitlines()[3] == (
        f"error: {data}: --loader stream decodes image folders as it goes; npz data is read into memory whole "
        "(use --loader memory or auto) [AS1001]"
    )


def test_augmentation_is_seeded_and_stays_in_the_images_range():
    from archspec.augment import crop_and_flip

    x = torch.rand(4, 3, 16, 12)
    first = crop_and_flip(x, torch.Generator().manual_seed(1))
    assert first.shape == x.shape
    assert torch.equal(first, crop_and_flip(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(first, crop_and_flip(x, torch.Generator().manual_seed(2)))
    assert x.min() <= first.min() and first.max() <= x.max()  # bilinear samples inside the image
    flat = torch.full((2, 1, 8, 8), 0.25)
    assert torch.allclose(crop_and_flip(flat, torch.Generator().manual_seed(0)), flat)


def test_a_mirror_only_flips_the_image():
    from archspec import augment

    x = torch.arange(16.0).view(1, 1, 4, 4)
    generator = torch.Generator().manual_seed(0)
    draws = torch.rand(1, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    scale, augment.SCALE = augment.SCALE, (1.0, 1.0)
    ratio, augment.RATIO = augment.RATIO, (1.0, 1.0)
    try:
        out = augment.crop_and_flip(x, generator)
    finally:
        augment.SCALE, augment.RATIO = scale, ratio
    expected = x.flip(-1) if draws[0, 4] < 0.5 else x
    assert torch.allclose(out, expected, atol=1e-5)


def test_sweep_fit_leaves_out_variants_over_the_budget(spec_file, monkeypatch):
    from archspec.data import from_arrays, split
    from archspec.fit import FitConfig
    from archspec.sweep import FitSweep, run_sweep

    catalog = from_arrays(np.zeros((12, 3, 8, 8), np.uint8), np.arange(12) % 3)
    monkeypatch.setattr(budget, "available_bytes", lambda: 2**30)
    fitting = FitSweep(catalog, split(catalog), FitConfig(epochs=1))
    torch.set_num_threads(1)
    rows = run_sweep(spec_file, ["stages.1.dim=16,4096"], fit=fitting)
    assert rows[0].status == "ok" and len(rows[0].val_acc) == 1
    assert rows[1].status == (
        "not trained: Tiny needs about 4.01 GiB of parameters (268,854,051 × 4 bytes, with gradients and optimiser "
        "state), 5.1 MiB of activations for training at batch 9 and 2.2 KiB of images, over the budget of 512.0 MiB "
        "(half of the 1.00 GiB available); check the spec for a typo, or pass --no-budget"
    )


def test_the_command_line_offers_the_library_choices():
    """The parser spells its choices out (it imports no torch or numpy); they must be the library's."""
    from archspec.cli import _parser
    from archspec.data import RESIZE_MODES
    from archspec.feed import LOADERS

    fit_parser = _parser()._subparsers._group_actions[0].choices["fit"]  # type: ignore[union-attr]
    choices = {action.dest: tuple(action.choices) for action in fit_parser._actions if action.choices}
    assert (choices["resize"], choices["loader"]) == (RESIZE_MODES, LOADERS)
