"""Base classes for spec models and for the kinds of component, and the slot type that holds one.

Each component subclasses one of the kind bases below and implements two methods:

- ``plan(...)`` turns the user's spec plus the incoming shape into a :class:`~archspec.plan.Node`:
  output shape, its parts (each with its parameters and FLOPs, which add up to the component's)
  and the resolved numbers its module needs. Pure Python.
- ``build(node)`` turns that node into an ``nn.Module`` and initialises it. It is the only place
  torch is imported, lazily, so planning stays torch-free.

A spec field that holds a component is typed :class:`archspec.registry.Slot` ``[Base]``: it accepts
whatever is registered under that kind *when the spec is validated*.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from torch import nn

    from archspec.nn.backbone import Body
    from archspec.nodes import BlockInput, HeadSteps, Node, PartInput, Shape, Site, Step


class StrictModel(BaseModel):
    """Unknown keys are errors, numbers are finite, values are never coerced across types (``true``
    is not 1, ``"8"`` is not 8), and a loaded spec never changes.

    YAML and JSON have lists where the models hold tuples, so lists are taken as tuples.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _lists_as_tuples(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                key: _tuples(value) if isinstance(value, list) else cls._filled(key, value)
                for key, value in data.items()
            }
        return data

    @classmethod
    def _filled(cls, key: str, value: Any) -> Any:
        """A mapping without ``type`` in a slot that has a default component: that default, changed by the
        mapping. So ``--set stages.0.block.layer_scale=1e-5`` (or a child spec's ``block: {norm: rmsnorm}``)
        changes the default block instead of needing its type written out."""
        field = cls.model_fields.get(key)
        if not isinstance(value, dict) or "type" in value or field is None or field.default_factory is None:
            return value
        default = field.get_default(call_default_factory=True)
        if isinstance(default, ComponentSpec):
            # Only fields of the default's own type: a mapping of another type's fields still lacks its type.
            return {**_written(default), **value} if set(value) <= set(type(default).model_fields) else value
        if (
            isinstance(default, dict)
            and value
            and all(isinstance(v, dict) and "type" not in v and k in default for k, v in value.items())
        ):  # edits of named default components (a flow's parts): the rest stay as they were
            return {
                **{k: _written(v) for k, v in default.items()},
                **{k: {**_written(default[k]), **v} for k, v in value.items()},
            }
        return value


def _written(spec: ComponentSpec) -> dict[str, Any]:
    """A component as a spec writes it: its type and the fields it was given."""
    return {**spec.model_dump(mode="json", exclude_unset=True), "type": spec.type}


def _tuples(items: list[Any]) -> tuple[Any, ...]:
    """A list as a tuple, and the lists directly inside it too (a flow's lines)."""
    return tuple(_tuples(item) if isinstance(item, list) else item for item in items)


@dataclass(frozen=True)
class NoArgs:
    """The build record of a component whose ``build`` needs nothing from its plan (an activation)."""


class ComponentSpec(StrictModel):
    """A registered component: its ``type:`` tag, plan rule and build function.

    ``colour`` is the fill a drawing gives this component's nodes (and blocks built around it); None
    leaves the colour to what it belongs to.
    """

    kind: ClassVar[str]
    build_args: ClassVar[builtins.type] = NoArgs
    """The frozen record of what ``build`` reads: ``plan`` fills it (through :meth:`node`), ``build`` reads
    its attributes, and nothing else does (drawings and diffs read the spec)."""
    colour: ClassVar[str | None] = None
    takes_hw: ClassVar[bool] = False
    """Whether the built module is called as ``module(x, hw)`` with the grid size, rather than ``module(x)``."""
    example: ClassVar[dict[str, Any]] = {}
    """``--set`` style changes (``{"stem.cls_token": True}``) that the registry-generated tests make to
    their tiny spec so that it can hold this component; most components need none."""
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
        flow: Sequence[Step] = (),
        detail: str = "",
        **args: Any,
    ) -> Node:
        """Make this component's plan node; ``args`` fill its :attr:`build_args` record, the resolved
        numbers ``build`` reads.

        ``children`` are its parts (layers made with :func:`archspec.plan.layer`, or the nodes of the
        components it holds). They partition the node, so its ``params`` and ``flops`` are their sums;
        numbers given as well must agree with them.
        """
        from archspec.nodes import Node

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
            args=self._record(args),
            children=tuple(children),
            name=site.module_path.rsplit(".", 1)[-1],
            flow=tuple(flow),
            spec=self,
            detail=detail,
        )

    @staticmethod
    def build(node: Node) -> nn.Module:
        raise NotImplementedError

    uses_fft: ClassVar[bool] = False
    """Whether the module runs a 2-D FFT over the token grid (exporters treat those apart)."""

    def size_policy(self) -> str | None:
        """For a component holding weights made for the built grid (a filter, position embeddings): what
        it does at another input size, ``interpolate`` or ``strict`` (refuse); None for any other."""
        return None

    def _record(self, args: dict[str, Any]) -> Any:
        record = type(self).build_args
        names = {field.name for field in dataclasses.fields(record)}
        if set(args) != names:
            raise TypeError(
                f"{self.kind} {self.type!r} plans the build arguments {sorted(args)}, but its build_args "
                f"record {record.__name__} declares {sorted(names)}"
            )
        return record(**args)

    def shown(self) -> str:
        """What drawings say of this component beside its numbers, in its spec's terms: ``heads 10,
        sr_ratio 2``. Sizes are always shown, other fields where they differ from their defaults.
        Components it holds are drawn as its parts, and a mixer pattern's ``blocks`` as the drawing's
        groups; a component may say more (a size it derives) by overriding this."""
        shown = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if name in ("type", "blocks") or isinstance(value, ComponentSpec | dict) or value is None:
                continue
            # A size (a kernel, a stride, a count) is shown even at its default; a flag, a choice, a
            # rate, a zero or a one only where it was changed.
            size = isinstance(value, int) and not isinstance(value, bool) and value not in (0, 1)
            if value == info.get_default(call_default_factory=True) and not size:
                continue
            if isinstance(value, tuple):
                shown.append(f"{len(value)} {name}")
            elif isinstance(value, BaseModel):
                shown.append(name)
            else:
                shown.append(
                    name if value is True else f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}"
                )
        return ", ".join(shown)


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
    takes_hw: ClassVar[bool] = True
    blocks: int | None = Field(None, ge=1, le=1_000)

    def plan(self, tokens: Shape, site: Site) -> Node:
        raise NotImplementedError


class FfnSpec(ComponentSpec):
    """Mixes channels within each token; keeps the (N, C) shape."""

    kind: ClassVar[str] = "ffn"
    takes_hw: ClassVar[bool] = True

    def plan(self, tokens: Shape, site: Site) -> Node:
        raise NotImplementedError


class NormSpec(ComponentSpec):
    """Normalises a tensor without changing its shape.

    Its module takes the layout its node's input has: tokens (B, N, C) or a grid (B, C, H, W).
    """

    kind: ClassVar[str] = "norm"
    eps: float = Field(1e-6, gt=0, lt=1)

    def plan(self, shape: Shape, site: Site) -> Node:
        raise NotImplementedError


class ActSpec(ComponentSpec):
    """An elementwise activation."""

    kind: ClassVar[str] = "act"

    def plan(self, shape: Shape, site: Site) -> Node:
        raise NotImplementedError


class BlockSpec(ComponentSpec):
    """One residual block: plans its named parts and the order they run in, and builds its module.

    A block module is called as ``block(x, hw)`` on tokens (B, N, C) over an H×W grid and returns
    ``(x, hw)``, so a block may change the width and the grid (a strided ResNet block does).
    """

    kind: ClassVar[str] = "block"
    uses_mixer: ClassVar[bool] = True
    """Whether the block reads the stage's ``mixer``; a stage that names one for a block without a
    mixer is an error, as is a block that needs one and finds none."""
    uses_ffn: ClassVar[bool] = True

    def plan(self, given: BlockInput) -> Node:
        raise NotImplementedError


class PartSpec(ComponentSpec):
    """A named part of a block's flow: the stage's mixer or FFN, a norm, an activation, a layer scale,
    squeeze-excitation, a linear projection... (see :mod:`archspec.flow`).

    Its plan returns the node of what it holds: the mixer's own node for ``mixer``, a layer for ``scale``.
    """

    kind: ClassVar[str] = "part"
    reads: ClassVar[str] = "any"
    """The layout the part reads: ``tokens`` (B, N, C), ``grid`` (B, C, H, W), or ``any`` (whichever it is
    given: norms and activations); the flow hands it its input in that layout."""

    def plan(self, given: PartInput) -> Node:
        raise NotImplementedError


class HeadSpec(ComponentSpec):
    """Reads the last stage's tokens and produces class logits.

    Its ``build_model`` receives the built body and returns the whole model, because the head decides
    how the final tokens are read (pooled, through class attention, or from a class token) and where
    the last stage's norm is applied.
    """

    kind: ClassVar[str] = "head"

    def plan(self, tokens: Shape, num_classes: int, site: Site) -> Node:
        raise NotImplementedError

    @staticmethod
    def build_model(node: Node, body: Body) -> nn.Module:
        """Attach this head to the built body and return the whole model."""
        raise NotImplementedError

    @staticmethod
    def steps(node: Node) -> HeadSteps:
        """How the model's forward runs this head's planned layers, for drawings: where it applies the
        last stage's norm, a step of its own before them, and logits it combines. By default none of
        these: the norm ends the stage and the layers run in order."""
        from archspec.nodes import HeadSteps

        return HeadSteps()
