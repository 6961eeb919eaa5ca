"""Small helpers shared by component plan rules."""

from __future__ import annotations

from archspec.flops import conv_out
from archspec.plan import PlanProblem


def window_out(
    grid: tuple[int, int], kernel: int, stride: int, padding: int, key: str | tuple[str | int, ...], what: str
) -> tuple[int, int]:
    """Grid after a conv or pooling window; a grid too small for the window is a plan problem."""
    height, width = (conv_out(size, kernel, stride, padding) for size in grid)
    if height < 1 or width < 1:
        raise PlanProblem(
            key,
            f"{what} (kernel {kernel}, stride {stride}, padding {padding}) does not fit the {grid[0]}×{grid[1]} grid",
        )
    return height, width


def hidden_width(dim: int, ratio: float, key: str) -> int:
    """``dim × ratio`` as a whole number of channels."""
    hidden = dim * ratio
    if hidden != int(hidden) or hidden < 1:
        raise PlanProblem(key, f"dim {dim} × ratio {ratio} = {hidden:g} is not a whole number of channels")
    return int(hidden)


def odd_kernel(value: int | None) -> int | None:
    if value is not None and value % 2 == 0:
        raise ValueError(f"kernel must be odd to keep the grid size, got {value}")
    return value
