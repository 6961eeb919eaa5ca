"""The plan's vocabulary: shapes, sites, nodes, steps and the plan itself, with no rule of their own.

Everything that plans (the resolver in :mod:`archspec.plan`, each component's plan rule) and everything
that reads a plan (drawings, diffs, summaries, the builder) speaks in these types. This module imports
nothing from archspec but its errors, so any of them can import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from archspec.errors import KeyPath

if TYPE_CHECKING:
    from archspec.spec import ModelSpec
    from archspec.specbase import ActSpec, ComponentSpec, FfnSpec, MixerSpec, NormSpec


@dataclass(frozen=True)
class Shape:
    """A per-sample tensor shape (no batch axis).

    ``tokens=True`` means the (N, C) token layout with N = prefix + H·W: ``prefix`` tokens (a class
    token) in front of one token per grid cell. Otherwise (C, H, W). A shape with no grid is a plain
    vector of ``channels`` values (logits). A layer's tensor in none of these layouts (a channels-last
    spectrum) gives its dims outright: see :meth:`of`.
    """

    channels: int
    grid: tuple[int, int] | None = None
    tokens: bool = False
    explicit_dims: tuple[int, ...] | None = None
    prefix: int = 0

    @classmethod
    def of(cls, *dims: int) -> Shape:
        """A shape given by its dims alone, channels last."""
        return cls(dims[-1], explicit_dims=dims)

    @property
    def dims(self) -> tuple[int, ...]:
        if self.explicit_dims is not None:
            return self.explicit_dims
        if self.grid is None:
            return (self.channels,)
        height, width = self.grid
        return (self.prefix + height * width, self.channels) if self.tokens else (self.channels, height, width)

    def as_grid(self) -> Shape:
        return Shape(self.channels, self.grid, tokens=False)

    def as_tokens(self) -> Shape:
        return Shape(self.channels, self.grid, tokens=True, prefix=self.prefix)

    def with_channels(self, channels: int) -> Shape:
        # Called for every layer a plan holds: the constructor is several times cheaper than replace().
        return Shape(channels, self.grid, self.tokens, self.explicit_dims, self.prefix)

    def __str__(self) -> str:
        return "×".join(str(d) for d in self.dims)


@dataclass(frozen=True)
class Site:
    """Where a node lives: its key path in the spec and its attribute path in the module tree."""

    spec_path: KeyPath
    module_path: str

    def sub(self, name: str) -> str:
        """The module path of attribute ``name`` of this site's module."""
        return f"{self.module_path}.{name}"


@dataclass(frozen=True)
class Step:
    """One step of a block's forward pass: run a child, add two values, or join several along channels.

    ``after`` names the steps whose outputs it reads (:data:`LAYER_INPUT` for the block's input);
    None means the step just before. A plain step runs the child ``part`` (by default the child
    called ``name``: a child without parameters, such as an activation, may run at several steps).
    An addition (``add``) adds ``residual``'s output to its input, which passes through the block's
    stochastic depth first when ``drop_path`` is set. A join (``concat``) concatenates the outputs of
    every step in ``after`` along channels. ``class_token`` takes the class token(s) in front of its
    input's tokens; ``rejoin`` puts its input back in front of the block input's grid tokens.
    """

    name: str
    after: tuple[str, ...] | None = None
    add: bool = False
    residual: str | None = None
    part: str | None = None
    drop_path: bool = False
    concat: bool = False
    class_token: bool = False
    rejoin: bool = False

    @property
    def child(self) -> str | None:
        """The child this step runs, or None for a step of the block's own (an addition, a join, a slice)."""
        return None if self.add or self.concat or self.class_token or self.rejoin else (self.part or self.name)


@dataclass(frozen=True)
class HeadSteps:
    """What a head's forward does that its planned layers leave unsaid, named by the layers' local names.

    ``norm_after`` is the layer whose output the head passes through the last stage's norm (None: the
    norm reads the head's input, at the end of the stage). ``start`` is a step before the first layer
    that has no layer of its own: its name, title, output dims and a detail. ``combine`` names the
    classifiers whose logits the model's output combines, and how.
    """

    norm_after: str | None = None
    start: tuple[str, str, tuple[int, ...], str] | None = None
    combine: tuple[tuple[str, ...], str] | None = None


@dataclass(frozen=True)
class Node:
    """One planned piece of the model.

    ``args`` holds the resolved numbers the component's ``build`` reads, and only ``build`` reads them:
    what drawings, diffs and exports show is declared by the component's ``spec``. ``module_paths``
    lists the attributes of the built model whose parameters make up ``params`` (one for most nodes;
    the head owns several top-level attributes). ``flops`` are per sample. ``detail`` is a short
    description (``Linear 64→256``), ``title`` what a drawing calls it (a layer's name by default),
    ``after`` the siblings whose outputs a layer reads (see :func:`layer`), and ``drop_path`` a block's
    stochastic-depth rate, which is the model's schedule: the planner sets it.

    ``children`` are the parts the node is made of: a block's norms, mixer and FFN, or a component's
    layers (see :func:`layer`). Each has a ``name`` unique among its siblings. A node's children,
    when present, partition its params and flops exactly: every parameter and FLOP of the node
    belongs to exactly one child, so the children's numbers sum to the node's.

    ``flow`` is a block's forward pass as :class:`Step` s over its children, with the residual
    additions; drawings and diffs read it instead of knowing any block's form. ``spec`` is the
    component spec that planned the node (None for a layer): what a diff compares, field by field.
    """

    kind: str
    component: str
    spec_path: KeyPath
    module_paths: tuple[str, ...]
    in_shape: Shape
    out_shape: Shape
    params: int
    flops: int
    args: Any = None
    children: tuple[Node, ...] = ()
    name: str = ""
    flow: tuple[Step, ...] = ()
    spec: ComponentSpec | None = field(default=None, repr=False)
    detail: str = ""
    title: str = ""
    after: tuple[str, ...] | None = None
    drop_path: float = 0.0

    def child(self, name: str) -> Node:
        """The child called ``name`` (a block's ``norm1``, ``m``, ...)."""
        for child in self.children:
            if child.name == name:
                return child
        raise KeyError(f"{self.kind} {self.component!r} has no part {name!r}")

    def part_of(self, kind: str) -> Node | None:
        """The first child of ``kind``: a block's mixer (``"mixer"``) or FFN (``"ffn"``), if it has one."""
        return next((child for child in self.children if child.kind == kind), None)

    @property
    def module_path(self) -> str:
        """The first module path; empty for a layer with no module of its own (an FFT, attention's product)."""
        return self.module_paths[0] if self.module_paths else ""

    def walk(self) -> Iterator[Node]:
        """This node and all nodes below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class StagePlan:
    """One stage: the embedding into it (stem or downsample), its blocks and its end norm."""

    index: int
    dim: int
    grid: tuple[int, int]
    embed: Node
    blocks: tuple[Node, ...]
    norm: Node

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.embed, *self.blocks, self.norm)

    @property
    def params(self) -> int:
        return sum(node.params for node in self.nodes)

    @property
    def flops(self) -> int:
        return sum(node.flops for node in self.nodes)

    @property
    def out_shape(self) -> Shape:
        return self.norm.out_shape


@dataclass(frozen=True)
class Plan:
    """The whole model, planned."""

    name: str
    input: Shape
    num_classes: int
    stages: tuple[StagePlan, ...]
    head: Node
    spec: ModelSpec = field(repr=False, compare=False)

    @property
    def nodes(self) -> tuple[Node, ...]:
        """Top-level nodes in forward order: per stage its embed, blocks and norm, then the head."""
        return (*(node for stage in self.stages for node in stage.nodes), self.head)

    def walk(self) -> Iterator[Node]:
        for node in self.nodes:
            yield from node.walk()

    @property
    def params(self) -> int:
        return sum(node.params for node in self.nodes)

    @property
    def flops(self) -> int:
        return sum(node.flops for node in self.nodes)

    @property
    def out_shape(self) -> Shape:
        return self.head.out_shape


@dataclass(frozen=True)
class BlockInput:
    """What a block plans from: its input, its stage's width, its parts' specs and where it is.

    ``first`` marks the stage's first block, where a block that changes width or resolution does
    so. ``mixer`` (None where the stage names none) and ``ffn`` are the stage's choices for this
    block, ``mixer_path`` the key path the mixer was written at.

    A block's plan is a function of these values alone (and of the block's own spec), so equal
    inputs give equal plans: :class:`PlanCache` relies on it. The block's stochastic-depth rate is
    the model's schedule, not the block's: the planner sets the node's ``drop_path``.
    """

    tokens: Shape
    dim: int
    first: bool
    ffn: FfnSpec
    mixer: MixerSpec | None
    mixer_path: KeyPath
    site: Site


@dataclass(frozen=True)
class PartInput:
    """What a part of a block's flow plans from: the tensor it reads, where it is, and its block's choices.

    ``site`` has the part's module path and the key path it was written at. ``block`` is what the
    block plans from (the stage's mixer and FFN among it). ``norm`` and ``act`` are the block's own
    choices, written at ``norm_path`` and ``act_path``, for parts that take the block's.
    """

    shape: Shape
    site: Site
    block: BlockInput
    norm: NormSpec
    norm_path: KeyPath
    act: ActSpec
    act_path: KeyPath


class PlanProblem(Exception):
    """Raised by a component's ``plan`` for a contradiction; ``key`` is relative to the component."""

    def __init__(self, key: str | tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key: KeyPath = (key,) if isinstance(key, str) else key
        self.message = message


def within(path: KeyPath, plan: Callable[..., Node], *args: Any) -> Node:
    """Call the plan rule of a part written at ``path``; its problems are re-keyed from there.

    A block calls its parts' rules this way, so that a mixer's problem points at the mixer's keys.
    """
    try:
        return plan(*args)
    except PlanProblem as problem:
        raise PlanProblem((*path, *problem.key), problem.message) from None


LAYER_INPUT = "<in>"
"""In a layer's ``after``: the input of the component the layer belongs to."""


def layer(
    site: Site,
    component: str,
    name: str,
    in_shape: Shape,
    out_shape: Shape,
    params: int = 0,
    flops: int = 0,
    modules: tuple[str, ...] = (),
    detail: str = "",
    title: str | None = None,
    after: tuple[str, ...] | None = None,
) -> Node:
    """A leaf layer of the component planned at ``site``: a node of kind ``"layer"``.

    ``component`` is the layer's type (``conv``, ``linear``, ``norm``, ``fft``, ``sdpa``, ...) and
    ``name`` its name within the component (``q``, ``layers[0]``); ``title`` is what a drawing calls
    it (the name by default) and ``detail`` a short description (``Linear 64→256``). ``modules`` are
    the full attribute paths of the built model that hold its parameters; they are empty for a
    functional op such as rfft2 or sdpa, whose FLOPs happen in the component's own forward.
    ``after`` names the layers whose outputs it reads (:data:`LAYER_INPUT` for the component's
    input); None means the layer just before it.
    """
    return Node(
        "layer",
        component,
        site.spec_path,
        modules,
        in_shape,
        out_shape,
        params,
        flops,
        name=name,
        detail=detail,
        title=title or name,
        after=after,
    )
