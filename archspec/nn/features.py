"""Feature maps for detection and segmentation: a backbone torchvision takes as it is."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from archspec.nn import backbone as _backbone
from archspec.nn.feature_info import FeatureInfo
from archspec.nn.layout import grid_tokens, tokens_to_grid


class Stage(nn.Module):
    """One stage as a grid → grid module: embed, blocks, then the stage's norm, laid out as (B, C, H, W)."""

    def __init__(self, patch_embed: nn.Module, blocks: nn.ModuleList, norm: nn.Module) -> None:
        super().__init__()
        self.patch_embed = patch_embed
        self.blocks = blocks
        self.norm = norm
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, hw = self.patch_embed(x)  # (B, N, C)
        x, hw = _backbone.run_blocks(self.blocks, x, hw, self.grad_checkpointing)
        return tokens_to_grid(grid_tokens(self.norm(x), hw), hw)


class FeatureExtractor(nn.Module):
    """The stages of a classifier, returning the feature maps of ``out_indices`` for detection heads.

    Its children are ``stage1``, ``stage2``, ... (up to the last one asked for), each a
    :class:`Stage` taking the previous map, so torchvision's ``IntermediateLayerGetter`` and
    ``BackboneWithFPN`` run it as it is. ``forward`` returns an ``OrderedDict`` of (B, C, H, W)
    maps keyed by stage name (``"stage2"``), each after its stage's norm. ``feature_info`` gives each
    map's channels, stride and module, ``out_channels`` their channels as a list.
    """

    def __init__(
        self, body: _backbone.Body, out_indices: int | Sequence[int], channels: list[int], reductions: list[int]
    ) -> None:
        super().__init__()
        count = len(body.embeds)
        out_indices = tuple(_backbone.stage_indices(count, out_indices))  # timm's forms: an int n, negatives
        self.name = body.name
        self.in_chans = body.in_chans
        self.image_size = body.image_size
        self.out_indices = tuple(out_indices)
        for i in range(max(self.out_indices) + 1):
            setattr(self, f"stage{i + 1}", Stage(body.embeds[i], body.blocks[i], body.norms[i]))
        self.feature_info = FeatureInfo(
            ({"num_chs": channels[i], "reduction": reductions[i], "module": f"stage{i + 1}", "stage": i}
             for i in range(count)),
            self.out_indices,
        )  # fmt: skip
        self.out_channels: list[int] = self.feature_info.channels()

    def _get_name(self) -> str:
        return self.name

    def stages(self) -> list[Stage]:
        return [module for module in self.children() if isinstance(module, Stage)]

    def no_weight_decay(self) -> set[str]:
        """As :meth:`Backbone.no_weight_decay`: full names of the parameters trained without weight decay."""
        return _backbone.no_weight_decay_names(self)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """As :meth:`Backbone.set_grad_checkpointing`: recompute each block's activations in the backward pass."""
        for stage in self.stages():
            stage.grad_checkpointing = enable

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        _backbone.check_image_batch(x, self.name, self.in_chans)
        maps: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i, stage in enumerate(self.stages()):
            x = stage(x)
            if i in self.out_indices:
                maps[f"stage{i + 1}"] = x
        return maps


def output_tensors(value: Any) -> list[Any]:
    """A model's output as a list of tensors: the logits alone, or a backbone's feature maps in order
    (an ``OrderedDict``); a list or tuple (an ONNX session's results) as it is."""
    if isinstance(value, Mapping):
        return list(value.values())
    return list(value) if isinstance(value, list | tuple) else [value]
