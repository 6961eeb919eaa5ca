"""Block ``maxvit``: MaxViT's block, a pre-norm MBConv, then attention within windows of neighbouring cells,
then attention within windows spread over the whole grid, each attention a pre-norm transformer layer."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from archspec.components._resnet import at_block
from archspec.components.part_se import SePartSpec
from archspec.errors import KeyPath
from archspec.flow import Combine, FlowBlockSpec, Form, Line, part
from archspec.nodes import BlockInput, PlanProblem
from archspec.planning import needs_grid, round_channels
from archspec.registry import register
from archspec.slots import Slot, default_component
from archspec.specbase import ActSpec, NormSpec, PartSpec


def _default_se() -> SePartSpec:
    return SePartSpec.model_validate({"type": "se", "ratio": 0.25, "act": "silu"})


@register
class MaxVitBlockSpec(FlowBlockSpec):
    """The MBConv: ``conv_norm`` on the input (no activation), a 1×1 conv to ``expand`` times the block's
    output width (rounded to a multiple of 8), ``conv_norm`` + ``act``, a depthwise ``kernel``×``kernel`` conv
    (the stage's first block strides it by ``stride``), ``conv_norm`` + ``act``, squeeze-excitation
    (``se``, its ratio of the OUTPUT width), and a 1×1 conv with bias to the output width; it is added to the
    input, which the stage's first block averages over stride × stride cells and widens with a 1×1 conv
    with bias (``pool_projection``). Then two pre-norm transformer layers (``norm``; the stage's ``ffn``):
    the stage's ``window_attention`` mixer, and the same mixer over a grid partition (each window spread
    evenly over the whole grid). ``padding: same`` pads the strided conv and pool as TensorFlow's SAME does."""

    type: Literal["maxvit"] = "maxvit"
    colour = "#e3d4f5"
    example: ClassVar[dict[str, Any]] = {
        "stages.0.mixer": {"type": "window_attention", "window": 2, "heads": 2},
        "stages.1.mixer": {"type": "window_attention", "window": 2, "heads": 2},
        "stages.1.downsample": {"type": "none"},
    }
    expand: float = Field(4.0, gt=0, le=64, description="the 1×1 conv's width / the block's output width")
    kernel: int = Field(3, ge=1, le=31, description="the depthwise conv's window")
    stride: int = Field(2, ge=1, le=16, description="stride of the stage's first block (its depthwise conv)")
    padding: Literal["symmetric", "same"] = Field(
        "symmetric", description="of the strided conv and the shortcut's pool; same: TensorFlow's SAME padding"
    )
    se: SePartSpec | None = Field(
        default_factory=_default_se, description="squeeze-excitation after the depthwise conv"
    )
    conv_norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "batchnorm"))
    norm: Slot[NormSpec] = Field(default_factory=default_component("norm", "layernorm", eps=1e-5))
    act: Slot[ActSpec] = Field(default_factory=default_component("act", "gelu"))

    def form(self, given: BlockInput) -> Form:
        here = given.site.spec_path
        at_block(given, needs_grid, given.tokens, "a maxvit block")
        mixer = given.mixer
        if mixer is None or mixer.type != "window_attention":
            raise PlanProblem(given.mixer_path, "a maxvit block attends with the stage's window_attention mixer")
        stride = self.stride if given.first else 1
        cin, cout = given.tokens.channels, given.dim
        mid = round_channels(cout * self.expand, 8)
        conv_norm = (*here, "conv_norm")
        parts: dict[str, tuple[PartSpec, KeyPath]] = {}
        reshaped = stride > 1 or cin != cout
        if reshaped:
            parts["shortcut"] = part("pool_projection", here, out=cout, stride=stride, padding=self.padding)
        parts |= {
            "pre_norm": part("norm", conv_norm, norm=self.conv_norm),
            "conv1_1x1": part("conv", here, out=mid, kernel=1),
            "norm1": part("norm", conv_norm, norm=self.conv_norm),
            "act1": part("act", here),
            "conv2_kxk": part(
                "conv", here, out=mid, kernel=self.kernel, stride=stride, groups=mid, padding=self.padding
            ),
            "norm2": part("norm", conv_norm, norm=self.conv_norm),
            "act2": part("act", here),
        }
        conv: list[Any] = list(parts)[1 if reshaped else 0 :]
        if self.se is not None:
            parts["se"] = self.se.model_copy(update={"channels": self.se.squeezed(cout), "ratio": None}), (*here, "se")
            conv.append("se")
        parts["conv3_1x1"] = part("conv", here, out=cout, kernel=1, bias=True)
        conv += ["conv3_1x1", "drop_path", Combine(add="shortcut") if reshaped else "add"]
        grid_mixer = mixer.model_copy(update={"partition": "grid"})
        parts |= {
            "block_norm1": part("norm", here),
            "block_attn": part("mixer", here),
            "block_norm2": part("norm", here),
            "block_mlp": part("ffn", here),
            "grid_norm1": part("norm", here),
            "grid_attn": part("mixer", given.mixer_path, mixer=grid_mixer),
            "grid_norm2": part("norm", here),
            "grid_mlp": part("ffn", here),
            "drop_path": part("drop_path", here),
        }
        lines: tuple[Line, ...] = (
            tuple(conv),
            ("block_norm1", "block_attn", "drop_path", "add"),
            ("block_norm2", "block_mlp", "drop_path", "add"),
            ("grid_norm1", "grid_attn", "drop_path", "add"),
            ("grid_norm2", "grid_mlp", "drop_path", "add"),
        )
        return Form("MaxxVitBlock", parts, lines, here)
