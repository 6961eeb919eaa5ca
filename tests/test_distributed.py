"""Two gloo processes on CPU: DDP and FSDP2 training steps equal one process on the whole batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ROOT, tiny

import archspec

SPEC = tiny(
    drop_path_rate=0.0,  # stochastic depth would draw differently on each rank
    head={"type": "class_attention", "heads": 2, "aux_head": True},
)

WORKER = textwrap.dedent(
    """\
    import json, os, sys
    import torch
    import torch.distributed as dist
    import archspec

    mode, spec_path, out = sys.argv[1:4]
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model = archspec.create_model(spec_path, seed=0).train()
    batch = torch.load(os.path.join(out, "batch.pt"))
    mine = batch.chunk(world)[rank]
    if mode == "ddp":
        from torch.nn.parallel import DistributedDataParallel
        wrapped = DistributedDataParallel(model)  # find_unused_parameters stays off
    else:
        from archspec.distributed import fully_shard_model
        wrapped = fully_shard_model(model)
    wrapped(mine).square().mean().backward()
    grads = {}
    for name, p in model.named_parameters():
        grad = p.grad.full_tensor() if hasattr(p.grad, "full_tensor") else p.grad
        grads[name] = grad.tolist()
    with open(os.path.join(out, f"{mode}-{rank}.json"), "w") as f:
        json.dump(grads, f)
    dist.destroy_process_group()
    """
)


def _reference(spec_path: str, batch: torch.Tensor) -> dict[str, torch.Tensor]:
    model = archspec.create_model(spec_path, seed=0).train()
    model(batch).square().mean().backward()
    return {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_ranks_match_one_process(tmp_path, mode):
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(json.dumps(SPEC))
    batch = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    torch.save(batch, tmp_path / "batch.pt")
    (tmp_path / "worker.py").write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(tmp_path / "worker.py"), mode, str(spec_path), str(tmp_path)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"{mode}-{rank}.json").read_text()) for rank in range(2)]
    assert ranks[0].keys() == ranks[1].keys()
    reference = _reference(str(spec_path), batch)
    assert set(ranks[0]) == set(reference)
    for name, grad in reference.items():
        for rank in ranks:
            torch.testing.assert_close(torch.tensor(rank[name]), grad, atol=1e-6, rtol=1e-5, msg=name)
    assert ranks[0] == ranks[1]  # identical on both ranks, bit for bit


def _readme_block(first_line: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"```python\n{first_line}") + len("```python\n")
    return text[start : text.index("```", start)]


# Appended to the README's script: what each rank ends with, for the test to compare.
REPORT = """
final = model.module if distributed else model
out = os.environ["ARCHSPEC_TEST_OUT"]
torch.save({n: p.detach() for n, p in final.state_dict().items()}, f"{out}/rank{os.environ.get('RANK', '0')}.pt")
"""


def test_the_readme_training_loop_runs_under_ddp(tmp_path):
    """The README's train.py, as written, trains two steps on two gloo ranks; the ranks stay equal."""
    script = tmp_path / "train.py"
    script.write_text(_readme_block("# train.py") + REPORT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "ARCHSPEC_TEST_OUT": str(tmp_path)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)]
    initial = archspec.create_model("spectformer-h-s", num_classes=10, seed=0).state_dict()
    assert ranks[0].keys() == ranks[1].keys() == initial.keys()
    assert all(torch.equal(ranks[0][name], ranks[1][name]) for name in initial)  # DDP kept the ranks equal
    changed = [name for name in initial if not torch.equal(ranks[0][name], initial[name])]
    assert "aux_head.weight" in changed and "head.weight" in changed  # both classifiers trained


def test_fit_on_two_gloo_processes_equals_one_process_on_the_concatenated_batch(tmp_path):
    """``torchrun --nproc-per-node 2 -m archspec fit`` with --batch 8 gives the weights one process
    reaches with --batch 16: the DistributedSampler hands each rank half of every 16-image batch."""
    import numpy as np

    pytest.importorskip("sklearn", reason="the fit extra is not installed")
    spec_path = tmp_path / "tiny.yaml"
    spec_path.write_text(json.dumps(tiny(drop_path_rate=0.0)))  # stochastic depth draws per rank
    rng = np.random.default_rng(0)
    y = np.arange(80) % 4  # 64 train images after the split: 4 steps of 16, 8 per rank
    x = rng.normal(size=(80, 8, 8)).astype(np.float32) + y[:, None, None]
    np.savez(tmp_path / "data.npz", x=x, y=y)
    common = [str(spec_path), "--data", str(tmp_path / "data.npz"), "--epochs", "2", "--threads", "1", "-q"]
    common += ["--precision", "fp32"]  # compared at float32 tolerance, on any CPU
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    two = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "archspec",
           "fit", *common, "--batch", "8", "--save", str(tmp_path / "two.pt"), "--format", "json"]  # fmt: skip
    one = [sys.executable, "-m", "archspec", "fit", *common, "--batch", "16", "--save", str(tmp_path / "one.pt"),
           "--format", "json"]  # fmt: skip
    reports = []
    for cmd in (two, one):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        reports.append(json.loads(result.stdout))  # one report: the other rank prints nothing
    assert (reports[0]["world_size"], reports[1]["world_size"]) == (2, 1)
    assert reports[0]["train_images"] == 64
    states = [torch.load(tmp_path / f"{name}.pt", weights_only=True)["state_dict"] for name in ("two", "one")]
    assert states[0].keys() == states[1].keys()
    changed = torch.load(tmp_path / "one.pt", weights_only=True)["fit"]["history"]
    assert len(changed) == 2
    adapted = archspec.load_spec(spec_path, ["input.channels=1", "input.size=8", "num_classes=4"])
    initial = archspec.build(archspec.plan(adapted), seed=0).state_dict()
    for name, tensor in states[1].items():
        torch.testing.assert_close(states[0][name], tensor, atol=1e-5, rtol=1e-4, msg=name)
    assert any(not torch.equal(initial[name], tensor) for name, tensor in states[1].items())  # training moved them
    for a, b in zip(reports[0]["epochs"], reports[1]["epochs"], strict=True):
        assert a["val_acc"] == b["val_acc"]
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
