"""archspec.nn.Linear: nn.Linear's function and names, with oneDNN's fused-bias kernel for CPU inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archspec.nn import linear
from archspec.nn.linear import Linear

pytestmark = pytest.mark.skipif(linear._fused is None, reason="this torch has no oneDNN linear kernel")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(7, 16), (2, 5, 16), (3, 4, 5, 16)])
def test_fast_path_matches_f_linear(shape, bias):
    layer = Linear(16, 12, bias=bias)
    x = torch.randn(shape)
    with torch.inference_mode():
        assert linear._takes_fast_path(x, layer.weight)
        got, want = layer(x), F.linear(x, layer.weight, layer.bias)
    assert got.shape == want.shape == (*shape[:-1], 12)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_non_contiguous_input():
    layer = Linear(16, 8)
    x = torch.randn(2, 16, 6).transpose(1, 2)[:, ::2]
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=0, atol=1e-5)


def test_fast_path_only_where_nothing_depends_on_it():
    layer = Linear(8, 4)
    x = torch.randn(3, 8)
    assert not linear._takes_fast_path(x, layer.weight)  # autograd on
    with torch.no_grad():
        assert linear._takes_fast_path(x, layer.weight)
        assert not linear._takes_fast_path(x.double(), layer.weight.double())
        assert not linear._takes_fast_path(x.to("meta"), layer.weight)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not linear._takes_fast_path(x, layer.weight)
            assert layer(x).dtype == torch.bfloat16  # autocast still applies


def test_gradients_flow_as_in_nn_linear():
    torch.manual_seed(0)
    ours, plain = Linear(8, 4), nn.Linear(8, 4)
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(5, 8)
    ours(x).square().sum().backward()
    plain(x).square().sum().backward()
    assert ours.weight.grad is not None and plain.weight.grad is not None
    torch.testing.assert_close(ours.weight.grad, plain.weight.grad, rtol=0, atol=0)


def test_names_and_state_dict_are_nn_linears():
    layer = Linear(8, 4)
    assert repr(layer) == "Linear(in_features=8, out_features=4, bias=True)"
    assert list(layer.state_dict()) == ["weight", "bias"]
    assert isinstance(layer, nn.Linear)
