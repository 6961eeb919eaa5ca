"""Blocks as declared flows: named parts, and lines of steps over them, planned and run from one description.

A block's form is written as data::

    parts: {m: mixer, norm1: norm, norm2: norm, mlp: ffn}
    flow:
      - [norm1, m, drop_path, add]     # a branch from the running x, added back to it: pre-norm
      - [norm2, mlp, drop_path, add]

Each line starts a branch from the running value ``x`` and applies its steps in order:

- a part's name runs that part on the branch;
- ``drop_path`` (just before an addition) passes the branch through the block's stochastic depth;
- ``add`` adds the branch to ``x``, and the sum becomes both ``x`` and the branch;
  ``{add: part}`` adds it to ``part(x)`` instead (a projection shortcut, a residual scale);
- ``{sum: [[...], [...]]}`` runs each sub-line from the branch and adds their results;
  ``{concat: [[...], [...]]}`` joins them along channels (follow it with a projection);
- steps after an ``add`` run on the new ``x`` (post-norm: ``[m, drop_path, add, norm1]``).

A line without ``add`` simply continues ``x``. :func:`plan_form` turns a :class:`Form` into the
block's children and its :class:`~archspec.plan.Step` s, which drawings read; :func:`build_form`
turns those same steps into the program :class:`archspec.nn.flow_block.FlowBlock` runs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Field, SerializerFunctionWrapHandler, Tag, model_serializer, model_validator

from archspec import registry
from archspec.errors import KeyPath, did_you_mean
from archspec.nodes import LAYER_INPUT, BlockInput, Node, PartInput, PlanProblem, Shape, Site, Step
from archspec.specbase import ActSpec, BlockSpec, NormSpec, PartSpec, StrictModel

if TYPE_CHECKING:
    from torch import nn

DROP_PATH = "drop_path"
CLASS_TOKEN = "class_token"
"""A step word: the class token(s) in front of the branch's tokens (also ``{add: class_token}``)."""
REJOIN = "rejoin"
"""A step word: the branch (class tokens) put back in front of the block input's grid tokens."""
"""The one built-in part: the block's stochastic depth, at the rate the model's schedule gives the block."""


class Combine(StrictModel):
    """A step written as a mapping: ``{add: part}``, ``{sum: [lines]}`` or ``{concat: [lines]}``."""

    add: str | None = Field(None, description="add the branch to this part's output of x (a shortcut)")
    sum: tuple[Line, ...] | None = Field(None, min_length=2, description="parallel lines from the branch, added")
    concat: tuple[Line, ...] | None = Field(
        None, min_length=2, description="parallel lines from the branch, joined along channels"
    )

    @model_serializer(mode="wrap")
    def _only_the_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written back as the user wrote it: the one key given.
        return {key: value for key, value in handler(self).items() if value is not None}

    @model_validator(mode="after")
    def _one(self) -> Combine:
        given = [key for key in ("add", "sum", "concat") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError(f"a step written as a mapping has exactly one of add, sum, concat (got {len(given)})")
        return self


def _step_kind(value: object) -> str | None:
    if isinstance(value, str):
        return "name"
    return "mapping" if isinstance(value, dict | Combine) else None


Token = Annotated[
    Union[Annotated[str, Tag("name")], Annotated[Combine, Tag("mapping")]],  # noqa: UP007  (Combine refers back)
    Discriminator(
        _step_kind,
        custom_error_type="flow_step",
        custom_error_message=(
            "a flow step is a part's name, 'add', 'drop_path', or a mapping with one of add, sum, concat"
        ),
    ),
]
Line = tuple[Token, ...]
Combine.model_rebuild()


@dataclass(frozen=True)
class Form:
    """A block's form: its parts in the order the module registers them, and the lines of its flow.

    ``parts`` maps each name to its spec and the key path it was written at (where its problems
    point). ``lines_path`` is where the lines were written. ``name`` is what the built block prints as.
    """

    name: str
    parts: dict[str, tuple[PartSpec, KeyPath]]
    lines: tuple[Line, ...]
    lines_path: KeyPath


@dataclass(frozen=True)
class FormArgs:
    """What :func:`build_form` reads from a planned form: what the block prints as, and its parts' names
    and types in the order the module registers them."""

    form: str
    parts: tuple[tuple[str, str], ...]


class FlowBlockSpec(BlockSpec):
    """A block whose form is a :class:`Form`: planned by :func:`plan_form`, built by :func:`build_form`.

    Subclasses say what their form is (:meth:`form`); they write no plan rule or forward of their own.
    ``build_args`` is :class:`FormArgs`.
    ``norm`` and ``act`` are the block's choices for parts that take the block's (``norm``, ``act``).
    """

    build_args = FormArgs

    def form(self, given: BlockInput) -> Form:
        raise NotImplementedError

    def plan(self, given: BlockInput) -> Node:
        return plan_form(self, self.form(given), given)

    @staticmethod
    def build(node: Node) -> nn.Module:
        return build_form(node)


def part(kind: str, written: KeyPath, **fields: Any) -> tuple[PartSpec, KeyPath]:
    """A form's part: the part component ``kind`` with ``fields``, written (for errors) at ``written``."""
    spec = registry.get("part", kind).model_validate({"type": kind, **fields})
    return spec, written  # type: ignore[return-value]


def plan_form(block: FlowBlockSpec, form: Form, given: BlockInput) -> Node:
    """Plan ``form`` fed ``given``: the block's node, with one child per part and the flow's steps."""
    return _FormPlanner(block, form, given).run()


class _FormPlanner:
    def __init__(self, block: FlowBlockSpec, form: Form, given: BlockInput) -> None:
        self.block, self.form, self.given = block, form, given
        path = given.site.spec_path
        norm, act = getattr(block, "norm", None), getattr(block, "act", None)
        self.norm: NormSpec = norm if norm is not None else registry.default("norm", "layernorm")
        self.act: ActSpec = act if act is not None else registry.default("act", "gelu")
        self.norm_path, self.act_path = (*path, "norm"), (*path, "act")
        self.shapes: dict[str, Shape] = {LAYER_INPUT: given.tokens}
        self.nodes: dict[str, Node] = {}
        self.uses: dict[str, int] = {}
        self.steps: list[Step] = []
        self.counts: dict[str, int] = {}
        self.adds = sum(_count_adds(line) for line in form.lines)

    def run(self) -> Node:
        x = LAYER_INPUT
        for index, line in enumerate(self.form.lines):
            x = self.line(line, x, (*self.form.lines_path, index), main=True)
        unused = [name for name in self.form.parts if name not in self.nodes and name != DROP_PATH]
        if unused:
            raise PlanProblem(self.form.lines_path, f"part {unused[0]!r} is declared but no line uses it")
        drops = any(step.drop_path for step in self.steps)
        if drops and DROP_PATH not in self.nodes:
            self.nodes[DROP_PATH] = self._drop_path_node()
        names = [name for name in self.form.parts if name in self.nodes]
        names += [name for name in self.nodes if name not in names]
        specs = {name: spec.type for name, (spec, _) in self.form.parts.items()}
        order = tuple((name, specs.get(name, DROP_PATH)) for name in names)
        children = [self.nodes[name] for name in self.nodes]
        given, out = self.given, self.shapes[x]
        return self.block.node(
            given.site,
            given.tokens,
            out.as_tokens() if out.grid is not None else out,
            children=children,
            flow=self.steps,
            form=self.form.name,
            parts=order,
        )

    def line(self, line: Line, x: str, path: KeyPath, main: bool) -> str:
        """Plan one line starting at ``x``; return the name of its last value."""
        branch, drop = x, False
        for index, token in enumerate(line):
            at = (*path, index)
            if drop and not _is_add(token):
                raise PlanProblem(at, "drop_path applies to a branch about to be added: put 'add' right after it")
            if token == DROP_PATH:
                if not main:
                    raise PlanProblem(at, "drop_path belongs to a line of the flow, before its 'add'")
                drop = True
            elif _is_add(token):
                if not main:
                    raise PlanProblem(at, "an 'add' inside sum or concat has no running x to add to")
                shortcut = token.add if isinstance(token, Combine) else None
                if shortcut == CLASS_TOKEN:
                    residual = self._class_token(x, (*at, "add"))
                else:
                    residual = x if shortcut is None else self.part(shortcut, x, (*at, "add"))
                name = "add" if self.adds == 1 else f"add{self._next('add')}"
                self._same_shape(at, branch, residual, "add")
                self._step(Step(name, add=True, residual=residual, drop_path=drop), branch)
                self.shapes[name] = self.shapes[branch]  # in the branch's layout, as the block adds them
                x = branch = name
                drop = False
            elif token == CLASS_TOKEN:
                branch = self._class_token(branch, at)
            elif token == REJOIN:
                if not main:
                    raise PlanProblem(at, "rejoin belongs to a line of the flow: it completes the block's tokens")
                name = f"rejoin{self._next('rejoin')}"
                given = self.shapes[LAYER_INPUT]
                if (given.prefix, given.channels) != (self._prefix(branch, at), self.shapes[branch].channels):
                    message = f"rejoin puts class tokens back in front of the input's, got {self.shapes[branch]}"
                    raise PlanProblem(at, message)
                self._step(Step(name, rejoin=True), branch)
                self.shapes[name] = given
                x = branch = name
            elif isinstance(token, Combine):
                lines = token.sum if token.sum is not None else token.concat
                assert lines is not None
                key = "sum" if token.sum is not None else "concat"
                ends = [self.line(sub, branch, (*at, key, k), main=False) for k, sub in enumerate(lines)]
                branch = self._join(key, ends, at)
            else:
                branch = self.part(token, branch, at)
        if drop:
            raise PlanProblem((*path, len(line) - 1), "drop_path applies to a branch about to be added: add 'add'")
        return branch

    def part(self, name: str, source: str, at: KeyPath) -> str:
        """Run part ``name`` on ``source``'s value; return the step's name."""
        if name not in self.form.parts:
            known = [*self.form.parts, DROP_PATH, CLASS_TOKEN, REJOIN, "add"]
            raise PlanProblem(
                at, f"no part named {name!r}{did_you_mean(name, known)} (parts: {', '.join(self.form.parts)})"
            )
        spec, written = self.form.parts[name]
        shape = _as(self.shapes[source], spec.reads)
        step = name
        if name in self.nodes:
            node = self.nodes[name]
            if node.params or _content(node.in_shape) != _content(shape):
                raise PlanProblem(
                    at,
                    f"part {name!r} is used twice: only a part without parameters can be (reading the same shape); "
                    "declare a second part",
                )
            self.uses[name] += 1
            step = f"{name}{self.uses[name]}"
        else:
            site = Site(written, self.given.site.sub(name))
            part = PartInput(shape, site, self.given, self.norm, self.norm_path, self.act, self.act_path)
            self.nodes[name] = spec.plan(part)  # a part's problems are keyed from the spec's root
            self.uses[name] = 1
        self._step(Step(step, part=None if step == name else name), source)
        self.shapes[step] = self.nodes[name].out_shape
        return step

    def _class_token(self, source: str, at: KeyPath) -> str:
        """The class token(s) in front of ``source``'s tokens, as a step of its own."""
        shape = self.shapes[source]
        prefix = self._prefix(source, at)
        name = f"class_token{self._next('class_token')}"
        self._step(Step(name, class_token=True), source)
        self.shapes[name] = Shape.of(prefix, shape.channels)
        return name

    def _prefix(self, source: str, at: KeyPath) -> int:
        shape = self.shapes[source]
        prefix = shape.prefix if shape.explicit_dims is None else shape.dims[0]
        if not prefix or (shape.explicit_dims is not None and len(shape.dims) != 2):
            raise PlanProblem(at, f"class_token needs tokens with a class token in front, got {shape}")
        return prefix

    def _join(self, key: str, ends: list[str], at: KeyPath) -> str:
        if key == "sum":
            total = ends[0]
            for end in ends[1:]:
                self._same_shape(at, end, total, "sum")
                name = f"sum{self._next('sum')}"
                self._step(Step(name, add=True, residual=total), end)
                self.shapes[name] = self.shapes[end]
                total = name
            return total
        shapes = [self.shapes[end] for end in ends]
        if len({(s.grid, s.prefix) for s in shapes}) > 1 or any(s.explicit_dims for s in shapes):
            raise PlanProblem((*at, key), f"concat joins tensors on one grid, got {', '.join(map(str, shapes))}")
        name = f"concat{self._next('concat')}"
        self.steps.append(Step(name, after=tuple(ends), concat=True))
        self.shapes[name] = shapes[0].with_channels(sum(s.channels for s in shapes))
        return name

    def _step(self, step: Step, source: str) -> None:
        """Append ``step`` reading ``source``: implicitly when that is the step just before."""
        previous = self.steps[-1].name if self.steps else LAYER_INPUT
        after = None if source == previous else (source,)
        self.steps.append(replace(step, after=after))

    def _same_shape(self, at: KeyPath, a: str, b: str, what: str) -> None:
        if _content(self.shapes[a]) != _content(self.shapes[b]):
            raise PlanProblem(at, f"{what} needs equal shapes, got {self.shapes[a]} and {self.shapes[b]}")

    def _next(self, kind: str) -> int:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return self.counts[kind]

    def _drop_path_node(self) -> Node:
        spec, written = self.form.parts.get(DROP_PATH, (registry.default("part", DROP_PATH), self.given.site.spec_path))
        site = Site(written, self.given.site.sub(DROP_PATH))
        part = PartInput(self.given.tokens, site, self.given, self.norm, self.norm_path, self.act, self.act_path)
        node: Node = spec.plan(part)
        return node


def _as(shape: Shape, layout: str) -> Shape:
    """``shape`` in the layout a part reads (the block converts the tensor to match)."""
    if shape.grid is None or shape.explicit_dims is not None or layout == "any":
        return shape
    return shape.as_tokens() if layout == "tokens" else shape.as_grid()


def _content(shape: Shape) -> tuple[object, ...]:
    """What a tensor holds, whichever of tokens and grid it is laid out as."""
    return shape.channels, shape.grid, shape.prefix, shape.explicit_dims


def _is_add(token: Token) -> bool:
    return token == "add" or (isinstance(token, Combine) and token.add is not None)


def _count_adds(line: Line) -> int:
    return sum(_is_add(token) for token in line)


def build_form(node: Node) -> nn.Module:
    """The block module of a planned form: its parts built, and its steps as the program it runs."""
    from archspec.nn.drop import DropPath
    from archspec.nn.flow_block import ADD, CALL, CLASS_TOKEN_OP, CONCAT, REJOIN_OP, FlowBlock, Op

    children = {child.name: child for child in node.children}
    parts: dict[str, nn.Module | None] = {}
    for name, _ in node.args.parts:
        child = children[name]
        if child.component == DROP_PATH and child.kind == "part":
            from torch import nn as tnn

            rate = node.drop_path
            parts[name] = DropPath(rate) if rate > 0 else tnn.Identity()
        else:
            parts[name] = registry.build_node(child)
    slots = {LAYER_INPUT: 0}
    grids = {LAYER_INPUT: _is_grid(node.in_shape)}
    program = []
    previous = LAYER_INPUT
    for step in node.flow:
        sources = step.after or (previous,)
        if step.add:
            assert step.residual is not None
            sources = (*sources, step.residual)
            grid = grids[sources[0]]
            op = Op(ADD, tuple(slots[s] for s in sources), drop=step.drop_path, grid=grid)
        elif step.concat:
            grid = grids[sources[0]]
            op = Op(CONCAT, tuple(slots[s] for s in sources), grid=grid)
        elif step.class_token:
            grid = False
            op = Op(CLASS_TOKEN_OP, (slots[sources[0]],), prefix=node.in_shape.prefix)
        elif step.rejoin:
            grid = False
            op = Op(REJOIN_OP, (slots[sources[0]], 0), prefix=node.in_shape.prefix)
        else:
            assert step.child is not None
            child = children[step.child]
            grid = _is_grid(child.in_shape)
            takes_hw = registry.get(child.kind, child.component).takes_hw
            op = Op(CALL, (slots[sources[0]],), step.child, takes_hw, grid=grid)
        grids[step.name] = grid
        slots[step.name] = len(slots)
        program.append(op)
        previous = step.name
    return FlowBlock(parts, tuple(program), node.args.form)


def _is_grid(shape: Shape) -> bool:
    """Whether a part reads (or writes) a (C, H, W) grid rather than tokens."""
    return shape.grid is not None and not shape.tokens and shape.explicit_dims is None
