"""Export a built model to ONNX or to a ``torch.export`` program (.pt2), with a dynamic batch size and,
with ``dynamic="hw"``, a dynamic height and width too.

ONNX goes through torch's dynamo exporter (the legacy TorchScript exporter cannot translate
``rfft2``) and is checked with onnxruntime against the eager model, on the written file before it
is moved into place. The onnx, onnxscript and onnxruntime packages are the ``export`` extra and are
only imported here.

Names: the input is ``image``; a classifier's output is ``logits``; a backbone's outputs are named
after its feature maps (``stage1``, ``stage2``, ...). ONNX carries all of them. A ``torch.export``
program names its input argument ``image`` (see its ``graph_signature``) but has no names for
outputs: it returns what the eager model returns, a tensor or the backbone's maps.

With a dynamic height and width, the image side must be a multiple of the model's total stride
(``input size // last stage's grid``) and at least twice it, so the last grid is at least 2×2.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from archspec.errors import ArchspecError, format_path
from archspec.nn.features import output_tensors
from archspec.nodes import Plan
from archspec.output import check_destination, write_file_atomic

if TYPE_CHECKING:
    from archspec.specbase import ComponentSpec

FORMATS = ("onnx", "pt2")
DYNAMIC = ("batch", "hw")
"""What ``export`` leaves dynamic: the batch alone, or the batch, the height and the width."""
TOLERANCE = 1e-4
MAX_BATCH = 4096
MAX_SIDE = 8192
"""The largest image height or width a ``dynamic="hw"`` export accepts, in pixels."""
CHECK_BATCHES = (1, 3)
INPUT_NAME = "image"


class ExportError(ArchspecError):
    """The export extra is missing, the model cannot be exported as asked, or the exported model
    disagrees with the eager one."""

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
            f"ONNX export needs {', '.join(missing)}: pip install onnx onnxscript onnxruntime "
            "(or pip install -e '.[export]' in a checkout)"
        )


def total_stride(plan: Plan) -> tuple[int, int]:
    """The model's reduction from the image to the last stage's grid, per axis (height, width).

    Raises:
        ExportError: the spec has no image grid, or some stage's grid does not divide the input size
            (so no single stride maps every allowed size to whole grids).
    """
    image = plan.input.grid
    if image is None:
        raise ExportError(f"--dynamic hw: {plan.name} takes no image grid, so it has no height or width to vary")
    for stage in plan.stages:
        if image[0] % stage.grid[0] or image[1] % stage.grid[1]:
            grids = ", ".join(f"{s.grid[0]}×{s.grid[1]}" for s in plan.stages)
            raise ExportError(
                f"--dynamic hw: the {image[0]}×{image[1]} input does not divide evenly into the stage grids "
                f"({grids}); set input.size to a multiple of the total stride"
            )
    last = plan.stages[-1].grid
    return image[0] // last[0], image[1] // last[1]


def check_sizes(plan: Plan, dynamic: str) -> list[tuple[int, int, int]]:
    """The (batch, height, width) inputs the check runs: batch 1 and 3 at the built size and, with
    ``dynamic="hw"``, batch 1 at 1.5 times the height (rounded up to the stride) and the built width."""
    _, height, width = plan.input.dims
    sizes = [(batch, height, width) for batch in CHECK_BATCHES]
    if dynamic == "hw":
        sizes.append((1, *_other_size(plan)))
    return sizes


def describe_checks(plan: Plan, dynamic: str) -> str:
    """Where :func:`export`'s check compares with eager, for messages: ``batch 1 and 3`` (``, and at 1×3×96×64``)."""
    text = " and ".join(str(batch) for batch in CHECK_BATCHES)
    if dynamic == "hw":
        _, height, width = check_sizes(plan, dynamic)[-1]
        return f"batch {text}, and at 1×{plan.input.channels}×{height}×{width}"
    return f"batch {text}"


def _other_size(plan: Plan) -> tuple[int, int]:
    stride_h, stride_w = total_stride(plan)
    rows, cols = plan.stages[-1].grid
    return stride_h * math.ceil(rows * 1.5), stride_w * cols


def _probe_size(plan: Plan) -> tuple[int, int]:
    """The smallest allowed size other than the built one: where a size fixed while tracing shows cheaply."""
    stride_h, stride_w = total_stride(plan)
    smallest = (2 * stride_h, 2 * stride_w)
    return _other_size(plan) if smallest == plan.input.grid else smallest


def _dynamic_shapes(plan: Plan, dynamic: str) -> tuple[dict[int, Any]]:
    dims: dict[int, Any] = {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}
    if dynamic == "hw":
        stride_h, stride_w = total_stride(plan)
        # Counted in strides, so every size torch.export allows gives whole grids at every stage; at
        # least 2, since torch.export treats a size of 1 as a special, fixed case.
        dims[2] = stride_h * torch.export.Dim("grid_height", min=2, max=MAX_SIDE // stride_h)
        dims[3] = stride_w * torch.export.Dim("grid_width", min=2, max=MAX_SIDE // stride_w)
    return (dims,)


def _check_dynamic_hw(plan: Plan, fmt: str) -> None:
    """Refuse, before tracing, a spec whose modules take only the built size, or whose built size is too
    small, and spectral filters in ONNX (onnxruntime's DFT cannot run them with a dynamic width)."""
    fixed = _size_bound(plan, "strict")
    if fixed:
        height, width = plan.input.grid or (0, 0)
        raise ExportError(
            f"--dynamic hw: {_listed(fixed)} {'has' if len(fixed) == 1 else 'have'} resize: strict, so "
            f"{plan.name} takes only {height}×{width} images; export with --dynamic batch"
        )
    ffts = _parts(plan, lambda spec: spec.uses_fft)
    if fmt == "onnx" and ffts:
        raise ExportError(
            f"--dynamic hw: {_listed(ffts)} {'runs' if len(ffts) == 1 else 'run'} a 2-D FFT, and "
            "onnxruntime's DFT fails on one whose width is dynamic (a shape mismatch when it reuses a buffer); "
            "export to ONNX with --dynamic batch, or use --format pt2"
        )
    stride_h, stride_w = total_stride(plan)
    rows, cols = plan.stages[-1].grid
    if rows < 2 or cols < 2:
        raise ExportError(
            f"--dynamic hw: the last stage's grid is {rows}×{cols} at the built size; torch.export needs at least "
            f"2×2, so set input.size to at least {2 * stride_h}×{2 * stride_w}"
        )


def _size_bound(plan: Plan, resize: str) -> list[str]:
    """The parts holding weights made for the built grid that they resize (``interpolate``) or refuse
    (``strict``) at another, as their components declare: spectral filters, and patch stems with
    position embeddings."""
    return _parts(plan, lambda spec: spec.size_policy() == resize)


def _parts(plan: Plan, test: Callable[[ComponentSpec], bool]) -> list[str]:
    """The spec paths (with their component) of the plan's components that pass ``test``."""
    found = [
        f"{format_path(node.spec_path)} ({node.component})" for node in plan.walk() if node.spec and test(node.spec)
    ]
    return list(dict.fromkeys(found))


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def output_names(outputs: Any) -> list[str]:
    """The names of a model's outputs, given what it returned: ``logits`` for a tensor, the keys of a
    backbone's dict of feature maps (``stage2``, ...) in order."""
    return [str(key) for key in outputs] if isinstance(outputs, Mapping) else ["logits"]


class _ImageInput(nn.Module):
    """``model`` with its input argument named ``image``, for ``torch.export``, which names a program's
    inputs after the arguments of the module's ``forward``.

    The model's children, parameters and buffers are registered here under their own names (not
    under a ``model.`` prefix), so the program's state_dict keys are the model's; the model itself is
    kept outside the module tree and runs on those same objects.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.__dict__["wrapped"] = model
        for name, child in model.named_children():
            self.add_module(name, child)
        for name, param in model.named_parameters(recurse=False):
            self.register_parameter(name, param)
        for name, buffer in model.named_buffers(recurse=False):
            self.register_buffer(name, buffer)

    def forward(self, image: torch.Tensor) -> Any:
        return self.__dict__["wrapped"](image)


def export(
    model: nn.Module,
    plan: Plan,
    path: Path,
    fmt: str,
    verify: bool = True,
    force: bool = False,
    dynamic: str = "batch",
) -> float:
    """Write ``model`` to ``path`` as ``fmt`` and return the largest difference found by the check (0 if skipped).

    ``dynamic`` is ``"batch"`` (the batch size is dynamic) or ``"hw"`` (the batch, height and width
    are: any multiple of :func:`total_stride` from twice it up to ``MAX_SIDE``). With ``"hw"`` the
    program is also run once at another size before it is written, verified or not, because
    torch.export can fix a size while tracing without saying so.

    The check runs on the written file before it is moved into place, so a model that fails it
    leaves nothing at ``path`` (and an existing file there untouched). It compares with the eager
    model at the inputs of :func:`check_sizes`.

    Raises:
        ExportError: the format or ``dynamic`` is unknown, the export extra is missing, the model
            cannot be exported with that dynamic size, or the check failed.
        OutputExistsError: ``path`` exists and ``force`` is not set.
        OutputError: ``path`` cannot be written.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (valid: {', '.join(FORMATS)})")
    if dynamic not in DYNAMIC:
        raise ExportError(f"unknown dynamic size {dynamic!r} (valid: {', '.join(DYNAMIC)})")
    path = check_destination(path, force)  # before the minutes an export can take
    if fmt == "onnx":
        _need("onnx", "onnxscript", "onnxruntime")
    if dynamic == "hw":
        _check_dynamic_hw(plan, fmt)
    model = model.eval()
    example = torch.randn(2, *plan.input.dims)
    difference = 0.0
    with _quiet_exporter():
        program, save = _trace(model, plan, example, fmt, dynamic)
        if dynamic == "hw":
            _probe(program, plan)
        check = _check_onnx if fmt == "onnx" else _check_pt2

        def write(tmp: Path) -> None:
            nonlocal difference
            save(tmp)
            if verify:
                difference = check(model, plan, tmp, dynamic)

        # The suffix stays last in the temporary name: torch.export.save insists on ".pt2".
        write_file_atomic(path, write, force, suffix=path.suffix)
    return difference


def _trace(
    model: nn.Module, plan: Plan, example: torch.Tensor, fmt: str, dynamic: str
) -> tuple[torch.export.ExportedProgram, Callable[[Path], None]]:
    """The traced program, and what writes it to a path as ``fmt``."""
    shapes = _dynamic_shapes(plan, dynamic)
    try:
        if fmt == "onnx":
            with torch.no_grad():
                names = output_names(model(example[:1]))
            onnx_program = torch.onnx.export(
                model, (example,), dynamo=True, dynamic_shapes=shapes, input_names=[INPUT_NAME], output_names=names,
                verbose=False,
            )  # fmt: skip
            # Both are None only with the legacy exporter.
            assert onnx_program is not None and onnx_program.exported_program is not None
            return onnx_program.exported_program, onnx_program.save
        program = torch.export.export(_ImageInput(model), (example,), dynamic_shapes=shapes)
    except Exception as error:  # torch's exporters raise many kinds; each means "cannot export this"
        sizes = "batch size" if dynamic == "batch" else "batch size, height and width"
        raise ExportError(f"cannot export {plan.name} to {fmt} with a dynamic {sizes}: {_brief(error)}") from error
    return program, lambda tmp: torch.export.save(program, tmp)


def _brief(error: BaseException, lines: int = 3) -> str:
    """The first lines of an exception's message, joined: torch's export errors run to pages."""
    text = [line.strip() for line in str(error).splitlines() if line.strip()]
    return " ".join(text[:lines]) or type(error).__name__


def _probe(program: torch.export.ExportedProgram, plan: Plan) -> None:
    """Run ``program`` once at another allowed size; a size fixed while tracing fails here, named."""
    height, width = _probe_size(plan)
    x = torch.zeros(1, plan.input.channels, height, width)
    try:
        with torch.no_grad():
            program.module()(x)
    except Exception as error:
        built = plan.input.grid or (0, 0)
        raise ExportError(
            f"--dynamic hw: the exported {plan.name} takes only {built[0]}×{built[1]} images, not "
            f"{height}×{width} ({_brief(error, 1)}): torch.export fixed a size while tracing; export with "
            "--dynamic batch"
        ) from error


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


def _inputs(plan: Plan, dynamic: str) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    channels = plan.input.channels
    return [torch.randn(batch, channels, h, w, generator=generator) for batch, h, w in check_sizes(plan, dynamic)]


def _compare(reference: Any, result: Any, what: str) -> float:
    if isinstance(reference, Mapping) and isinstance(result, Mapping) and list(reference) != list(result):
        raise ExportError(f"{what} returns the maps {list(result)} where the eager model returns {list(reference)}")
    references, results = output_tensors(reference), output_tensors(result)
    if len(references) != len(results):
        raise ExportError(f"{what} returns {len(results)} outputs where the eager model returns {len(references)}")
    for a, b in zip(references, results, strict=True):
        if a.shape != b.shape:
            raise ExportError(f"{what} returns shape {tuple(b.shape)} where the eager model returns {tuple(a.shape)}")
    difference = max((a - b).abs().max().item() for a, b in zip(references, results, strict=True))
    if not difference <= TOLERANCE:
        raise ExportError(f"{what} differs from the eager model by {difference:.3g} (tolerance {TOLERANCE})")
    return float(difference)


def _where(x: torch.Tensor) -> str:
    return f"batch {x.shape[0]}, {x.shape[2]}×{x.shape[3]}"


def _check_onnx(model: nn.Module, plan: Plan, path: Path, dynamic: str = "batch") -> float:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.log_severity_level = 4  # a failing run is reported below, once, as an ExportError
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    worst = 0.0
    with torch.no_grad():
        for x in _inputs(plan, dynamic):
            what = f"the ONNX model at {_where(x)}"
            try:
                outputs = session.run(None, {name: x.numpy()})
            except Exception as error:  # onnxruntime's errors have no common base class
                raise ExportError(f"{what} fails: {_brief(error, 1)}") from error
            result = [torch.from_numpy(output) for output in outputs]
            worst = max(worst, _compare(model(x), result, what))
    return worst


def _check_pt2(model: nn.Module, plan: Plan, path: Path, dynamic: str = "batch") -> float:
    loaded = torch.export.load(str(path)).module()
    worst = 0.0
    with torch.no_grad():
        for x in _inputs(plan, dynamic):
            what = f"the exported program at {_where(x)}"
            try:
                result = loaded(x)
            except Exception as error:
                raise ExportError(f"{what} fails: {_brief(error, 1)}") from error
            worst = max(worst, _compare(model(x), result, what))
    return worst
