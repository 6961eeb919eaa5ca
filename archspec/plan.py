"""The resolver: every node's shapes, parameters, FLOPs and names, worked out without torch.

:func:`resolve` walks a :class:`~archspec.spec.ModelSpec` once, carrying channels and the token grid
from node to node. It derives what a user should not have to write (filter sizes, in-channels,
drop-path rates, module names) and collects every contradiction it meets as a located problem. What
it produces is made of :mod:`archspec.nodes`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from archspec import registry
from archspec.errors import KeyPath, Problem, SpecError
from archspec.nodes import BlockInput, Node, Plan, PlanProblem, Shape, Site, StagePlan

if TYPE_CHECKING:
    from archspec.spec import ModelSpec, StageSpec
    from archspec.specbase import BlockSpec, FfnSpec, MixerSpec


class PlanCache:
    """Block plans kept for the next plan that meets the same block at the same place.

    The variants of a sweep share most of their blocks: the blocks before the first overridden
    stage, and in every stage the blocks an override leaves alike. Passing one cache to each
    :func:`resolve` plans each distinct block once. Plans are immutable, so the nodes are shared.
    At most ``size`` blocks are kept, the least recently used dropped first.
    """

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._blocks: OrderedDict[tuple[BlockSpec, BlockInput], Node] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def block(
        self, block: BlockSpec, given: BlockInput, plan: Callable[[BlockSpec, BlockInput], Node | None]
    ) -> Node | None:
        """The plan of ``block`` fed ``given``: the kept one, or ``plan(block, given)``'s (kept unless None)."""
        key = (block, given)
        try:
            found = self._blocks.get(key)
        except TypeError:  # a spec holding an unhashable value (a plugin's dict field): plan it each time
            self.misses += 1
            return plan(block, given)
        if found is not None:
            self._blocks.move_to_end(key)
            self.hits += 1
            return found
        self.misses += 1
        node = plan(block, given)
        if node is not None:
            self._blocks[key] = node
            if len(self._blocks) > self.size:
                self._blocks.popitem(last=False)
        return node

    def __len__(self) -> int:
        return len(self._blocks)


def drop_path_rates(total: int, rate: float) -> list[float]:
    """A linear ramp from 0 to ``rate`` over every block of the model (stochastic depth)."""
    if total <= 1:
        return [0.0] * total
    return [rate * i / (total - 1) for i in range(total)]


def expand_mixers(mixers: tuple[MixerSpec, ...], depth: int, path: KeyPath) -> list[tuple[MixerSpec, KeyPath]]:
    """Give every block of a stage its mixer spec and the key path it was written at.

    A single mixer covers the whole stage. In a list, each entry covers ``blocks`` consecutive blocks;
    one entry may leave ``blocks`` out to take the rest.
    """
    if len(mixers) == 1 and mixers[0].blocks is None:
        return [(mixers[0], (*path, "mixer"))] * depth
    open_entries = [i for i, m in enumerate(mixers) if m.blocks is None]
    fixed = sum(m.blocks or 0 for m in mixers)
    if len(open_entries) > 1:
        raise PlanProblem(("mixer", open_entries[1], "blocks"), "only one pattern entry may leave out 'blocks'")
    rest = depth - fixed
    if rest < 0 or (not open_entries and rest != 0):
        counts = " + ".join(str(m.blocks) if m.blocks is not None else "rest" for m in mixers)
        raise PlanProblem("mixer", f"the pattern covers {counts} = {fixed} blocks but the stage has depth {depth}")
    result: list[tuple[MixerSpec, KeyPath]] = []
    for index, mixer in enumerate(mixers):
        count = mixer.blocks if mixer.blocks is not None else rest
        result.extend([(mixer, (*path, "mixer", index))] * count)
    return result


BlockChoice = tuple["BlockSpec", KeyPath, "MixerSpec | None", KeyPath, "FfnSpec"]
"""What one block of a stage is made of: its block spec and where it was written, its mixer (None for
a block without one) and where that was written, and its FFN."""


def stage_blocks(stage: StageSpec, path: KeyPath) -> list[BlockChoice]:
    """Every block of a stage: the stage's block, mixer and FFN, or those of the ``each`` entry it takes."""
    mixers: list[tuple[MixerSpec, KeyPath]] | None = None
    if stage.mixer is not None:
        mixers = expand_mixers(stage.mixer, stage.depth, path)
    chosen: list[BlockChoice] = []
    for j in range(stage.depth):
        edit = stage.edit(j)
        at = (*path, "each", j % len(stage.each)) if stage.each is not None else path
        block, block_path = (
            (stage.block, (*path, "block")) if edit is None or edit.block is None else (edit.block, (*at, "block"))
        )
        mixer: MixerSpec | None = None
        mixer_path = block_path
        if edit is not None and edit.mixer is not None:
            mixer, mixer_path = edit.mixer, (*at, "mixer")
        elif mixers is not None:
            mixer, mixer_path = mixers[j]
        if mixer is not None and not block.uses_mixer:
            where = mixer_path[: mixer_path.index("mixer") + 1]
            raise PlanProblem(where[len(path) :], f"{block.type!r} blocks have no token mixer; remove 'mixer'")
        if mixer is None and block.uses_mixer:
            raise PlanProblem(("mixer",), f"{block.type!r} blocks need a 'mixer'")
        ffn = stage.ffn if edit is None or edit.ffn is None else edit.ffn
        if not block.uses_ffn and ("ffn" in stage.model_fields_set or (edit is not None and edit.ffn is not None)):
            where = ("ffn",) if edit is None or edit.ffn is None else (*at[len(path) :], "ffn")
            raise PlanProblem(where, f"{block.type!r} blocks have no feed-forward network; remove 'ffn'")
        chosen.append((block, block_path, mixer, mixer_path, ffn))
    return chosen


class _Planner:
    def __init__(self, spec: ModelSpec, cache: PlanCache | None) -> None:
        self.spec = spec
        self.cache = cache
        self.problems: list[Problem] = []

    def attempt(self, spec_path: KeyPath, make: Any, *args: Any) -> Any:
        """Call a plan rule; record a PlanProblem against the spec and return None instead of raising."""
        try:
            return make(*args)
        except PlanProblem as problem:
            found = Problem((*spec_path, *problem.key), problem.message, "AS301")
            if found not in self.problems:  # every block of a stage meets the same contradiction
                self.problems.append(found)
            return None

    def run(self) -> Plan:
        spec = self.spec
        image = Shape(spec.input.channels, spec.input.hw)
        rates = drop_path_rates(sum(stage.depth for stage in spec.stages), spec.drop_path_rate)
        stages: list[StagePlan] = []
        shape = image
        block_index = 0
        for index, stage in enumerate(spec.stages):
            path: KeyPath = ("stages", index)
            site = Site(("stem",) if index == 0 else (*path, "downsample"), f"patch_embed{index + 1}")
            if index == 0:
                if stage.downsample is not None:
                    message = "the first stage is fed by the stem; remove 'downsample'"
                    self.problems.append(Problem((*path, "downsample"), message, "AS301"))
                embed = self.attempt(("stem",), spec.stem.plan, shape, stage.dim, site)
            else:
                downsample = stage.downsample or registry.default("downsample", "conv")
                embed = self.attempt(site.spec_path, downsample.plan, shape.as_grid(), stage.dim, site)
            if embed is None:
                break  # without this stage's grid nothing after it can be planned
            tokens: Shape = embed.out_shape
            blocks = self.blocks(stage, path, tokens, rates[block_index : block_index + stage.depth])
            block_index += stage.depth
            # After a block that could not be planned, carry on as if the stage had its width, to find
            # the problems further on too; the plan is refused all the same.
            tokens = blocks[-1].out_shape if blocks else tokens.with_channels(stage.dim)
            norm = self.attempt((*path, "norm"), stage.norm.plan, tokens, Site((*path, "norm"), f"norm{index + 1}"))
            if norm is None:
                break
            stages.append(StagePlan(index, stage.dim, tokens.grid or (1, 1), embed, tuple(blocks), norm))
            shape = tokens
        if spec.features is not None:
            for position, index in enumerate(spec.features.out_indices):
                if not 0 <= index < len(spec.stages):
                    message = f"stage index {index} does not exist (the model has stages 0–{len(spec.stages) - 1})"
                    self.problems.append(Problem(("features", "out_indices", position), message, "AS301"))
        head = None
        if len(stages) == len(spec.stages):
            head_site = Site(("head",), "head")
            head = self.attempt(("head",), spec.head.plan, shape, spec.num_classes, head_site)
        if self.problems or head is None:
            raise SpecError(self.problems)
        return Plan(spec.name, image, spec.num_classes, tuple(stages), head, spec)

    def blocks(self, stage: StageSpec, path: KeyPath, tokens: Shape, rates: list[float]) -> list[Node]:
        """Plan a stage's blocks in order, each fed by the one before; problems are recorded, not raised."""
        chosen = self.attempt(path, stage_blocks, stage, path)
        if chosen is None:
            return []
        blocks: list[Node] = []
        for j, ((block, block_path, mixer, mixer_path, ffn), rate) in enumerate(zip(chosen, rates, strict=True)):
            site = Site(block_path, f"block{path[1] + 1}.{j}")  # type: ignore[operator]
            given = BlockInput(tokens, stage.dim, j == 0, ffn, mixer, mixer_path, site)
            node = self.block(block, given) if self.cache is None else self.cache.block(block, given, self.block)
            if node is not None:
                # A block is known by the key that chose it: its own where an ``each`` entry edits the block,
                # else the one that chose its mixer.
                known = mixer_path if mixer is not None and "each" not in block_path[len(path) :] else block_path
                blocks.append(replace(node, drop_path=rate, spec_path=known))
                tokens = node.out_shape
            # else: later blocks are still checked, as if this one had kept the shape
        return blocks

    def block(self, block: BlockSpec, given: BlockInput) -> Node | None:
        node: Node | None = self.attempt((), block.plan, given)
        return node


def resolve(spec: ModelSpec, cache: PlanCache | None = None) -> Plan:
    """Plan a validated spec. Raises :class:`SpecError` listing every contradiction found.

    ``cache`` keeps block plans for later calls (see :class:`PlanCache`): a sweep passes one to
    every variant's.
    """
    return _Planner(spec, cache).run()
