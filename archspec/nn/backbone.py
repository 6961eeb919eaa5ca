"""The hierarchical body: per stage an embedding, a list of blocks and an end norm."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archspec.nn.layout import tokens_to_grid


class InputShapeError(ValueError):
    """An input a model cannot take: not a (B, C, H, W) batch, another channel count, or empty."""


@dataclass
class Body:
    """Built stage parts handed to a head's model class.

    Args:
        name: model name; the printed module tree is titled with it.
        embeds: per stage, the stem or downsample producing its tokens.
        blocks: per stage, its blocks.
        norms: per stage, the norm applied to its output tokens.
        in_chans: channels of the input images, or None to leave them unchecked.
    """

    name: str
    embeds: list[nn.Module]
    blocks: list[nn.ModuleList]
    norms: list[nn.Module]
    in_chans: int | None = None


class Backbone(nn.Module):
    """Runs the stages; subclasses add a head and define ``forward_head``.

    Registers ``patch_embed{i}``, ``block{i}`` and ``norm{i}`` for each stage i (1-based), in that
    order. Between stages the end norm is applied and the tokens are laid back out as a grid for the
    next downsample; the last stage's norm is left to the head. An input of the wrong rank or channel
    count, or an empty one, is refused with :class:`InputShapeError` before the first layer sees it.
    """

    def __init__(self, body: Body) -> None:
        super().__init__()
        self.name = body.name
        self.in_chans = body.in_chans
        self.num_stages = len(body.embeds)
        for i, (embed, blocks, norm) in enumerate(zip(body.embeds, body.blocks, body.norms, strict=True), start=1):
            setattr(self, f"patch_embed{i}", embed)
            setattr(self, f"block{i}", blocks)
            setattr(self, f"norm{i}", norm)

    def _get_name(self) -> str:
        return self.name

    def stage(self, i: int) -> tuple[nn.Module, nn.ModuleList, nn.Module]:
        """The (embed, blocks, norm) of stage ``i``, counted from 1."""
        return getattr(self, f"patch_embed{i}"), getattr(self, f"block{i}"), getattr(self, f"norm{i}")

    @property
    def final_norm(self) -> nn.Module:
        return self.stage(self.num_stages)[2]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` unless ``x`` is a non-empty (B, C, H, W) batch with the built C.

        Only sizes are compared, in plain Python, so torch.compile and torch.export trace it without a
        graph break; with the batch dimension dynamic (at least 1) the empty-batch test is decided at
        trace time and leaves no guard behind.
        """
        channels = "C" if self.in_chans is None else str(self.in_chans)
        expected = f"(B, {channels}, H, W)"
        if x.ndim != 4:
            raise InputShapeError(
                f"{self.name} expects a 4-D batch of images {expected}, got a {x.ndim}-D tensor of shape "
                f"{tuple(x.shape)}"
            )
        if self.in_chans is not None and x.shape[1] != self.in_chans:
            raise InputShapeError(
                f"{self.name} expects {self.in_chans} input channels {expected}, got {x.shape[1]} in shape "
                f"{tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            raise InputShapeError(
                f"{self.name} expects at least one image {expected}, got an empty batch of shape {tuple(x.shape)}"
            )
        if x.shape[2] == 0 or x.shape[3] == 0:
            raise InputShapeError(
                f"{self.name} expects images of at least one pixel {expected}, got shape {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, C, H, W) → last stage's tokens (B, N, C), before its end norm."""
        self.check_input(x)
        for i in range(1, self.num_stages + 1):
            embed, blocks, norm = self.stage(i)
            x, hw = embed(x)  # (B, N, C)
            for block in blocks:
                x, hw = block(x, hw)
            if i < self.num_stages:
                x = tokens_to_grid(_grid_tokens(norm(x), hw), hw)
        return x

    def forward_intermediates(self, x: torch.Tensor, indices: tuple[int, ...]) -> list[torch.Tensor]:
        """Image → the outputs of the stages in ``indices`` (0-based), normed, as (B, C, H, W) grids."""
        self.check_input(x)
        features = []
        for i in range(1, max(indices) + 2):
            embed, blocks, norm = self.stage(i)
            x, hw = embed(x)  # (B, N, C)
            for block in blocks:
                x, hw = block(x, hw)
            x = tokens_to_grid(_grid_tokens(norm(x), hw), hw)
            if i - 1 in indices:
                features.append(x)
        return features

    def no_weight_decay(self) -> set[str]:
        """Parameters usually trained without weight decay: biases, norm gains, scales, and every parameter
        a module names in its own ``no_weight_decay`` (spectral filters, position embeddings)."""
        names = {name for name, param in self.named_parameters() if param.ndim <= 1}
        for prefix, module in self.named_modules():
            own = getattr(module, "no_weight_decay", None)
            if module is not self and callable(own):
                names |= {f"{prefix}.{name}" for name in own()}
        return names

    def forward_head(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.forward_head(self.forward_features(x))


def _grid_tokens(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """The tokens of the grid cells, without the class token(s) in front."""
    cells = hw[0] * hw[1]
    return x if x.shape[1] == cells else x[:, x.shape[1] - cells :]
