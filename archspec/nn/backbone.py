"""The hierarchical body: per stage an embedding, a list of blocks and an end norm, with timm's model contract."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx
from torch import nn
from torch.utils.checkpoint import checkpoint

from archspec.nn.feature_info import FeatureInfo
from archspec.nn.layout import grid_tokens, tokens_to_grid

# The ImageNet statistics every reference model of the zoo was trained with; specs carry no preprocessing.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InputShapeError(ValueError):
    """An input a model cannot take: not a (B, C, H, W) batch, another channel count, or empty."""


def check_image_batch(x: torch.Tensor, name: str, in_chans: int | None) -> None:
    """Raise :class:`InputShapeError` unless ``x`` is a non-empty (B, C, H, W) batch with ``in_chans`` channels.

    Only sizes are compared, in plain Python, so torch.compile and torch.export trace it without a
    graph break; with the batch dimension dynamic (at least 1) the empty-batch test is decided at
    trace time and leaves no guard behind. FX (``torch.fx.symbolic_trace``, torchvision's
    ``create_feature_extractor``) records it as one call instead of tracing into it.
    """
    channels = "C" if in_chans is None else str(in_chans)
    expected = f"(B, {channels}, H, W)"
    if x.ndim != 4:
        raise InputShapeError(
            f"{name} expects a 4-D batch of images {expected}, got a {x.ndim}-D tensor of shape {tuple(x.shape)}"
        )
    if in_chans is not None and x.shape[1] != in_chans:
        raise InputShapeError(
            f"{name} expects {in_chans} input channels {expected}, got {x.shape[1]} in shape {tuple(x.shape)}"
        )
    if x.shape[0] == 0:
        raise InputShapeError(
            f"{name} expects at least one image {expected}, got an empty batch of shape {tuple(x.shape)}"
        )
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise InputShapeError(f"{name} expects images of at least one pixel {expected}, got shape {tuple(x.shape)}")


torch.fx.wrap("check_image_batch")


def run_blocks(
    blocks: nn.ModuleList, x: torch.Tensor, hw: tuple[int, int], checkpointing: bool
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Run a stage's blocks; with ``checkpointing`` (and autograd on) each block's activations are
    recomputed in the backward pass instead of kept."""
    for block in blocks:
        if checkpointing and torch.is_grad_enabled():
            x, hw = checkpoint(block, x, hw, use_reentrant=False)
        else:
            x, hw = block(x, hw)
    return x, hw


@dataclass
class Body:
    """Built stage parts handed to a head's model class.

    Args:
        name: model name; the printed module tree is titled with it.
        embeds: per stage, the stem or downsample producing its tokens.
        blocks: per stage, its blocks.
        norms: per stage, the norm applied to its output tokens.
        in_chans: channels of the input images, or None to leave them unchecked.
        image_size: the (height, width) the model was built for, or None.
        channels: per stage, its width (for ``feature_info``); empty when unknown.
        reductions: per stage, its stride from the input image; empty when unknown.
    """

    name: str
    embeds: list[nn.Module]
    blocks: list[nn.ModuleList]
    norms: list[nn.Module]
    in_chans: int | None = None
    image_size: tuple[int, int] | None = None
    channels: list[int] = field(default_factory=list)
    reductions: list[int] = field(default_factory=list)


class Backbone(nn.Module):
    """Runs the stages; subclasses add a head and define ``forward_head``.

    Registers ``patch_embed{i}``, ``block{i}`` and ``norm{i}`` for each stage i (1-based), in that
    order. Between stages the end norm is applied and the tokens are laid back out as a grid for the
    next downsample; the last stage's norm is left to the head. An input of the wrong rank or channel
    count, or an empty one, is refused with :class:`InputShapeError` before the first layer sees it.

    The model follows timm's contract: ``feature_info``, ``num_features``, ``num_classes``,
    ``pretrained_cfg``, ``get_classifier``/``reset_classifier``, ``group_matcher`` (layer-wise decay),
    ``set_grad_checkpointing``, ``forward_features``, ``forward_head(pre_logits=)`` and
    ``forward_intermediates``.
    """

    def __init__(self, body: Body) -> None:
        super().__init__()
        self.name = body.name
        self.in_chans = body.in_chans
        self.image_size = body.image_size
        self.num_stages = len(body.embeds)
        self.grad_checkpointing = False
        for i, (embed, blocks, norm) in enumerate(zip(body.embeds, body.blocks, body.norms, strict=True), start=1):
            setattr(self, f"patch_embed{i}", embed)
            setattr(self, f"block{i}", blocks)
            setattr(self, f"norm{i}", norm)
        self.feature_info = FeatureInfo(
            {"num_chs": chs, "reduction": red, "module": f"block{i}", "stage": i - 1}
            for i, (chs, red) in enumerate(zip(body.channels, body.reductions, strict=True), start=1)
        )

    def _get_name(self) -> str:
        return self.name

    def stage(self, i: int) -> tuple[nn.Module, nn.ModuleList, nn.Module]:
        """The (embed, blocks, norm) of stage ``i``, counted from 1."""
        return getattr(self, f"patch_embed{i}"), getattr(self, f"block{i}"), getattr(self, f"norm{i}")

    @property
    def final_norm(self) -> nn.Module:
        return self.stage(self.num_stages)[2]

    def check_input(self, x: torch.Tensor) -> None:
        """Raise :class:`InputShapeError` unless ``x`` is a non-empty (B, C, H, W) batch with the built C."""
        check_image_batch(x, self.name, self.in_chans)

    # --- timm's model contract -------------------------------------------------------------------

    @property
    def num_features(self) -> int:
        """Channels of the last stage: the width ``forward_head(x, pre_logits=True)`` returns."""
        return int(self.feature_info[-1]["num_chs"]) if self.feature_info else 0

    @property
    def head_hidden_size(self) -> int:
        """Width of ``forward_head(x, pre_logits=True)``: ``num_features`` (a hidden layer of the head
        comes after it)."""
        return self.num_features

    @property
    def num_classes(self) -> int:
        """Classes the classifier predicts; 0 after ``reset_classifier(0)``."""
        classifier = self.get_classifier()
        return int(classifier.out_features) if isinstance(classifier, nn.Linear) else 0

    def get_classifier(self) -> nn.Module:
        """The final classifier layer (an ``nn.Identity`` once reset to 0 classes)."""
        raise NotImplementedError

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new classifier for ``num_classes`` classes (0: none, the pooled features come out)."""
        raise NotImplementedError

    def classifier_name(self) -> str:
        """The classifier's module path (``pretrained_cfg["classifier"]``)."""
        classifier = self.get_classifier()
        return next(name for name, module in self.named_modules() if module is classifier)

    @property
    def pretrained_cfg(self) -> dict[str, Any]:
        """timm's pretrained config: input size, preprocessing and the names of the first conv and classifier.

        The mean and std are ImageNet's (the zoo's reference models were trained with them): a spec
        carries no preprocessing of its own.
        """
        first_conv = next((name for name, module in self.named_modules() if isinstance(module, nn.Conv2d)), "")
        size = self.image_size or (224, 224)
        return {
            "architecture": self.name,
            "num_classes": self.num_classes,
            "input_size": (self.in_chans or 3, *size),
            "fixed_input_size": False,
            "interpolation": "bicubic",
            "crop_pct": 0.875,
            "crop_mode": "center",
            "mean": IMAGENET_MEAN,
            "std": IMAGENET_STD,
            "first_conv": first_conv,
            "classifier": self.classifier_name(),
        }

    @property
    def default_cfg(self) -> dict[str, Any]:
        """The older name of :attr:`pretrained_cfg`."""
        return self.pretrained_cfg

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """Regexes grouping parameter names into layers, first to last, as timm's layer-wise decay reads them.

        The stem (``patch_embed1``) comes first; then, stage by stage, the downsample and every block
        (one group per stage with ``coarse``), with the stage's end norm joining its last block. The
        head (and anything not matched) is the last layer.
        """
        if coarse:  # a stage's downsample, blocks and norm together
            blocks: list[tuple[str, tuple[int, ...] | None]] = [(r"^(?:patch_embed|block|norm)(\d+)\.", None)]
        else:
            blocks = [
                (r"^patch_embed(\d+)\.", (-1,)),
                (r"^block(\d+)\.(\d+)\.", None),
                (r"^norm(\d+)\.", (99999,)),  # timm's marker: joins the group before it
            ]
        return {"stem": r"^patch_embed1\.", "blocks": blocks}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each block's activations in the backward pass instead of keeping them (less memory,
        one more forward of the blocks per step). Applies whenever autograd records the forward pass."""
        self.grad_checkpointing = enable

    # --- forward --------------------------------------------------------------------------------

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, C, H, W) → last stage's tokens (B, N, C), before its end norm."""
        self.check_input(x)
        for i in range(1, self.num_stages + 1):
            embed, blocks, norm = self.stage(i)
            x, hw = embed(x)  # (B, N, C)
            x, hw = run_blocks(blocks, x, hw, self.grad_checkpointing)
            if i < self.num_stages:
                x = tokens_to_grid(grid_tokens(norm(x), hw), hw)
        return x

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """The outputs of some stages, in timm's form.

        Args:
            x: images (B, C, H, W).
            indices: stages to return, 0-based (negative counts from the end); an int ``n`` takes the last
                ``n``; None takes all.
            norm: apply the last stage's norm to the last stage's output too (the other stages' outputs
                are always after their own norm: that is what the next stage reads).
            stop_early: stop after the last stage asked for; the first value returned is then that stage's
                grid (B, C, H, W), not the final features.
            output_fmt: ``"NCHW"`` for (B, C, H, W) maps or ``"NLC"`` for (B, H·W, C) tokens.
            intermediates_only: return only the list of intermediates.

        Returns:
            ``(final features, intermediates)``, where the final features are those of
            :meth:`forward_features`, or only the intermediates.
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take = stage_indices(self.num_stages, indices)
        self.check_input(x)
        intermediates = []
        last = max(take) + 1 if (stop_early or intermediates_only) else self.num_stages
        for i in range(1, last + 1):
            embed, blocks, stage_norm = self.stage(i)
            x, hw = embed(x)  # (B, N, C)
            x, hw = run_blocks(blocks, x, hw, self.grad_checkpointing)
            if i - 1 in take:
                out = stage_norm(x) if (i < self.num_stages or norm) else x
                out = grid_tokens(out, hw)
                intermediates.append(tokens_to_grid(out, hw) if output_fmt == "NCHW" else out)
            if i < self.num_stages:
                x = tokens_to_grid(grid_tokens(stage_norm(x), hw), hw)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def no_weight_decay(self) -> set[str]:
        """Full names of the parameters trained without weight decay (see :func:`no_weight_decay_names`):
        biases, norm weights, layer scales and every other 1-D parameter, spectral filters, position
        embeddings, class tokens and relative-position tables. ``archspec.optim.parameter_groups`` and
        timm's ``create_optimizer_v2`` both read it."""
        return no_weight_decay_names(self)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def no_weight_decay_names(module: nn.Module) -> set[str]:
    """Full names of ``module``'s parameters to train without weight decay.

    Every 1-D parameter (biases, norm weights, layer scales) and every parameter named ``*.bias``, as
    timm's optimizer factory exempts them, and every parameter a submodule (not ``module`` itself)
    names in its own ``no_weight_decay()``: spectral filters, position embeddings, class tokens,
    relative-position tables, ResMLP's affine norm, AFNO's biases.
    """
    names = {name for name, param in module.named_parameters() if param.ndim <= 1 or name.endswith(".bias")}
    for prefix, sub in module.named_modules():
        own = getattr(sub, "no_weight_decay", None)
        if sub is not module and callable(own):
            names |= {f"{prefix}.{name}" for name in own()}
    return names


def stage_indices(count: int, indices: int | Sequence[int] | None) -> list[int]:
    """timm's ``indices``: None → every stage, an int n → the last n, a sequence → those (negative from the end)."""
    if indices is None:
        return list(range(count))
    if isinstance(indices, int):
        if not 0 < indices <= count:
            raise ValueError(f"indices={indices} asks for the last {indices} of {count} stages")
        return list(range(count - indices, count))
    picked = [i + count if i < 0 else i for i in indices]
    if not picked or min(picked) < 0 or max(picked) >= count:
        raise ValueError(f"indices {tuple(indices)} must name stages 0–{count - 1} (or −{count}–−1)")
    return picked
