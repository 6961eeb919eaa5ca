"""Export a built model to ONNX or to a ``torch.export`` program (.pt2), with a dynamic batch size.

ONNX goes through torch's dynamo exporter (the legacy TorchScript exporter cannot translate
``rfft2``) and is checked with onnxruntime against the eager model, on the written file before it
is moved into place. The onnx, onnxscript and onnxruntime packages are the ``export`` extra and are
only imported here.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archspec.errors import ArchspecError
from archspec.output import check_destination, write_file_atomic
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


def export(model: nn.Module, plan: Plan, path: Path, fmt: str, verify: bool = True, force: bool = False) -> float:
    """Write ``model`` to ``path`` as ``fmt`` and return the largest difference found by the check (0 if skipped).

    The check runs on the written file before it is moved into place, so a model that fails it
    leaves nothing at ``path`` (and an existing file there untouched).

    Raises:
        ExportError: the format is unknown, the export extra is missing, or the check failed.
        OutputExistsError: ``path`` exists and ``force`` is not set.
        OutputError: ``path`` cannot be written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (valid: {', '.join(FORMATS)})")
    path = check_destination(path, force)  # before the minutes an export can take
    if fmt == "onnx":
        _need("onnx", "onnxscript", "onnxruntime")
    model = model.eval()
    example = torch.randn(2, *plan.input.dims)
    difference = 0.0
    with _quiet_exporter():
        if fmt == "onnx":
            onnx_program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=_batch_dim(), verbose=False)
            assert onnx_program is not None

            def save(tmp: Path) -> None:
                onnx_program.save(tmp)

            check = _check_onnx
        else:
            program = torch.export.export(model, (example,), dynamic_shapes=_batch_dim())

            def save(tmp: Path) -> None:
                torch.export.save(program, tmp)

            check = _check_pt2

        def write(tmp: Path) -> None:
            nonlocal difference
            save(tmp)
            if verify:
                difference = check(model, plan, tmp)

        # The suffix stays last in the temporary name: torch.export.save insists on ".pt2".
        write_file_atomic(path, write, force, suffix=path.suffix)
    return difference


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


def _tensors(value: Any) -> list[torch.Tensor]:
    """A model's output as a list: the logits alone, or a backbone's feature maps."""
    return list(value) if isinstance(value, list | tuple) else [value]


def _compare(reference: Any, result: Any, what: str) -> float:
    references, results = _tensors(reference), _tensors(result)
    if len(references) != len(results):
        raise ExportError(f"{what} returns {len(results)} outputs where the eager model returns {len(references)}")
    difference = max((a - b).abs().max().item() for a, b in zip(references, results, strict=True))
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
            result = [torch.from_numpy(output) for output in session.run(None, {name: x.numpy()})]
            worst = max(worst, _compare(model(x), result, f"the ONNX model at batch {x.shape[0]}"))
    return worst


def _check_pt2(model: nn.Module, plan: Plan, path: Path) -> float:
    loaded = torch.export.load(str(path)).module()
    worst = 0.0
    with torch.no_grad():
        for x in _inputs(plan):
            worst = max(worst, _compare(model(x), loaded(x), f"the exported program at batch {x.shape[0]}"))
    return worst
