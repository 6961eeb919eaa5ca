"""One block module for every block form: it runs a program of steps over its named parts.

A block's form (pre-norm, post-norm, GFNet's single branch, a ResNet bottleneck, parallel mixers) is
data: a sequence of :class:`Op` s that call a part, add two earlier values (optionally through the
block's stochastic depth), or concatenate several along channels. The planner writes that sequence
(the plan's ``flow``), drawings read it, and this module runs it, so what is drawn is what runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archspec.nn.layout import grid_to_tokens, nchw_cell, one_cell, tokens_to_grid

CALL, ADD, CONCAT, CLASS_TOKEN_OP, REJOIN_OP = 0, 1, 2, 3, 4


@dataclass(frozen=True)
class Op:
    """One step of a block's program, reading and writing numbered values (0 is the block's input).

    ``code`` is :data:`CALL` (run part ``part`` on value ``sources[0]``; ``with_hw`` parts also get
    the grid size, as mixers and FFNs do), :data:`ADD` (``sources[0] + sources[1]``, the first
    passed through ``drop_path`` when ``drop`` is set) or :data:`CONCAT` (``sources`` joined along
    channels), :data:`CLASS_TOKEN_OP` (the first ``prefix`` tokens of ``sources[0]``) or
    :data:`REJOIN_OP` (``sources[0]`` in front of the tokens of ``sources[1]`` after its first
    ``prefix``). ``grid`` says whether the step works on a (B, C, H, W) grid rather than (B, N, C)
    tokens; values are converted between the two where a step needs the other.
    """

    code: int
    sources: tuple[int, ...]
    part: str = ""
    with_hw: bool = False
    drop: bool = False
    grid: bool = False
    prefix: int = 0


class FlowBlock(nn.Module):
    """Runs ``program`` over ``parts`` on tokens (B, N, C) of an H×W grid: ``block(x, hw) -> (x, hw)``.

    Args:
        parts: the block's parts in the order they are registered (and printed); None leaves a name
            unregistered, for a part that is the identity in this block (a shortcut that needs no
            projection).
        program: the steps, in order; the last one's value is the block's output.
        name: what the block prints as (``Block``, ``GFNetBlock``, ...): the form's name.
    """

    def __init__(self, parts: dict[str, nn.Module | None], program: tuple[Op, ...], name: str = "FlowBlock") -> None:
        super().__init__()
        for part, module in parts.items():
            setattr(self, part, module)
        self.program = program
        self.form = name

    @property
    def program(self) -> tuple[Op, ...]:
        return self._program

    @program.setter
    def program(self, program: tuple[Op, ...]) -> None:
        self._program = program
        # Each value is let go after its last reader, so a block holds no more activations than a
        # hand-written forward would (a ResNet block's grids are tens of MB at batch 8).
        last = {source: index for index, op in enumerate(program) for source in op.sources}
        self._release = tuple(tuple(s for s, at in last.items() if at == index) for index in range(len(program)))

    def _get_name(self) -> str:
        return self.form

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> tuple[torch.Tensor, tuple[int, int]]:  # (B, N, C)
        # The loop runs once per step of every block, so it is written for few Python operations per
        # step: a small conv block (MobileNet's) spends as long here as in some of its kernels at batch 1.
        grids = [False]  # whether each value is a (B, C, H, W) grid rather than (B, N, C) tokens
        sizes = [hw]  # each value's grid size: a strided conv shrinks it
        values: list[torch.Tensor | None] = [x]
        modules = self._modules
        for op, release in zip(self._program, self._release, strict=True):
            code, sources, grid = op.code, op.sources, op.grid
            first = sources[0]
            size = sizes[first]
            if code == CALL:
                value = values[first]
                if grids[first] != grid:
                    value = _value(value, grids[first], size, grid)
                module = modules[op.part]
                out = module(value, size) if op.with_hw else module(value)  # type: ignore[misc]
                del value  # released values must not outlive their last reader here either
                if grid:
                    size = (out.shape[-2], out.shape[-1])
            else:
                operands = [_value(values[s], grids[s], sizes[s], grid) for s in sources]
                if code == ADD:
                    branch, residual = operands
                    out = residual + (modules["drop_path"](branch) if op.drop else branch)  # type: ignore[misc]
                elif code == CONCAT:
                    out = torch.cat(operands, dim=1 if grid else -1)
                elif code == CLASS_TOKEN_OP:
                    out = operands[0][:, : op.prefix]  # (B, prefix, C)
                else:
                    out = torch.cat([operands[0], operands[1][:, op.prefix :]], dim=1)  # (B, prefix + N, C)
                del operands
            for index in release:
                values[index] = None
            values.append(out)
            grids.append(grid)
            sizes.append(size)
        out = values[-1]
        assert out is not None
        out = grid_to_tokens(out) if grids[-1] else out
        return out, sizes[-1]


def _value(x: torch.Tensor | None, grid: bool, hw: tuple[int, int], to_grid: bool) -> torch.Tensor:
    """A value in the layout a step reads: tokens (B, N, C) as a (B, C, H, W) grid or back, as views.

    A grid of one cell is viewed with NCHW strides (:func:`~archspec.nn.layout.nchw_cell`): the grid
    steps of blocks are those of convolutional networks, which run NCHW at every larger size.
    """
    assert x is not None  # released only after its last reader
    if grid == to_grid:
        return x
    if not to_grid:
        return grid_to_tokens(x)
    return nchw_cell(x) if one_cell(hw) else tokens_to_grid(x, hw)
