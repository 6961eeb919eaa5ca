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


# Every shipped model whose blocks take tokens; ResNet's blocks take the conv grid as it is.
TOKEN_MODELS = ["spectformer", "spectformer-h-s", "poolformer_s12", "poolformerv2_s12", "convformer_s18",
                "caformer_s18", "convnext_atto", "pvt_v2_b0", "gfnet-h-ti"]  # fmt: skip


@pytest.mark.parametrize("name", TOKEN_MODELS)
def test_every_block_of_a_model_fed_an_ordinary_image_gets_contiguous_tokens(name):
    import archspec

    model = archspec.create_model(name, overrides=["input.size=64"]).eval()
    blocks = [module for path, module in model.named_modules() if path.count(".") == 1 and path.startswith("block")]
    layouts = []
    for block in blocks:
        block.register_forward_pre_hook(lambda module, args: layouts.append(args[0].is_contiguous()))
    with torch.inference_mode():
        model(torch.randn(2, 3, 64, 64))  # NCHW, as an image batch usually is
    assert len(layouts) == len(blocks) > 0 and all(layouts), layouts


def test_dense_tokens_copy_only_a_grid_that_is_not_channels_last():
    from archspec.nn.layout import dense_tokens

    nchw = torch.randn(2, 6, 4, 5)
    tokens = dense_tokens(nchw)
    assert tokens.is_contiguous() and tokens.data_ptr() != nchw.data_ptr() and torch.equal(tokens, grid_to_tokens(nchw))
    channels_last = nchw.to(memory_format=torch.channels_last)
    assert dense_tokens(channels_last).data_ptr() == channels_last.data_ptr()
