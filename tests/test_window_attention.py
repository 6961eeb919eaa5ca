"""Window attention, the relative-position bias and patch merging against what they are defined to do."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny
from torch import nn

import archspec
from archspec.errors import SpecError
from archspec.nn import Attention
from archspec.nn.patch_merging import PatchMerging
from archspec.nn.rel_pos import RelativePositionBias, relative_position_index
from archspec.nn.window_attention import MASKED, WindowAttention


def test_relative_position_index_numbers_each_offset_once():
    height, width = 2, 3
    index = relative_position_index(height, width)
    cells = [(y, x) for y in range(height) for x in range(width)]
    for i, (yi, xi) in enumerate(cells):
        for j, (yj, xj) in enumerate(cells):
            assert index[i, j] == (yi - yj + height - 1) * (2 * width - 1) + (xi - xj + width - 1)
    assert sorted(set(index.flatten().tolist())) == list(range((2 * height - 1) * (2 * width - 1)))


def _explicit(attn: WindowAttention, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Attention over tokens (B, N, C) of one window, written out, with its bias (and a mask) added."""
    batch, cells, dim = x.shape
    heads, head_dim = attn.heads, dim // attn.heads
    q, k, v = attn.qkv(x).reshape(batch, cells, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    logits = q @ k.transpose(-2, -1) * head_dim**-0.5 + attn.rel_pos()
    if mask is not None:
        logits = logits + mask
    return attn.proj((logits.softmax(-1) @ v).transpose(1, 2).reshape(batch, cells, dim))


def test_unshifted_window_attention_attends_within_each_window():
    attn = WindowAttention(8, 2, (2, 3), rel_pos=RelativePositionBias(2, 3, 2)).eval()
    x = torch.randn(2, 4, 6, 8)  # (B, H, W, C): 2×2 windows of 2×3 cells
    out = attn(x.reshape(2, 24, 8), (4, 6)).reshape(2, 4, 6, 8)
    for top in (0, 2):
        for left in (0, 3):
            window = x[:, top : top + 2, left : left + 3].reshape(2, 6, 8)
            expected = _explicit(attn, window).reshape(2, 2, 3, 8)
            torch.testing.assert_close(out[:, top : top + 2, left : left + 3], expected)


def test_a_grid_smaller_than_the_windows_is_padded_with_zeros():
    attn = WindowAttention(8, 2, (3, 3), rel_pos=RelativePositionBias(3, 3, 2)).eval()
    x = torch.randn(1, 2, 2, 8)
    padded = torch.zeros(1, 3, 3, 8)
    padded[:, :2, :2] = x
    expected = _explicit(attn, padded.reshape(1, 9, 8)).reshape(1, 3, 3, 8)[:, :2, :2]
    torch.testing.assert_close(attn(x.reshape(1, 4, 8), (2, 2)), expected.reshape(1, 4, 8))


def test_shifted_windows_join_only_cells_from_the_same_part_of_the_grid():
    """Each output token depends on exactly the cells of its shifted window that did not wrap round
    with respect to it: the grid rolled by (-1, -1), cut into 2×2 windows, and the roll's wrapped last
    row and column kept apart from the rest."""
    size, window, shift = 4, 2, 1
    attn = WindowAttention(4, 1, (window, window), (shift, shift), (size, size), rel_pos=None).eval()
    x = torch.randn(1, size * size, 4, requires_grad=True)
    out = attn(x, (size, size))

    def place(cell: int) -> tuple[int, int, int, int]:
        rolled = [(c - shift) % size for c in divmod(cell, size)]  # where the roll puts it
        part = [0 if r < size - window else 1 if r < size - shift else 2 for r in rolled]
        return rolled[0] // window, rolled[1] // window, part[0], part[1]

    for token in range(size * size):
        (grad,) = torch.autograd.grad(out[0, token].sum(), x, retain_graph=True)
        # The mask's -100 leaves a weight of e^-100 (a float32 denormal) between parts, not an exact zero.
        reached = {cell for cell in range(size * size) if grad[0, cell].abs().sum() > 1e-20}
        assert reached == {cell for cell in range(size * size) if place(cell) == place(token)}, token
    assert attn.mask is not None and set(attn.mask.unique().tolist()) == {0.0, MASKED}


def test_window_attention_keeps_swins_rule_for_small_grids():
    """A side no longer than the window is one window, unshifted; the shift mask then has nothing to do."""
    spec = tiny()
    for stage in spec["stages"]:
        stage["mixer"] = {"type": "window_attention", "heads": 2, "window": 4, "shift": 2}
    plan = archspec.plan(archspec.validate(spec))
    first, second = (stage.blocks[0].part_of("mixer") for stage in plan.stages)
    assert first is not None and second is not None
    assert (first.args.window, first.args.shift) == ((4, 4), (2, 2))  # 8×8: four shifted windows
    assert (second.args.window, second.args.shift) == ((4, 4), (0, 0))  # 4×4: one window
    with pytest.raises(SpecError, match="the shift \\(4\\) must be smaller than the window \\(4\\)"):
        spec["stages"][0]["mixer"]["shift"] = 4
        archspec.plan(archspec.validate(spec))


def test_global_attention_adds_its_relative_position_bias_and_refuses_other_grids():
    attn = Attention(8, 2, fused=True, rel_pos=RelativePositionBias(2, 3, 2)).eval()
    x = torch.randn(2, 6, 8)
    q, k, v = attn.qkv(x).reshape(2, 6, 3, 2, 4).permute(2, 0, 3, 1, 4)
    weights = (q @ k.transpose(-2, -1) * 4**-0.5 + attn.rel_pos()).softmax(-1)
    expected = attn.proj((weights @ v).transpose(1, 2).reshape(2, 6, 8))
    torch.testing.assert_close(attn(x, (2, 3)), expected)
    with pytest.raises(ValueError, match="made for a 2×3 token grid, got \\(3, 2\\)"):
        attn(x, (3, 2))


def test_the_relative_position_bias_is_off_by_default_and_refused_with_a_class_token():
    spec = tiny()
    plan = archspec.plan(archspec.validate(spec))
    assert "rel_pos" not in str(archspec.build(plan))
    spec["stages"][1]["mixer"]["rel_pos"] = True
    plan = archspec.plan(archspec.validate(spec))
    model = archspec.build(plan)
    assert model.get_submodule("block2.0.m.rel_pos").table.shape == (7 * 7, 2)  # a 4×4 grid, 2 heads
    spec = tiny(stem={"type": "patch", "patch": 4, "cls_token": True}, head={"type": "token"})
    spec["stages"] = spec["stages"][1:]
    spec["stages"][0]["mixer"]["rel_pos"] = True
    with pytest.raises(SpecError, match="a relative-position bias needs tokens on a grid, without a class token"):
        archspec.plan(archspec.validate(spec))


def test_patch_merging_concatenates_each_neighbourhood_column_by_column():
    merge = PatchMerging(nn.Identity(), nn.Identity())
    x = torch.arange(2 * 3 * 3, dtype=torch.float32).reshape(1, 2, 3, 3)  # (B, C, H, W): odd sides
    out, hw = merge(x)
    assert hw == (2, 2) and out.shape == (1, 4, 8)
    cell = lambda y, x_: x[0, :, y, x_] if y < 3 and x_ < 3 else torch.zeros(2)  # noqa: E731
    for index, (top, left) in enumerate(((0, 0), (0, 2), (2, 0), (2, 2))):
        expected = torch.cat([cell(top, left), cell(top + 1, left), cell(top, left + 1), cell(top + 1, left + 1)])
        torch.testing.assert_close(out[0, index], expected)
