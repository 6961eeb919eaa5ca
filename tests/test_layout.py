"""Token ↔ grid views: channels-last for every batch size, so convolutions never copy."""

from __future__ import annotations

import pytest
import torch

from archspec.nn.ffn import DWConv
from archspec.nn.layout import grid_to_tokens, tokens_to_grid


@pytest.mark.parametrize("batch", [1, 3])
def test_round_trip_is_a_view(batch):
    tokens = torch.randn(batch, 4 * 5, 6)
    grid = tokens_to_grid(tokens, (4, 5))
    assert grid.shape == (batch, 6, 4, 5)
    assert grid.is_contiguous(memory_format=torch.channels_last)
    assert grid.data_ptr() == tokens.data_ptr()
    assert torch.equal(grid[:, :, 2, 3], tokens[:, 2 * 5 + 3])
    back = grid_to_tokens(grid)
    assert back.data_ptr() == tokens.data_ptr() and torch.equal(back, tokens)


def test_nchw_grid_gives_a_token_view():
    grid = torch.randn(2, 6, 4, 5)  # NCHW, as a conv on an ordinary image returns
    tokens = grid_to_tokens(grid)
    assert tokens.shape == (2, 20, 6) and tokens.data_ptr() == grid.data_ptr()
    assert torch.equal(tokens[1, 7], grid[1, :, 1, 2])


@pytest.mark.parametrize("batch", [1, 2])
def test_depthwise_conv_keeps_channels_last(batch):
    conv = DWConv(8)
    with torch.no_grad():
        grid = conv.dwconv(tokens_to_grid(torch.randn(batch, 16, 8), (4, 4)))
        assert grid.is_contiguous(memory_format=torch.channels_last)  # so the tokens after it are a view
        assert conv(torch.randn(batch, 16, 8), (4, 4)).is_contiguous()
