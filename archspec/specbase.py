"""Base classes for spec models and for the five kinds of component.

Each component subclasses one of the kind bases below and implements two methods:

- ``plan(...)`` turns the user's spec plus the incoming shape into a :class:`~archspec.plan.Node`:
  output shape, its layers (each with its parameters and FLOPs, which add up to the component's)
  and the resolved numbers its module needs. Pure Python.
- ``build(node)`` turns that node into an ``nn.Module``. It is the only place torch is imported,
  lazily, so planning stays torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body
    from archspec.plan import Node, Shape, Site


class StrictModel(BaseModel):
    """Unknown keys are errors and a loaded spec never changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(StrictModel):
    """A registered component: its ``type:`` tag, plan rule and build function."""

    kind: ClassVar[str]
    type: str

    @classmethod
    def type_name(cls) -> str:
        default = cls.model_fields["type"].default
        if not isinstance(default, str):
            raise TypeError(f"{cls.__qualname__}.type needs a Literal default naming the component")
        return default

    def node(
        self,
        site: Site,
        in_shape: Shape,
        out_shape: Shape,
        params: int | None = None,
        flops: int | None = None,
        *,
        children: Sequence[Node] = (),
        **args: Any,
    ) -> Node:
        """Make this component's plan node; ``args`` are the resolved numbers ``build`` reads.

        ``children`` are its layers (made with :func:`archspec.plan.layer`). They partition the node,
        so its ``params`` and ``flops`` are their sums; numbers given as well must agree with them.
        """
        from archspec.plan import Node

        if children:
            for name, given, total in (
                ("params", params, sum(child.params for child in children)),
                ("FLOPs", flops, sum(child.flops for child in children)),
            ):
                if given is not None and given != total:
                    raise ValueError(f"{self.kind} {self.type!r} plans {given:,} {name} but its layers hold {total:,}")
            params = sum(child.params for child in children)
            flops = sum(child.flops for child in children)
        if params is None or flops is None:
            raise TypeError(f"{self.kind} {self.type!r}: a node without children needs its params and flops")
        return Node(
            kind=self.kind,
            component=self.type,
            spec_path=site.spec_path,
            module_paths=(site.module_path,),
            in_shape=in_shape,
            out_shape=out_shape,
            params=params,
            flops=flops,
            args=args,
            children=tuple(children),
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        raise NotImplementedError


class StemSpec(ComponentSpec):
    """Turns the input image (C, H, W) into the first stage's tokens."""

    kind: ClassVar[str] = "stem"

    def plan(self, image: Shape, dim: int, site: Site) -> Node:
        raise NotImplementedError


class DownsampleSpec(ComponentSpec):
    """Turns a stage's output grid (C, H, W) into the next stage's tokens."""

    kind: ClassVar[str] = "downsample"

    def plan(self, grid: Shape, dim: int, site: Site) -> Node:
        raise NotImplementedError


class MixerSpec(ComponentSpec):
    """Mixes information across tokens; keeps the (N, C) shape.

    ``blocks`` is only used inside a per-block pattern: how many consecutive blocks use this mixer.
    """

    kind: ClassVar[str] = "mixer"
    blocks: int | None = Field(None, ge=1, le=1_000)

    def plan(self, tokens: Shape, site: Site) -> Node:
        raise NotImplementedError


class FfnSpec(ComponentSpec):
    """Mixes channels within each token; keeps the (N, C) shape."""

    kind: ClassVar[str] = "ffn"

    def plan(self, tokens: Shape, site: Site) -> Node:
        raise NotImplementedError


class HeadSpec(ComponentSpec):
    """Reads the last stage's tokens and produces class logits.

    Its ``build`` receives the built body and returns the whole model, because the head decides how
    the final tokens are read (pooled, or through class attention).
    """

    kind: ClassVar[str] = "head"

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        raise NotImplementedError

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        """Attach this head to the built body and return the whole model."""
        raise NotImplementedError
