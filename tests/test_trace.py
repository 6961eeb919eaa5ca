"""torch.jit.trace and fvcore's FlopCountAnalysis (which traces) on every shipped spec.

Position embeddings, spectral filters and relative-position biases choose between their built tensor
and a resized one by comparing the grid with the built grid; under ``torch.jit.trace`` those sizes are
0-d tensors, which :func:`archspec.nn.layout.known_equal` reads as the ints they hold. Each spec is
built once, at the smallest square input it plans at (32 px where it allows, its own size otherwise).
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import archspec
from archspec.compose import shipped_specs
from archspec.errors import ArchspecError

SHIPPED = shipped_specs()
SMALL = 32
HAS_FVCORE = importlib.util.find_spec("fvcore") is not None


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tracing a small model is dispatch-bound: on a shared machine extra threads only wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@functools.lru_cache(maxsize=1)  # the trace and fvcore cases of a spec run one after the other
def _built(path: Path) -> tuple[torch.nn.Module, torch.Tensor]:
    try:
        loaded = archspec.load_spec(path, [f"input.size={SMALL}"])
        archspec.plan(loaded)
    except ArchspecError:  # a token-mixing MLP is built for its own grid only
        loaded = archspec.load_spec(path)
    torch.manual_seed(0)
    model = archspec.build(loaded).eval()
    spec = loaded.spec
    return model, torch.randn(1, spec.input.channels, *spec.input.size)


def _trace(model: torch.nn.Module, x: torch.Tensor) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trace's deprecation and its notes on Python branches
        return torch.jit.trace(model, x, check_trace=False)


CASES = [pytest.param(path, check, id=f"{path.stem}-{check}") for path in SHIPPED for check in ("trace", "fvcore")]


@pytest.mark.parametrize(("path", "check"), CASES)
def test_traces_like_eager(path: Path, check: str) -> None:
    if check == "fvcore" and not HAS_FVCORE:
        pytest.skip("fvcore is not installed")
    model, x = _built(path)
    with torch.no_grad():
        if check == "trace":
            expected = model(x)
            torch.testing.assert_close(_trace(model, x)(x), expected, atol=1e-5, rtol=1e-5)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # fvcore scripts on import and traces: the warnings above
                from fvcore.nn import FlopCountAnalysis

                analysis = FlopCountAnalysis(model, x)
                analysis.unsupported_ops_warnings(False)
                analysis.uncalled_modules_warnings(False)
                assert analysis.total() > 0


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "gfnet-ti"])
def test_trace_at_another_size_resizes_like_eager(name: str) -> None:
    # built at 32 px, traced at 48: the position embedding or spectral filter is resized in the trace
    model = archspec.build(archspec.load_spec(name, [f"input.size={SMALL}"])).eval()
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(_trace(model, x)(x), model(x), atol=1e-5, rtol=1e-5)
