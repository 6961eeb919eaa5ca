"""Export a built model to ONNX or to a ``torch.export`` program (.pt2), with a dynamic batch size.

ONNX goes through torch's dynamo exporter (the legacy TorchScript exporter cannot translate
``rfft2``) and is checked with onnxruntime against the eager model. The onnx, onnxscript and
onnxruntime packages are the ``export`` extra and are only imported here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archspec.errors import ArchspecError
from archspec.plan import Plan

FORMATS = ("onnx", "pt2")
TOLERANCE = 1e-4
MAX_BATCH = 4096


class ExportError(ArchspecError):
    """The export extra is missing, or the exported model disagrees with the eager one."""

    code = "AS802"


def _need(*modules: str) -> None:
    missing = []
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ExportError(
            f"ONNX export needs {', '.join(missing)}: pip install 'archspec[export]' (onnx, onnxscript, onnxruntime)"
        )


def _batch_dim() -> dict[str, dict[int, Any]]:
    return {"x": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}}


def _replace_into(path: Path, write: Any) -> None:
    """Let ``write(tmp_path)`` produce the file, then move it into place (whole or not at all)."""
    # The suffix stays last: torch.export.save insists on ".pt2".
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.tmp.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export(model: nn.Module, plan: Plan, path: Path, fmt: str, verify: bool = True, force: bool = False) -> float:
    """Write ``model`` to ``path`` as ``fmt`` and return the largest difference found by the check (0 if skipped)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (valid: {', '.join(FORMATS)})")
    if path.exists() and not force:
        from archspec.output import OutputExistsError

        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    model = model.eval()
    example = torch.randn(2, *plan.input.dims)
    with _quiet_exporter():
        if fmt == "onnx":
            _need("onnx", "onnxscript", "onnxruntime")
            onnx_program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=_batch_dim(), verbose=False)
            assert onnx_program is not None
            _replace_into(path, onnx_program.save)
            return _check_onnx(model, plan, path) if verify else 0.0
        program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim())
        _replace_into(path, lambda tmp: torch.export.save(program, tmp))
        return _check_pt2(model, plan, path) if verify else 0.0


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep stdout for data: the exporters report progress there, and note optional torchvision ops."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            # Raised inside torch's own pytree code on this version; nothing for a user to act on.
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def _inputs(plan: Plan) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(batch, *plan.input.dims, generator=generator) for batch in (1, 3)]


def _compare(reference: torch.Tensor, result: torch.Tensor, what: str) -> float:
    difference = (reference - result).abs().max().item()
    if not difference <= TOLERANCE:
        raise ExportError(f"{what} differs from the eager model by {difference:.3g} (tolerance {TOLERANCE})")
    return float(difference)


def _check_onnx(model: nn.Module, plan: Plan, path: Path) -> float:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    with torch.no_grad():
        for x in _inputs(plan):
            result = torch.from_numpy(session.run(None, {name: x.numpy()})[0])
            worst = max(worst, _compare(model(x), result, f"the ONNX model at batch {x.shape[0]}"))
    return worst


def _check_pt2(model: nn.Module, plan: Plan, path: Path) -> float:
    loaded = torch.export.load(str(path)).module()
    worst = 0.0
    with torch.no_grad():
        for x in _inputs(plan):
            worst = max(worst, _compare(model(x), loaded(x), f"the exported program at batch {x.shape[0]}"))
    return worst
