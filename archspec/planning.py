"""Helpers for components' plan rules: window and grid checks, widths, and the common layers.

A component in ``archspec/components/`` or in a plugin package plans its node with these and the
vocabulary of :mod:`archspec.nodes`: ``conv_layer`` and ``linear_layer`` make the leaf layers whose
parameters and FLOPs add up to the component's, ``window_out`` and ``needs_grid`` check a grid as a
plan problem the user sees at the key that caused it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from archspec.flops import conv2d_flops, conv_out, fft2_plane_flops, linear_flops
from archspec.nodes import BlockInput, Node, PlanProblem, Shape, Site, layer

if TYPE_CHECKING:
    from archspec.specbase import BlockSpec


def window_out(
    grid: tuple[int, int], kernel: int, stride: int, padding: int, key: str | tuple[str | int, ...], what: str
) -> tuple[int, int]:
    """Grid after a conv or pooling window; a grid too small for the window, or a stride over a side
    that has already shrunk to one cell (padding would keep it at 1), is a plan problem."""
    if stride > 1 and 1 in grid:
        raise PlanProblem(
            key,
            f"{what} (stride {stride}) meets a {grid[0]}×{grid[1]} grid: a stride cannot reduce a side of one "
            "cell (use a larger input or fewer strided layers)",
        )
    height, width = (conv_out(size, kernel, stride, padding) for size in grid)
    if height < 1 or width < 1:
        raise PlanProblem(
            key,
            f"{what} (kernel {kernel}, stride {stride}, padding {padding}) does not fit the {grid[0]}×{grid[1]} grid",
        )
    return height, width


def child_site(site: Site, name: str, module: str | None = None) -> Site:
    """The site of part ``name`` of the component at ``site``: spec key ``name``, module attribute ``module``."""
    return Site((*site.spec_path, name), site.sub(module or name))


def needs_grid(tokens: Shape, what: str) -> tuple[int, int]:
    """The token grid, for parts that work on it; tokens with a class token in front have none."""
    if tokens.grid is None or tokens.prefix:
        raise PlanProblem("type", f"{what} needs tokens on a grid, without a class token in front")
    return tokens.grid


def hidden_width(dim: int, ratio: float, key: str) -> int:
    """``dim × ratio`` as a whole number of channels."""
    hidden = dim * ratio
    if hidden != int(hidden) or hidden < 1:
        raise PlanProblem(key, f"dim {dim} × ratio {ratio} = {hidden:g} is not a whole number of channels")
    return int(hidden)


def round_channels(value: float, divisor: int) -> int:
    """``value`` channels rounded to a multiple of ``divisor`` (at least ``divisor``), one step up where
    rounding would lose more than a tenth of them: the widths of the MobileNet and EfficientNet families."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def odd_kernel(value: int | None) -> int | None:
    if value is not None and value % 2 == 0:
        raise ValueError(f"kernel must be odd to keep the grid size, got {value}")
    return value


def conv_text(kernel: int, stride: int, cin: int, cout: int, what: str = "Conv2d") -> str:
    """``Conv2d 3×3/2, 3→32``: a conv layer's detail."""
    return f"{what} {kernel}×{kernel}" + (f"/{stride}" if stride > 1 else "") + f", {cin}→{cout}"


def conv_layer(
    site: Site,
    name: str,
    x: Shape,
    out: Shape,
    kernel: int,
    stride: int = 1,
    bias: bool = True,
    module: str | None = None,
    groups: int = 1,
    detail: str | None = None,
) -> Node:
    """A Conv2d layer from ``x`` to ``out`` (whose grid the caller has checked).

    ``module`` is the full path of the module holding it, by default attribute ``name`` of the site's.
    """
    assert out.grid is not None
    cin, cout = x.channels, out.channels
    params = cin // groups * cout * kernel**2 + cout * bias
    flops = conv2d_flops(cin, cout, kernel, out.grid, groups=groups)
    detail = conv_text(kernel, stride, cin, cout) if detail is None else detail
    return layer(site, "conv", name, x, out, params, flops, (module or site.sub(name),), detail)


def linear_layer(
    site: Site,
    name: str,
    x: Shape,
    cout: int,
    bias: bool = True,
    module: str | None = None,
    reads: str = "",
    after: tuple[str, ...] | None = None,
) -> Node:
    """A Linear layer over the last axis of ``x`` (tokens or one vector); ``module`` as for :func:`conv_layer`."""
    cin, rows = x.channels, math.prod(x.dims[:-1])
    params = cin * cout + cout * bias
    detail = ", ".join(filter(None, (reads, f"Linear {cin}→{cout}")))
    out = x.with_channels(cout) if x.explicit_dims is None else Shape.of(*x.dims[:-1], cout)
    modules = (module or site.sub(name),)
    return layer(site, "linear", name, x, out, params, linear_flops(rows, cin, cout), modules, detail, after=after)


def keep_width(block: BlockSpec, given: BlockInput) -> None:
    """A block of this kind keeps its input's width: the stage must receive its own."""
    if given.tokens.channels != given.dim:
        raise PlanProblem(
            (*given.site.spec_path[:-1], "dim"),
            f"a {block.type} block keeps the width, but it gets {given.tokens.channels} channels for a stage of "
            f"{given.dim} (give the stage a downsample that changes the width)",
        )


def fft_layers(site: Site, tokens: Shape, out: Shape, detail: str = "ortho") -> tuple[Shape, Node, Node]:
    """A real 2-D FFT of the token grid and its inverse, as the layers of a Fourier mixer: the spectrum's
    shape (channels last, ``W // 2 + 1`` columns, complex), the rfft2 layer and the irfft2 layer (giving
    ``out``, described by ``detail``). What the mixer does to the spectrum goes between them."""
    assert tokens.grid is not None
    height, width = tokens.grid
    spectrum = Shape.of(height, width // 2 + 1, tokens.channels)
    flops = tokens.channels * fft2_plane_flops(height, width)
    forward = layer(site, "fft", "fft", tokens, spectrum, 0, flops, detail="complex, ortho", title="rfft2")
    inverse = layer(site, "fft", "ifft", spectrum, out, 0, flops, detail=detail, title="irfft2")
    return spectrum, forward, inverse
