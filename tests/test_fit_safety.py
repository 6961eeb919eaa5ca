"""archspec fit keeps what the user has: outputs checked before any work, the log never costing the
checkpoint, tampered checkpoints refused by name, options bounded, and runs started from weights."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny

from archspec import budget
from archspec.cli import main

pytest.importorskip("sklearn", reason="the fit extra (pip install -e '.[fit]') is not installed")

SPEC = tiny(drop_path_rate=0.0, num_classes=3)


def _blobs(count: int = 24, classes: int = 3, size: int = 8, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.arange(count) % classes
    x = rng.normal(0, 0.3, size=(count, channels, size, size)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, :, :, label * size // classes : (label + 1) * size // classes] += 2.0
    return x, y.astype(np.int64)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    spec = tmp_path / "tiny.yaml"
    spec.write_text(json.dumps(SPEC))
    data = tmp_path / "blobs.npz"
    x, y = _blobs()
    np.savez(data, x=x, y=y)
    return {"spec": spec, "data": data}


def _fit(files: dict[str, Path], *extra: str) -> int:
    return main(["fit", str(files["spec"]), "--data", str(files["data"]), "--epochs", "1", "--batch", "8", *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> dict[str, Path]:
    """One finished 2-epoch run with its checkpoint and log, shared by the tests that tamper with it."""
    folder = tmp_path_factory.mktemp("run")
    spec = folder / "tiny.yaml"
    spec.write_text(json.dumps(SPEC))
    data = folder / "blobs.npz"
    x, y = _blobs()
    np.savez(data, x=x, y=y)
    save, log = folder / "run.pt", folder / "run.jsonl"
    argv = ["fit", str(spec), "--data", str(data), "--epochs", "2", "--batch", "8", "--save", str(save)]
    assert main([*argv, "--log", str(log)]) == 0
    return {"spec": spec, "data": data, "save": save, "log": log, "argv": argv}  # type: ignore[dict-item]


def _errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error")]


# Nothing the user has is lost.


def test_the_log_and_the_checkpoint_cannot_be_one_file(files, tmp_path, capsys):
    same = tmp_path / "same.pt"
    assert _fit(files, "--save", str(same), "--log", str(same)) == 1
    assert _errors(capsys) == [f"error: --save and --log both name {same}: give each output its own file [AS603]"]
    assert not same.exists()


def test_resuming_with_the_log_on_the_checkpoint_leaves_the_checkpoint_whole(finished, tmp_path, capsys):
    copy = tmp_path / "v.pt"
    copy.write_bytes(finished["save"].read_bytes())
    argv = [*finished["argv"][:-2], "--resume", str(copy), "--save", str(copy), "--log", str(copy), "--force"]
    assert main(argv) == 1
    assert _errors(capsys) == [f"error: --save and --log both name {copy}: give each output its own file [AS603]"]
    assert copy.read_bytes() == finished["save"].read_bytes()


def test_an_output_may_not_be_an_input(files, tmp_path, capsys):
    assert _fit(files, "--log", str(files["data"]), "--force") == 1
    assert _errors(capsys) == [
        f"error: --log {files['data']} is the --data file: writing it would destroy what the run reads; "
        "give another file name [AS603]"
    ]
    link = tmp_path / "hard.npz"
    os.link(files["data"], link)  # another name for the same file
    assert _fit(files, "--save", str(link), "--force") == 1
    assert _errors(capsys)[0].startswith(f"error: --save {link} is the --data file")


def test_an_output_inside_the_data_folder_is_refused(files, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    argv = ["fit", str(files["spec"]), "--data", str(folder), "--save", str(folder / "run.pt")]
    assert main(argv) == 1
    assert _errors(capsys) == [
        f"error: --save {folder / 'run.pt'} lies inside the --data folder {folder}: the output would become "
        "part of the input; write it elsewhere [AS603]"
    ]


def test_a_refused_run_touches_no_file(finished, tmp_path, capsys):
    log = tmp_path / "kept.jsonl"
    log.write_text("the user's log\n")
    argv = [*finished["argv"][:-2], "--lr", "0.5", "--resume", str(finished["save"]), "--log", str(log), "--force"]
    assert main(argv) == 1
    assert _errors(capsys)[0] == (
        f"error: {finished['save']}: saved by a different run; resuming continues the same data, options and "
        "process count exactly:"
    )
    assert log.read_text() == "the user's log\n"


def test_a_symlinked_save_is_refused_before_training(files, tmp_path, capsys):
    target = tmp_path / "target.pt"
    target.write_text("kept")
    link = tmp_path / "link.pt"
    link.symlink_to(target)
    assert _fit(files, "--save", str(link), "--force") == 1
    err = capsys.readouterr().err
    assert f"error: cannot write {link}: it is a symbolic link; only a regular file is ever replaced [AS603]" in err
    assert "epoch" not in err and "variant" not in err  # refused before the data or the spec was read
    assert target.read_text() == "kept"


def test_a_failed_log_write_is_located_and_the_checkpoint_is_kept(files, tmp_path, capsys, monkeypatch):
    from archspec import output

    real = output.write_text_atomic

    def full_disk(path, text, force=False):
        if str(path).endswith(".jsonl"):
            raise output.OutputError(f"cannot write {path}: {os.strerror(28)}")
        return real(path, text, force)

    monkeypatch.setattr(output, "write_text_atomic", full_disk)
    save, log = tmp_path / "run.pt", tmp_path / "run.jsonl"
    assert _fit(files, "--save", str(save), "--log", str(log)) == 1
    assert _errors(capsys) == [f"error: cannot write {log}: No space left on device; {save} holds epoch 1 [AS603]"]
    assert torch.load(save, weights_only=True)["fit"]["history"][0]["epoch"] == 1


def test_an_interrupt_before_the_first_epoch_claims_no_checkpoint(files, tmp_path, capsys, monkeypatch):
    from archspec import feed

    def interrupted(self, batches):
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(feed.MemoryFeed, "train_batches", interrupted)
    old = tmp_path / "old.pt"
    old.write_text("an unrelated old file")
    assert _fit(files, "--save", str(old), "--force") == 130
    assert capsys.readouterr().err.splitlines()[-2:] == [
        "interrupted before the first epoch finished; nothing was saved",
        "interrupted",
    ]
    assert old.read_text() == "an unrelated old file"


# Bounded options.


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--wd", "1e300"], "--wd 1e+300 with --lr 0.001: AdamW scales every decayed weight by 1 − lr × wd each step, "
         "so lr × wd must stay below 1 (it is 1e+297) [AS601]"),
        (["--warmup-epochs", "1e308"], "--warmup-epochs 1e+308: must be from 0 to the run's 1 epochs [AS601]"),
    ],
)  # fmt: skip
def test_extreme_training_values_are_usage_errors(files, capsys, options, message):
    assert _fit(files, *options) == 2
    assert _errors(capsys) == [f"error: {message}"]


def test_an_enormous_batch_is_refused_by_argparse(files, capsys):
    with pytest.raises(SystemExit) as exit_:
        _fit(files, "--batch", str(10**20), "--no-budget")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"archspec fit: error: argument --batch: must be from 1 to 1,048,576, got {10**20}"
    )


def test_world_size_without_rank_is_a_usage_error(files, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    assert _fit(files) == 2
    assert _errors(capsys) == [
        "error: WORLD_SIZE=2 is set but RANK is not: start several processes with torchrun, which sets both, "
        "or unset them for one process [AS601]"
    ]


def test_weights_that_turn_nan_stop_the_run(files, capsys, monkeypatch):
    real = torch.optim.AdamW.step

    def poisoned(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        self.param_groups[0]["params"][0].data.fill_(float("nan"))
        return result

    monkeypatch.setattr(torch.optim.AdamW, "step", poisoned)
    assert _fit(files, "--batch", "64") == 1  # one step: the loss was finite, the weights after it are not
    errors = _errors(capsys)
    assert errors[0].startswith("error: the weights became NaN or infinite in epoch 1 (")
    assert errors[0].endswith("): the run diverged (try a lower --lr or --wd) [AS1002]")


def test_the_data_counts_in_the_memory_budget(files, capsys, monkeypatch):
    monkeypatch.setattr(budget, "available_bytes", lambda: 2**30)
    assert _fit(files, "--size", "2048") == 1
    assert _errors(capsys) == [
        "error: Tiny needs about 32.2 MiB of parameters (2,111,555 × 4 bytes, with gradients and optimiser state), "
        "2.44 GiB of activations for training at batch 8 and 384.0 MiB of images, over the budget of 512.0 MiB (half "
        "of the 1.00 GiB available); check the spec for a typo, or lower --batch or --size, use --loader stream for "
        "an image folder, or pass --no-budget [AS401]"
    ]


# Tampered checkpoints.


def _tampered(finished, tmp_path, change) -> Path:
    checkpoint = torch.load(finished["save"], weights_only=True)
    change(checkpoint["fit"])
    path = tmp_path / "tampered.pt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("forged history", lambda s: s["history"].append({**s["history"][-1], "epoch": 50, "val_acc": 0.999}),
         "the training state's history holds 3 epochs, more than the run's 2"),
        ("renumbered epoch", lambda s: s["history"][1].update(epoch=50),
         "the training state's history entry 1 is numbered 50, not 2"),
        ("impossible accuracy", lambda s: s["history"][1].update(val_acc=0.999),
         "the training state's history entry 1 has val_acc 0.999, not a share of the 6 validation images"),
        ("run as a list", lambda s: s.update(run=[1, 2]),
         "the training state's run is not a mapping of the run's options"),
        ("clock as text", lambda s: s["clock"].update(elapsed="soon"),
         "the training state's clock's elapsed is 'soon', not a finite number ≥ 0"),
        ("optimizer groups", lambda s: s["optimizer"]["param_groups"].pop(),
         "the training state's optimizer state does not hold the 2 parameter groups of this model"),
        ("optimizer steps", lambda s: [e.update(step=torch.tensor(99.0)) for e in s["optimizer"]["state"].values()],
         "the training state's optimizer state counts 99.0 steps; the history's epochs take 6"),
    ],
)  # fmt: skip
def test_a_tampered_training_state_is_refused_by_name(finished, tmp_path, capsys, name, change, message):
    path = _tampered(finished, tmp_path, change)
    argv = [*finished["argv"][:-2], "--resume", str(path), "--save", str(path)]
    before = path.read_bytes()
    assert main(argv) == 1
    assert _errors(capsys) == [f"error: {path}: {message}; the checkpoint cannot be resumed [AS1003]"]
    assert path.read_bytes() == before


def test_resuming_in_place_continues_and_rewrites_the_log(finished, tmp_path, capsys):
    copy, log = tmp_path / "v.pt", tmp_path / "v.jsonl"
    checkpoint = torch.load(finished["save"], weights_only=True)
    epochs = finished["argv"].index("--epochs") + 1
    argv = [*finished["argv"][:-2]]
    argv[epochs] = "3"
    assert main([*argv, "--save", str(copy), "--log", str(log)]) == 0
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]
    assert main([*argv, "--resume", str(copy), "--save", str(copy), "--log", str(log), "--force"]) == 0
    assert [json.loads(line)["epoch"] for line in log.read_text().splitlines()] == [1, 2, 3]
    assert "history" in checkpoint["fit"]


# Starting from weights.


def test_fit_starts_from_a_timm_checkpoint_with_a_fresh_classifier(tmp_path, capsys):
    from test_zoo import _reference_file

    path, weights = _reference_file(tmp_path, "resnet18")
    data = tmp_path / "rgb.npz"
    x, y = _blobs(channels=3)
    np.savez(data, x=x, y=y)
    argv = ["fit", "resnet18", "--data", str(data), "--epochs", "1", "--batch", "24", "--lr", "1e-5"]
    assert main([*argv, "--weights", str(path)]) == 0
    err = capsys.readouterr().err
    assert (
        f"loaded {path} (converted from the timm-resnet layout); the classifier head starts fresh "
        "(the checkpoint's has another shape)\n" in err
    )
    assert main([*argv, "--init-from", str(path)]) == 0
    assert (
        f"warm start from {path}: copied 120 tensors (converted from the timm-resnet layout)\n"
        "shape changed (2): head.weight (1000, 512) → (3, 512), head.bias (1000,) → (3,)\n"
    ) in capsys.readouterr().err
    assert weights["fc.weight"].shape == (1000, 512)


def test_fit_loads_a_checkpoint_written_by_timms_train_script(files, tmp_path, capsys):
    import archspec
    from archspec.data import scan
    from archspec.fit import adapt

    native = archspec.plan(archspec.load_spec(files["spec"]))
    plan = archspec.plan(archspec.load_spec(files["spec"], adapt(native, scan(files["data"]))))
    state = archspec.build(plan, seed=3).state_dict()
    args = argparse.Namespace(model="tiny", lr=0.001, input_size=None, mean=(0.5,), epochs=300, amp=True)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 12, "arch": "tiny", "state_dict": state, "optimizer": {}, "version": 2, "args": args,
                "metric": 71.5}, path)  # fmt: skip
    assert _fit(files, "--weights", str(path)) == 0
    assert f"loaded {path}\n" in capsys.readouterr().err
