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
    logits, aux = wrapped(mine)
    (logits.square().mean() + aux.square().mean()).backward()
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
    logits, aux = model(batch)
    (logits.square().mean() + aux.square().mean()).backward()
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
