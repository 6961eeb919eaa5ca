"""Every parameter's gradient has the parameter's strides, the condition DistributedDataParallel checks
before it warns "Grad strides do not match bucket view strides" on every rank."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import ROOT, tiny
from torch import nn

import archspec
from archspec.compose import shipped_specs
from archspec.nn.dwconv import DepthwiseConv
from archspec.nn.layout import channels_last_weight, nchw_cell, one_cell, tokens_to_grid

SIZE = 32
"""A tiny input: the last stage of a stride-32 network is then a grid of one cell."""


def _tiny(path) -> list[str]:
    """Overrides that build ``path`` at :data:`SIZE` pixels (a token MLP's count follows the grid)."""
    spec = archspec.load_spec(path).spec
    native = spec.input.size if isinstance(spec.input.size, int) else spec.input.size[0]
    sets = [f"input.size={SIZE}"]
    for index, stage in enumerate(spec.stages):
        for mixer in stage.mixer or ():
            if getattr(mixer, "tokens", None):
                sets.append(f"stages.{index}.mixer.tokens={round(mixer.tokens * (SIZE / native) ** 2)}")
    return sets


@pytest.fixture(autouse=True)
def _two_threads():
    """At least two threads: with one, torch runs a small 1×1 conv through another kernel, whose weight
    gradient has the weight's strides whatever its input's layout, and a one-cell grid would test nothing."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, 2))
    yield
    torch.set_num_threads(threads)


def _mismatches(model: nn.Module, x: torch.Tensor) -> list[str]:
    model(x).sum().backward()
    grads = [(name, p) for name, p in model.named_parameters() if p.grad is not None]
    assert grads
    return [f"{name}: {p.stride()} vs grad {p.grad.stride()}" for name, p in grads if p.grad.stride() != p.stride()]


@pytest.mark.parametrize("path", shipped_specs(), ids=lambda path: path.stem)
def test_every_gradient_has_its_parameters_strides(path):
    planned = archspec.plan(archspec.load_spec(path, _tiny(path)))
    model = archspec.build(planned).train()
    assert _mismatches(model, torch.randn(2, *planned.input.dims)) == []


def test_a_depthwise_weight_is_stored_channels_last_with_the_same_values():
    torch.manual_seed(0)
    plain = nn.Conv2d(6, 6, 3, padding=1, groups=6)
    torch.manual_seed(0)
    stored = channels_last_weight(nn.Conv2d(6, 6, 3, padding=1, groups=6))
    assert stored.weight.stride() == (9, 1, 3, 1) and plain.weight.stride() == (9, 9, 3, 1)
    assert torch.equal(stored.weight, plain.weight) and stored.weight.is_contiguous()
    assert stored.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(stored.state_dict()[k], plain.state_dict()[k]) for k in plain.state_dict())
    stored.load_state_dict(plain.state_dict())  # a checkpoint in the usual layout loads in place
    assert stored.weight.stride() == (9, 1, 3, 1)


def test_a_weight_whose_layouts_differ_in_memory_is_left_as_it_is():
    conv = nn.Conv2d(4, 8, 3)
    weight = conv.weight
    assert channels_last_weight(conv).weight is weight and weight.stride() == (36, 9, 3, 1)


@pytest.mark.parametrize("batch", [1, 2])
def test_a_depthwise_conv_over_tokens_gives_its_gradient_the_weights_strides(batch):
    mixer = DepthwiseConv(8, kernel=3)
    out = mixer(torch.randn(batch, 16, 8), (4, 4))
    out.sum().backward()
    assert mixer.conv.weight.grad.stride() == mixer.conv.weight.stride() == (9, 1, 3, 1)


def test_a_one_cell_grid_is_viewed_nchw():
    tokens = torch.randn(2, 1, 5)
    assert tokens_to_grid(tokens, (1, 1)).stride() == (5, 1, 5, 5)  # torch reads it as channels-last
    cell = nchw_cell(tokens)
    assert cell.shape == (2, 5, 1, 1) and cell.stride() == (5, 1, 1, 1)
    assert torch.equal(cell, tokens_to_grid(tokens, (1, 1))) and cell.data_ptr() == tokens.data_ptr()
    assert one_cell((1, 1)) and not one_cell((1, 2))


DDP_WORKER = textwrap.dedent(
    """\
    import json, os, sys, warnings
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    import archspec

    out = sys.argv[1]
    builds = json.loads(sys.argv[2])
    torch.set_num_threads(2)  # one thread sends a small 1×1 conv to another kernel, which hides the case
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    seen = []
    for spec, sets in builds:
        model = archspec.create_model(spec, overrides=sets, seed=0).train()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(rank))
        wrapped = DistributedDataParallel(model)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            wrapped(x).square().mean().backward()
        seen += [str(w.message).splitlines()[0] for w in caught]
    with open(os.path.join(out, f"warnings-{rank}.json"), "w") as f:
        json.dump(seen, f)
    dist.destroy_process_group()
    """
)

RESNET_AT_ONE_CELL = [
    f"input.size={SIZE}", "stem.layers.0.channels=8",
    "stages.0.dim=16", "stages.1.dim=16", "stages.2.dim=16", "stages.3.dim=16", "stages.3.depth=2",
]  # fmt: skip
"""ResNet-50's blocks, narrow: its last stage is one cell, where a block's first 1×1 conv reads its input."""


def test_a_ddp_step_on_two_gloo_ranks_warns_nothing(tmp_path):
    """A depthwise conv over tokens (ConvNeXt's mixer, PVT-v2's FFN, ConvFormer's separable conv) and a
    ResNet block on a one-cell grid, each one DDP step on two ranks, with every warning recorded."""
    spec = tiny(
        drop_path_rate=0.0,
        stages=[
            {"dim": 8, "depth": 1, "mixer": {"type": "dwconv"}, "ffn": {"type": "pvt2", "ratio": 2}},
            {"dim": 16, "depth": 1, "mixer": {"type": "sepconv"}, "ffn": {"type": "mlp", "ratio": 2}},
        ],
    )
    spec_path = tmp_path / "tokens.yaml"
    spec_path.write_text(json.dumps(spec))
    builds = [[str(spec_path), []], ["resnet50", RESNET_AT_ONE_CELL]]
    (tmp_path / "worker.py").write_text(DDP_WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(tmp_path / "worker.py"), str(tmp_path), json.dumps(builds)]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Grad strides do not match" not in result.stderr
    for rank in range(2):
        assert json.loads((tmp_path / f"warnings-{rank}.json").read_text()) == []
