"""archspec fit: data sources and their errors, adaptation, the schedule, determinism, resume, logs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import DIGITS, ROOT, tiny

from archspec import build as archspec_build
from archspec import load_spec, plan, runtime
from archspec.cli import main
from archspec.data import Images, load_images, split
from archspec.fit import FitConfig, adapt, fit, learning_rate, resolve_precision

pytest.importorskip("sklearn", reason="the fit extra (pip install -e '.[fit]') is not installed")

SPEC = tiny(drop_path_rate=0.1, num_classes=5)


def blobs(count: int = 48, classes: int = 3, size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is where a bright square sits, plus noise: learnable in an epoch or two."""
    rng = np.random.default_rng(seed)
    y = np.arange(count) % classes
    x = rng.normal(0, 0.3, size=(count, size, size)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, :, label * size // classes : (label + 1) * size // classes] += 2.0
    return x, y.astype(np.int64)


@pytest.fixture(autouse=True)
def _threads_restored():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(SPEC))
    return path


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    x, y = blobs()
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


def tiny_plan(spec_file: Path, data: Images) -> object:
    native = plan(load_spec(spec_file))
    return plan(load_spec(spec_file, adapt(native, data)))


# Data sources.


def test_digits_are_the_bundled_1797_images_in_ten_classes():
    digits = load_images("digits")
    assert digits.x.shape == (1797, 1, 8, 8)
    assert digits.x.dtype == np.float32
    assert (digits.x.min(), digits.x.max()) == (0.0, 1.0)
    assert digits.classes == tuple("0123456789")
    assert np.bincount(digits.y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    assert digits.describe() == "digits: 1,797 images, 8×8 (height×width), 1 channel, 10 classes"


def test_the_split_is_stratified_seeded_and_printed():
    digits = load_images("digits")
    parts = split(digits, 0.2, seed=0)
    assert parts.describe() == "split: 1,438 train / 359 validation (seed 0)"
    assert np.intersect1d(parts.train, parts.val).size == 0
    assert len(parts.train) + len(parts.val) == 1797
    assert np.bincount(digits.y[parts.val]).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    again = split(digits, 0.2, seed=0)
    assert np.array_equal(parts.val, again.val)
    assert not np.array_equal(parts.val, split(digits, 0.2, seed=1).val)


def test_an_npz_of_uint8_n_h_w_images_gets_a_channel_axis_and_unit_scale(tmp_path):
    x = np.full((4, 6, 5), 255, dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1]), classes=np.array(["cat", "dog"]))
    images = load_images(tmp_path / "d.npz")
    assert images.x.shape == (4, 1, 6, 5)
    assert images.x.dtype == np.uint8  # kept as stored: each batch is scaled as it is used
    assert float(images.x.max()) / images.scale == 1.0
    assert images.classes == ("cat", "dog")


def test_an_image_folder_reads_one_class_per_subfolder(tmp_path):
    from PIL import Image

    for name, value in (("b_dark", 10), ("a_light", 240)):
        (tmp_path / name).mkdir()
        for i in range(3):
            Image.new("RGB", (6, 4), (value, value, value)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "a_light" / "notes.txt").write_text("not an image")
    images = load_images(tmp_path)
    assert images.classes == ("a_light", "b_dark")
    assert images.x.shape == (6, 3, 4, 6)
    assert images.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert (images.x.dtype, images.x[0, 0, 0, 0], images.scale) == (np.uint8, 240, 255.0)


def test_grey_images_give_one_channel(tmp_path):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("L", (8, 8), 100).save(tmp_path / name / "0.png")
    assert load_images(tmp_path).channels == 1


# Bad data: located, coded, never a traceback.


def _bad_folder(tmp_path: Path, case: str) -> tuple[Path, str]:
    from PIL import Image

    root = tmp_path / "images"
    root.mkdir()
    if case == "empty folder":
        return root, f"{root}: no images found: expected one subfolder per class holding image files (.bmp, .gif"
    (root / "a").mkdir()
    Image.new("L", (8, 8)).save(root / "a" / "0.png")
    if case == "single class":
        return root, f"{root}: every image has label 0: a classifier needs at least 2 classes"
    (root / "b").mkdir()
    if case == "empty class":
        return root, f"{root / 'b'}: class folder holds no images (labels follow the folder order, so skipping"
    if case == "truncated image":
        Image.new("L", (8, 8)).save(root / "b" / "0.png")
        whole = (root / "b" / "0.png").read_bytes()
        (root / "b" / "0.png").write_bytes(whole[: len(whole) // 2])
        return root, f"{root / 'b' / '0.png'}: not a readable image ("
    (root / "b" / "0.png").write_bytes(b"not an image at all")
    return root, f"{root / 'b' / '0.png'}: not a readable image (UnidentifiedImageError: cannot identify image file"


def _bad_npz(tmp_path: Path, case: str) -> tuple[Path, str]:
    path = tmp_path / "bad.npz"
    x, y = blobs(6, 2)
    if case == "wrong keys":
        np.savez(path, images=x, labels=y)
        return path, f"{path}: missing array x and y (found: images, labels); expected x, y"
    if case == "labels out of range":
        np.savez(path, x=x, y=np.array([0, 1, 0, 1, 2, -1]), classes=np.array(["a", "b", "c"]))
        return path, f"{path}: label -1 of image 5 is out of range: labels run from 0 to 2 (3 classes)"
    if case == "float labels":
        np.savez(path, x=x, y=y.astype(np.float32))
        return path, f"{path}: y holds float32 values; expected integer class labels from 0"
    if case == "labels and images differ in number":
        np.savez(path, x=x, y=y[:4])
        return path, f"{path}: y has shape (4,); expected one label per image (6,)"
    if case == "NaN pixels":
        x[3, 0, 0] = np.nan
        np.savez(path, x=x, y=y)
        return path, f"{path}: image 3 holds NaN or infinite values"
    path.write_bytes(b"PK\x03\x04 truncated")
    return path, f"{path}: not a readable .npz file (BadZipFile:"


FOLDER_CASES = ("empty folder", "single class", "empty class", "corrupt image", "truncated image")
NPZ_CASES = ("wrong keys", "labels out of range", "float labels", "labels and images differ in number", "NaN pixels",
             "not a zip")  # fmt: skip
BAD_DATA = [*((_bad_folder, case) for case in FOLDER_CASES), *((_bad_npz, case) for case in NPZ_CASES)]


@pytest.mark.parametrize(("make", "case"), BAD_DATA, ids=[case for _, case in BAD_DATA])
def test_bad_data_is_a_located_coded_error_without_a_traceback(tmp_path, capsys, spec_file, make, case):
    path, message = make(tmp_path, case)
    assert main(["fit", str(spec_file), "--data", str(path)]) == 1
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {message}"), err
    assert "[AS1001]\nhint (AS1001, bad training data): fix the file or folder named" in err
    assert "Traceback" not in err


def test_a_missing_data_path_says_what_data_takes(tmp_path, spec_file, capsys):
    assert main(["fit", str(spec_file), "--data", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        f"error: {tmp_path / 'nowhere'}: no such file or folder (--data takes digits, a folder of class "
        "subfolders or a .npz file) [AS1001]"
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--lr=0", "argument --lr: must be above 0, got 0"),
        ("--lr=nan", "argument --lr: must be a finite number, got nan"),
        ("--lr=fast", "argument --lr: invalid number value: 'fast'"),
        ("--wd=-1", "argument --wd: must be at least 0, got -1"),
        ("--val-fraction=1", "argument --val-fraction: must be above 0 and below 1, got 1"),
        ("--label-smoothing=1", "argument --label-smoothing: must be at least 0 and below 1, got 1"),
    ],
)
def test_bad_training_options_are_usage_errors(spec_file, capsys, option, message):
    with pytest.raises(SystemExit) as exit_:
        main(["fit", str(spec_file), option])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"archspec fit: error: {message}"


def test_a_bad_size_is_a_usage_error(spec_file, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["fit", str(spec_file), "--size", "0"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "archspec fit: error: argument --size: expected N or HxW, e.g. 32 or 32x48, got 0"
    )


# Adaptation.


def test_the_spec_is_fitted_to_the_data_as_set_lines():
    digits = load_images("digits")
    spectformer = plan(load_spec(ROOT / "specs" / "spectformer.yaml"))
    assert adapt(spectformer, digits) == ["input.channels=1", "input.size=32", "num_classes=10"]
    deit = plan(load_spec(ROOT / "specs" / "zoo" / "deit_tiny_patch16_224.yaml"))
    assert adapt(deit, digits) == ["input.channels=1", "input.size=16", "num_classes=10"]
    assert adapt(spectformer, digits, (64, 96)) == ["input.channels=1", "input.size=[64, 96]", "num_classes=10"]


def test_a_backbone_spec_is_refused(tmp_path, capsys, data_file):
    path = tmp_path / "backbone.yaml"
    path.write_text(json.dumps(tiny(features={"out_indices": [0, 1]})))
    assert main(["fit", str(path), "--data", str(data_file)]) == 1
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")] == [
        "error: fit trains a classifier, and this spec declares features: (a backbone); add --set features=null [AS601]"
    ]


def test_the_schedule_warms_up_linearly_then_decays_by_cosine():
    assert [learning_rate(s, 10, 4, 1.0) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(4, 10, 4, 1.0) == 1.0
    assert learning_rate(7, 10, 4, 1.0) == pytest.approx(0.5)
    assert learning_rate(10, 10, 4, 1.0) == pytest.approx(0.0)
    assert learning_rate(8, 10, 4, 2e-3) == pytest.approx(2e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 6)))


# Training: it learns, it is deterministic, and it resumes exactly.


def _state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def _figures(result):
    return [(m.train_loss, m.val_loss, m.val_acc, m.lr) for m in result.history]


def test_training_learns_the_blobs_and_is_deterministic(spec_file, data_file):
    torch.set_num_threads(1)
    images = load_images(data_file)
    parts = split(images, 0.25)
    planned = tiny_plan(spec_file, images)
    config = FitConfig(epochs=4, batch=8, lr=3e-3)
    first = fit(planned, images, parts, config)
    second = fit(planned, images, parts, config)
    assert _figures(first) == _figures(second)  # every loss and accuracy, to the last digit
    assert first.final.val_acc == 1.0
    assert first.history[0].train_loss > first.final.train_loss
    other = fit(planned, images, parts, FitConfig(epochs=4, batch=8, lr=3e-3, seed=1))
    assert _figures(other) != _figures(first)


def test_two_processes_with_one_seed_and_thread_count_agree_to_the_last_digit(tmp_path, spec_file, data_file):
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "archspec", "fit", str(spec_file), "--data", str(data_file), "--epochs", "2",
           "--batch", "8", "--threads", "2", "--seed", "3", "--format", "json", "-q"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True) for _ in range(2)]
    figures = [
        [(e["train_loss"], e["val_loss"], e["val_acc"]) for e in json.loads(run.stdout)["epochs"]] for run in runs
    ]
    assert figures[0] == figures[1]


def test_bf16_mixed_trains_under_bfloat16_autocast(spec_file, data_file, capsys):
    args = ["fit", str(spec_file), "--data", str(data_file), "--epochs", "1", "--threads", "1"]
    assert main([*args, "--precision", "bf16-mixed", "--format", "json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["amp_dtype"], report["precision"]) == ("bfloat16", "bf16-mixed")
    assert math.isfinite(report["final_val_loss"])


def test_a_resumed_run_continues_exactly(tmp_path, spec_file, data_file):
    torch.set_num_threads(1)
    images = load_images(data_file)
    parts = split(images, 0.25)
    planned = tiny_plan(spec_file, images)
    config = FitConfig(epochs=3, batch=8, lr=3e-3)
    straight = fit(planned, images, parts, config, save=tmp_path / "straight.pt")

    def stop_after_two(metrics):
        if metrics.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(planned, images, parts, config, save=tmp_path / "cut.pt", on_epoch=stop_after_two)
    assert len(torch.load(tmp_path / "cut.pt", weights_only=True)["fit"]["history"]) == 2
    resumed = fit(planned, images, parts, config, save=tmp_path / "cut.pt", resume=tmp_path / "cut.pt")
    assert [(m.train_loss, m.val_loss, m.val_acc) for m in resumed.history] == [
        (m.train_loss, m.val_loss, m.val_acc) for m in straight.history
    ]
    ours, theirs = _state(tmp_path / "cut.pt"), _state(tmp_path / "straight.pt")
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_resuming_with_other_options_is_refused_naming_them(tmp_path, spec_file, data_file, capsys):
    args = ["fit", str(spec_file), "--data", str(data_file), "--epochs", "1", "--batch", "8", "--threads", "1"]
    assert main([*args, "--save", str(tmp_path / "a.pt"), "-q"]) == 0
    capsys.readouterr()
    assert main([*args[:-4], "--batch", "16", "--lr", "0.01", "--resume", str(tmp_path / "a.pt")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-4:-1] == [
        f"error: {tmp_path / 'a.pt'}: saved by a different run; resuming continues the same data, options and "
        "process count exactly:",
        "  batch: 8 → 16",
        "  lr: 0.001 → 0.01 [AS1003]",
    ]


def test_resuming_from_plain_weights_is_refused(tmp_path, spec_file, data_file, capsys):
    images = load_images(data_file)
    adapted = adapt(plan(load_spec(spec_file)), images)
    build = ["build", str(spec_file), *(f"--set={o}" for o in adapted), "--save", str(tmp_path / "w.pt"), "-q"]
    assert main(build) == 0
    capsys.readouterr()
    assert main(["fit", str(spec_file), "--data", str(data_file), "--resume", str(tmp_path / "w.pt")]) == 1
    assert capsys.readouterr().err.splitlines()[-2] == (
        f"error: {tmp_path / 'w.pt'}: not a checkpoint of archspec fit --save (it holds no training state) [AS1003]"
    )


def test_a_diverging_run_is_a_coded_error(spec_file, data_file, capsys):
    args = ["fit", str(spec_file), "--data", str(data_file), "--warmup-epochs", "0", "--epochs", "2", "--threads", "1"]
    args += ["--wd", "0", "--precision", "fp32"]  # decoupled decay at such rates is refused before training
    assert main([*args, "--lr", "1e10"]) == 1
    assert capsys.readouterr().err.splitlines()[-2] == (
        "error: the training loss became nan in epoch 2, step 1: the run diverged (try a lower --lr or a longer "
        "warm-up) [AS1002]"
    )
    assert main([*args, "--lr", "1e38"]) == 1
    assert capsys.readouterr().err.splitlines()[-2] == (
        "error: the weights became NaN or infinite in epoch 1 (patch_embed1.proj.weight and 50 more): the run "
        "diverged (try a lower --lr or --wd) [AS1002]"
    )


# The command: outputs, log, checkpoint.


def test_fit_prints_the_variant_split_epochs_and_results(tmp_path, spec_file, data_file, capsys):
    log, ckpt = tmp_path / "log.jsonl", tmp_path / "fit.pt"
    args = ["fit", str(spec_file), "--data", str(data_file), "--epochs", "2", "--batch", "8", "--threads", "1"]
    assert main([*args, "--log", str(log), "--save", str(ckpt), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert lines[:3] == [
        f"{data_file}: 48 images, 8×8 (height×width), 1 channel, 3 classes",
        "split: 39 train / 9 validation (seed 0)",
        f"variant: {spec_file} --set input.channels=1 --set input.size=8 --set num_classes=3",
    ]
    assert lines[3] == "data: held in memory (12.0 KiB; it fits the memory budget)"
    assert lines[4].startswith("epoch 1/2: train loss ")
    assert lines[5].startswith("epoch 2/2: train loss ")
    report = json.loads(out)
    assert report["overrides"] == ["input.channels=1", "input.size=8", "num_classes=3"]
    assert (report["train_images"], report["val_images"]) == (39, 9)
    assert [e["epoch"] for e in report["epochs"]] == [1, 2]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert logged == report["epochs"]
    assert report["final_val_acc"] == logged[-1]["val_acc"]
    assert report["peak_memory_bytes"] > 0
    # The checkpoint is an archspec checkpoint: build --weights loads it into the fitted variant.
    sets = [f"--set={o}" for o in report["overrides"]]
    assert main(["build", str(spec_file), *sets, "--weights", str(ckpt), "--no-tree", "-q"]) == 0


def test_fit_refuses_to_overwrite_a_log_or_checkpoint(tmp_path, spec_file, data_file, capsys):
    (tmp_path / "log.jsonl").write_text("mine\n")
    assert main(["fit", str(spec_file), "--data", str(data_file), "--log", str(tmp_path / "log.jsonl")]) == 2
    assert "[AS602]" in capsys.readouterr().err
    assert (tmp_path / "log.jsonl").read_text() == "mine\n"


def test_the_default_table_lists_the_figures(spec_file, data_file, capsys):
    assert main(["fit", str(spec_file), "--data", str(data_file), "--epochs", "1", "--threads", "1", "-q"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in out[2:]] == [
        "model", "final val acc", "best val acc", "final val loss", "final train loss", "wall time",
        "training speed", "peak resident memory", "precision",
    ]  # fmt: skip
    assert out[-1].split() == ["precision", "fp32"]


# The precision chosen for the device.

CHOSEN = "precision: bf16-mixed (cpu computes bfloat16 natively; --precision fp32 trains in float32)"


@pytest.mark.parametrize("native", [False, True])
def test_fit_trains_in_bfloat16_by_default_only_where_the_device_has_it(native, spec_file, data_file, monkeypatch,
                                                                         capsys):  # fmt: skip
    monkeypatch.setattr(runtime, "native_bfloat16", lambda device: native)
    args = ["fit", str(spec_file), "--data", str(data_file), "--epochs", "1", "--threads", "1"]
    assert main([*args, "--format", "json"]) == 0
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert (report["precision"], report["amp_dtype"]) == (("bf16-mixed", "bfloat16") if native else ("fp32", None))
    assert (CHOSEN in err.splitlines()) is native
    assert "warning" not in err
    # An explicit choice is taken as given, and said by the report only.
    assert main([*args, "--format", "json", "--precision", "fp32"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["precision"] == "fp32" and "precision:" not in err
    # sweep --fit chooses as fit does, and each row says what its runs trained in.
    assert (
        main(["sweep", str(spec_file), "--fit", str(data_file), "--epochs", "1", "--threads", "1", "--format", "json"])
        == 0
    )
    out, err = capsys.readouterr()
    assert [row["precision"] for row in json.loads(out)] == ["bf16-mixed" if native else "fp32"]
    assert (CHOSEN in err.splitlines()) is native


@pytest.mark.machine_precision
def test_native_bfloat16_asks_the_cpu_or_the_gpu(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bfloat16", lambda: True)
    assert runtime.native_bfloat16("cpu") and runtime.default_precision("cpu") == "bf16-mixed"
    monkeypatch.setattr(runtime, "cpu_has_native_bfloat16", lambda: False)
    assert not runtime.native_bfloat16("cpu") and runtime.default_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for supported in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, supported=supported, **kwargs: supported)
        assert runtime.default_precision("cuda:1") == ("bf16-mixed" if supported else "fp32")
    assert runtime.default_precision("meta") == "fp32"


def test_an_automatic_precision_resumes_in_the_precision_the_run_was_saved_with(tmp_path, spec_file, data_file,
                                                                                 monkeypatch, capsys):  # fmt: skip
    args = ["fit", str(spec_file), "--data", str(data_file), "--threads", "1", "--batch", "16", "-q"]
    saved = tmp_path / "run.pt"
    assert main([*args, "--epochs", "2", "--save", str(saved)]) == 0
    capsys.readouterr()
    monkeypatch.setattr(runtime, "native_bfloat16", lambda device: True)  # as on another machine
    assert resolve_precision("auto", "cpu", saved) == "fp32"
    assert resolve_precision("auto", "cpu") == "bf16-mixed"
    assert resolve_precision("fp16-mixed", "cpu", saved) == "fp16-mixed"
    assert main([*args, "--epochs", "2", "--resume", str(saved), "--save", str(saved), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["precision"] == "fp32"
    assert "precision: fp32" not in err  # fp32 is not announced, resumed or not


# sweep --fit and --plot.


def test_sweep_fit_trains_each_variant_per_seed_and_ranks_accuracy_per_gflop(tmp_path, spec_file, data_file, capsys):
    other = tmp_path / "wide.yaml"
    other.write_text(json.dumps(tiny(drop_path_rate=0.0, stages=[{**SPEC["stages"][0], "dim": 16}, SPEC["stages"][1]])))
    args = ["sweep", str(spec_file), str(other), "--grid", "stages.1.depth=1,0", "--fit", str(data_file),
            "--epochs", "2", "--seeds", "2", "--threads", "1"]  # fmt: skip
    assert main([*args, "--format", "json", "--plot", str(tmp_path / "fit.png")]) == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert [(Path(r["spec"]).name, r["overrides"]) for r in rows] == [
        ("tiny.yaml", ["stages.1.depth=1"]), ("tiny.yaml", ["stages.1.depth=0"]),
        ("wide.yaml", ["stages.1.depth=1"]), ("wide.yaml", ["stages.1.depth=0"]),
    ]  # fmt: skip
    assert [r["status"].split(":")[0] for r in rows] == ["ok", "invalid", "ok", "invalid"]
    for row in (rows[0], rows[2]):
        assert row["adapted"] == ["input.channels=1", "input.size=8", "num_classes=3"]
        assert len(row["val_acc"]) == len(row["fit_s"]) == 2
        assert row["acc_mean"] == pytest.approx(sum(row["val_acc"]) / 2)
        assert row["acc_std"] == pytest.approx(abs(row["val_acc"][0] - row["val_acc"][1]) / math.sqrt(2))
    # The same seed gives the same accuracy as fit itself.
    images = load_images(data_file)
    planned = plan(load_spec(spec_file, ["stages.1.depth=1", *rows[0]["adapted"]]))
    torch.set_num_threads(1)
    single = fit(planned, images, split(images), FitConfig(epochs=2, seed=1))
    assert rows[0]["val_acc"][1] == single.final.val_acc
    assert (tmp_path / "fit.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "fitted to the data with --set input.channels=1 --set input.size=8 --set num_classes=3" in err
    assert f"wrote {tmp_path / 'fit.png'}" in err

    assert main([*args, "--format", "md"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert [c.strip() for c in table[0].strip("|").split("|")] == [
        "spec", "overrides", "params", "GFLOPs", "activations (MiB)", "val acc % (2 seeds)", "fit time (s)",
        "acc/GFLOP rank", "status",
    ]  # fmt: skip
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    mean, std = 100 * rows[0]["acc_mean"], 100 * rows[0]["acc_std"]
    assert cells[0][5] == f"{mean:.1f} ± {std:.1f}"
    per_gflop = [rows[i]["acc_mean"] / (rows[i]["flops"] / 1e9) for i in (0, 2)]
    assert (cells[0][7], cells[2][7]) == (("1", "2") if per_gflop[0] > per_gflop[1] else ("2", "1"))
    assert cells[1][5:8] == ["", "", ""]


def test_sweep_fit_bf16_mixed_trains_as_fit_does(spec_file, data_file, capsys):
    args = ["sweep", str(spec_file), "--fit", str(data_file), "--epochs", "1", "--threads", "1", "--format", "json"]
    assert main([*args, "--precision", "bf16-mixed"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    images = load_images(data_file)
    planned = plan(load_spec(spec_file, row["adapted"]))
    torch.set_num_threads(1)
    under_amp = fit(planned, images, split(images), FitConfig(epochs=1, precision="bf16-mixed"))
    assert under_amp.amp_dtype == "bfloat16"
    assert row["val_acc"] == [under_amp.final.val_acc]
    assert main(["sweep", str(spec_file), "--precision", "bf16-mixed"]) == 2
    assert "error: --precision bf16-mixed sets how --fit trains: give --fit too [AS601]" in capsys.readouterr().err


def test_the_pareto_front_keeps_what_nothing_beats():
    from archspec.plot import pareto_front

    points = [(1.0, 90.0), (2.0, 95.0), (2.0, 93.0), (3.0, 94.0), (0.5, 80.0), (4.0, 99.0), (4.0, 99.0)]
    assert pareto_front(points) == [4, 0, 1, 5, 6]


def test_plot_needs_fit_and_a_known_suffix(tmp_path, spec_file, data_file, capsys):
    assert main(["sweep", str(spec_file), "--plot", str(tmp_path / "a.png")]) == 2
    assert "error: --plot draws the accuracies of --fit: give --fit too [AS601]" in capsys.readouterr().err
    args = ["sweep", str(spec_file), "--fit", str(data_file), "--epochs", "1", "--plot", str(tmp_path / "a.gif")]
    assert main(args) == 1
    assert f"error: --plot {tmp_path / 'a.gif'}: the suffix must be one of .png, .svg, .pdf [AS601]" in (
        capsys.readouterr().err
    )


# The digits specs behind the README's table.

DIGITS_PARAMS = {
    "spectformer-digits-attention": (777_018, 10_811_904),
    "spectformer-digits-dwconv": (560_698, 7_372_288),
    "spectformer-digits-pool": (528_698, 6_669_824),
    "spectformer-digits": (928_186, 17_186_304),
    "spectformer-digits-spectral": (723_642, 16_338_688),
}
"""Params and FLOPs per image of each spec in specs/digits/, fitted to digits (1×32×32, 10 classes)."""


def test_every_digits_spec_is_listed():
    assert sorted(p.stem for p in DIGITS) == sorted(DIGITS_PARAMS)


@pytest.mark.parametrize("path", DIGITS, ids=lambda p: p.stem)
def test_a_digits_spec_fits_digits_builds_and_takes_a_training_step(path):
    digits = load_images("digits")
    adapted = adapt(plan(load_spec(path)), digits)
    assert adapted == ["input.channels=1", "input.size=32", "num_classes=10"]
    planned = plan(load_spec(path, adapted))
    assert (planned.params, planned.flops) == DIGITS_PARAMS[path.stem]
    model = archspec_build(planned, seed=0).train()
    assert sum(p.numel() for p in model.parameters()) == planned.params
    x = torch.from_numpy(digits.x[:4]).repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    loss = torch.nn.functional.cross_entropy(model(x), torch.from_numpy(digits.y[:4]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_sweep_variant_that_diverges_is_a_row_with_its_status(spec_file, data_file):
    from archspec.sweep import FitSweep, run_sweep

    images = load_images(data_file)
    fitting = FitSweep(images, split(images), FitConfig(epochs=2, lr=1e10, weight_decay=0, warmup_epochs=0), seeds=2)
    torch.set_num_threads(1)
    rows = run_sweep(spec_file, ["num_classes=3"], fit=fitting)
    assert rows[0].status == (
        "diverged with seed 0: the training loss became nan in epoch 2, step 1: the run diverged (try a lower --lr "
        "or a longer warm-up)"
    )
    assert rows[0].val_acc == []
