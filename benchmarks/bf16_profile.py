"""Where SpectFormer-H-S spends its time on the CPU under bfloat16 autocast, against float32.

    python benchmarks/bf16_profile.py --threads 2

For each case (inference at batch 1 and 8 under ``torch.inference_mode``, and a training step at batch 8:
forward, backward and an SGD step) in bfloat16 autocast and in float32, the script gives the median
step time over ``--repeats`` runs after a warm-up, the achieved GFLOP/s (the plan's FLOPs, three times
the forward's for a training step, as ``archspec bench`` counts) and its share of a 1024² matrix
product's rate measured in the same process and dtype (the faster of a probe before and one after the
cases). Then it profiles a few steps with :mod:`torch.profiler` and sums each operator's self CPU time
into categories (matrix products, depthwise and other convolutions, FFTs, dtype casts, layout copies,
norms, activations, elementwise, ...), each shown as a share of the profiled step. For the bfloat16
cases it also counts the dtype conversions (``aten::_to_copy``) per step by where they come from, and
it lists which dtype autocast gives the output of each kind of operator the model runs, and which
dtypes the model's modules take and return.

Freed memory is retained (:func:`archspec.accel.retain_freed_memory`), as ``archspec bench`` does,
unless ``--system-malloc`` is given.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function
from torch.utils.benchmark import Timer

import archspec
from archspec.accel import retain_freed_memory
from archspec.bench import matmul_rate
from archspec.runtime import machine_description

SPEC = "spectformer-h-s"
CASES = {  # name: (dtype, batch, mode): mode "inference" (torch.inference_mode), "no_grad" or "train"
    "bf16-b1": ("bfloat16", 1, "inference"),
    "bf16-b8": ("bfloat16", 8, "inference"),
    "bf16-train8": ("bfloat16", 8, "train"),
    "fp32-b1": ("float32", 1, "inference"),
    "fp32-b8": ("float32", 8, "inference"),
    "fp32-train8": ("float32", 8, "train"),
    # autocast caches its bf16 copies of the weights under no_grad, but not under inference_mode:
    "bf16-b1-no_grad": ("bfloat16", 1, "no_grad"),
    "bf16-b8-no_grad": ("bfloat16", 8, "no_grad"),
}
SCALAR_TYPES = {4: "int64", 5: "fp16", 6: "fp32", 7: "fp64", 9: "complex64", 11: "bool", 15: "bf16"}
SHORT = {"float": "fp32", "c10::BFloat16": "bf16", "c10::Half": "fp16", "double": "fp64", "long int": "int64"}

CATEGORIES = [
    "matmul (linear/addmm/mm/bmm)",
    "attention (SDPA kernel)",
    "conv depthwise 3×3 (fp32 inference: fused with GELU)",
    "conv 1×1 (Linear routed to oneDNN)",
    "conv other (stem, downsample, spectral)",
    "FFT (r2c/c2r/c2c)",
    "casts (dtype _to_copy)",
    "copies (layout: copy_/clone/contiguous/cat)",
    "norms (layer/batch norm)",
    "activations (GELU, softmax, ...)",
    "elementwise (mul/add/complex mul, ...)",
    "optimizer (SGD step, zero_grad)",
    "other",
]
GENERIC = {"empty", "empty_like", "empty_strided", "as_strided", "view", "reshape", "permute", "transpose", "t",
           "expand", "select", "slice", "unsqueeze", "squeeze", "fill_", "zero_", "zeros", "zeros_like", "resize_",
           "detach", "alias", "_reshape_alias", "unbind", "split", "chunk", "narrow", "view_as_real",
           "view_as_complex", "_unsafe_view", "flatten", "set_", "lift_fresh", "ones_like", "numpy_T", "mT",
           "_nested_tensor_from_mask_left_aligned", "result_type", "is_nonzero", "item", "_local_scalar_dense",
           "to", "_has_compatible_shallow_copy_type", "_to_copy_or_view"}  # fmt: skip


def _op(name: str) -> str:
    """``aten::gelu`` → ``gelu``, ``mkldnn::_convolution_pointwise`` → ``_convolution_pointwise``."""
    return name.split("::", 1)[1] if "::" in name and not name.startswith(("module::", "autograd::")) else name


def _name_category(name: str) -> str | None:
    """The category of an operator from its name alone; None for generic ones (empty, views, copy_, ...)."""
    op = _op(name)
    if op == name:  # not an operator: Python-level labels
        if "Optimizer.step" in name or "zero_grad" in name:
            return "optimizer (SGD step, zero_grad)"
        return None
    if op == "_to_copy":
        return "casts (dtype _to_copy)"
    if op in ("copy_", "clone", "contiguous", "cat", "stack", "_cat"):
        return "copies (layout: copy_/clone/contiguous/cat)"
    if "scaled_dot_product" in op or "flash_attention" in op:
        return "attention (SDPA kernel)"
    if op in ("linear", "addmm", "mm", "bmm", "matmul", "baddbmm", "addbmm", "_addmm_activation", "mkldnn_linear",
              "linear_backward", "mkldnn_linear_backward", "einsum"):  # fmt: skip
        return "matmul (linear/addmm/mm/bmm)"
    if "conv" in op:
        return "conv"
    if "fft" in op:
        return "FFT (r2c/c2r/c2c)"
    if "norm" in op:
        return "norms (layer/batch norm)"
    if any(a in op for a in ("gelu", "relu", "silu", "softmax", "sigmoid", "tanh", "hardswish")):
        return "activations (GELU, softmax, ...)"
    if op.startswith("_foreach") or op == "sgd" or op == "_fused_sgd":
        return "optimizer (SGD step, zero_grad)"
    if op.rstrip("_") in ("mul", "add", "sub", "div", "addcmul", "addcdiv", "neg", "where", "mul_", "pow", "exp",
                          "sqrt", "rsqrt", "masked_fill", "clamp", "dropout", "lerp", "complex", "polar", "real",
                          "imag"):  # fmt: skip
        return "elementwise (mul/add/complex mul, ...)"
    if op in GENERIC:
        return None
    return "other"


def _conv_kind(event: Any) -> str:
    """Depthwise, 1×1 or other, from the weight among the inputs of the conv op or of its parents: forward
    ops take (input, weight, ...), ``convolution_backward`` (grad_output, input, weight, ...)."""
    while event is not None:
        if "conv" in _op(event.name):
            weights = [s for s in event.input_shapes or [] if isinstance(s, list) and len(s) == 4 and s[2] <= 7]
            if any(s[1] == 1 and s[0] > 1 for s in weights):
                return "conv depthwise 3×3 (fp32 inference: fused with GELU)"
            if any(s[2] == s[3] == 1 for s in weights):
                return "conv 1×1 (Linear routed to oneDNN)"
            if weights:
                return "conv other (stem, downsample, spectral)"
        event = event.cpu_parent
    return "conv other (stem, downsample, spectral)"


def _inherited(event: Any, pin: bool) -> str | None:
    """The first categorised name from ``event`` up through its parents (copy_ inside _to_copy is a cast)."""
    while event is not None:
        cat = _name_category(event.name)
        if cat == "conv":
            return _conv_kind(event)
        if cat is not None:
            return cat
        if pin:
            return None
        event = event.cpu_parent
    return None


def category(event: Any) -> str:
    own = _name_category(event.name)
    if own == "copies (layout: copy_/clone/contiguous/cat)" and _op(event.name) == "copy_":
        parent = _inherited(event.cpu_parent, pin=False) if event.cpu_parent is not None else None
        return "casts (dtype _to_copy)" if parent == "casts (dtype _to_copy)" else own
    if own == "conv":
        return _conv_kind(event)
    if own is not None:
        return own
    return _inherited(event.cpu_parent, pin=False) or "other"


def _origin(event: Any) -> str:
    """Where a dtype conversion comes from: the nearest module label, op or autograd node above it."""
    op, module = None, None
    parent = event.cpu_parent
    while parent is not None:
        name = parent.name
        if name.startswith("module::") and module is None:
            module = name.removeprefix("module::")
        elif name.startswith("autograd::engine::evaluate_function: ") and op is None:
            op = name.split(": ", 1)[1] + " (backward)"
        elif name.startswith("aten::") and _op(name) not in ("to", "_to_copy", "type_as") and op is None:
            op = _op(name)
        parent = parent.cpu_parent
    return f"{module or '(outside modules)'} → {op or 'explicit .to()/.float()'}"


def _direction(event: Any) -> str:
    source = SHORT.get((event.input_dtypes or ["?"])[0], (event.input_dtypes or ["?"])[0])
    inputs = getattr(event, "concrete_inputs", None) or []
    target = SCALAR_TYPES.get(inputs[1], str(inputs[1])) if len(inputs) > 1 and inputs[1] is not None else "?"
    return f"{source}→{target}"


@contextlib.contextmanager
def module_labels(model: nn.Module) -> Iterator[None]:
    """Each module's forward inside a ``record_function("module::Class")``: for a separate profiled step that
    only counts casts (hooks would turn accel's float32 fast paths off, and they add Python time)."""
    handles = []
    stack: list[Any] = []

    def pre(module: nn.Module, _args: Any) -> None:
        rf = record_function(f"module::{type(module).__name__}")
        rf.__enter__()
        stack.append(rf)

    def post(_module: nn.Module, _args: Any, _out: Any) -> None:
        stack.pop().__exit__(None, None, None)

    for m in model.modules():
        handles += [m.register_forward_pre_hook(pre), m.register_forward_hook(post)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _step_fn(model: nn.Module, x: torch.Tensor, train: bool, optimizer: Any) -> Callable[[], None]:
    def step() -> None:
        if not train:
            model(x)
            return
        out = model(x)
        outputs = out if isinstance(out, tuple) else (out,)
        sum(o.float().logsumexp(dim=-1).mean() for o in outputs).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _context(dtype: str, mode: str) -> contextlib.ExitStack:
    stack = contextlib.ExitStack()
    if mode == "inference":
        stack.enter_context(torch.inference_mode())
    elif mode == "no_grad":
        stack.enter_context(torch.no_grad())
    if dtype == "bfloat16":
        stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
    return stack


def run_case(name: str, repeats: int, profile_steps: int, flops: int) -> dict[str, Any]:
    dtype, batch, mode = CASES[name]
    train = mode == "train"
    model = archspec.create_model(SPEC).train(train)  # as archspec bench builds it
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4) if train else None
    x = torch.randn(batch, 3, 224, 224)
    step = _step_fn(model, x, train, optimizer)
    with _context(dtype, mode):
        for _ in range(3):
            step()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            start = time.perf_counter()
            for _ in range(profile_steps):
                step()
            profiled = (time.perf_counter() - start) / profile_steps
        labelled = None
        if dtype == "bfloat16":  # one more step with module labels, for where the casts come from
            with module_labels(model), profile(activities=[ProfilerActivity.CPU], record_shapes=True) as labelled:
                step()
    per_cat: dict[str, float] = collections.defaultdict(float)
    for ev in prof.events():
        if ev.name.startswith(("autograd::", "ProfilerStep")):
            continue
        per_cat[category(ev)] += ev.self_cpu_time_total
    casts: collections.Counter[str] = collections.Counter()
    cast_us: dict[str, float] = collections.defaultdict(float)
    for ev in labelled.events() if labelled is not None else []:
        if ev.name == "aten::_to_copy":
            key = f"{_direction(ev)} | {_origin(ev)}"
            casts[key] += 1
            cast_us[key] += ev.cpu_time_total
    median = statistics.median(times)
    return {
        "name": name,
        "dtype": dtype,
        "batch": batch,
        "train": train,
        "median_s": median,
        "min_s": min(times),
        "max_s": max(times),
        "profiled_s": profiled,
        "flops": flops * batch * (3 if train else 1),
        "categories": {k: v / 1e6 / profile_steps for k, v in per_cat.items()},
        "mode": mode,
        "casts": dict(casts),
        "cast_s": {k: v / 1e6 for k, v in cast_us.items()},
    }


def autocast_table() -> list[list[str]]:
    """Output dtype under CPU bfloat16 autocast of the kinds of operator the model runs, for fp32 and bf16 inputs."""
    tokens = torch.randn(2, 49, 64)
    grid = torch.randn(2, 64, 7, 7)
    dw, dense = nn.Conv2d(64, 64, 3, padding=1, groups=64), nn.Conv2d(64, 64, 3, padding=1)
    lin, ln, bn = nn.Linear(64, 64), nn.LayerNorm(64), nn.BatchNorm2d(64).eval()
    ops: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "F.linear (nn.Linear)": lambda t, g: lin(t),
        "conv2d depthwise 3×3": lambda t, g: dw(g),
        "conv2d dense 3×3": lambda t, g: dense(g),
        "bmm / matmul": lambda t, g: t @ t.transpose(1, 2),
        "scaled_dot_product_attention": lambda t, g: F.scaled_dot_product_attention(t, t, t),
        "layer_norm (nn.LayerNorm)": lambda t, g: ln(t),
        "batch_norm (eval)": lambda t, g: bn(g),
        "gelu": lambda t, g: F.gelu(t),
        "softmax": lambda t, g: t.softmax(-1),
        "fft.rfft2": lambda t, g: torch.fft.rfft2(g.float() if g.dtype == torch.bfloat16 else g, dim=(2, 3)),
        "add / mul": lambda t, g: t * t + t,
    }
    rows = []
    with torch.inference_mode():
        for name, fn in ops.items():
            cells = [name]
            for dt in (torch.float32, torch.bfloat16):
                t, g = tokens.to(dt), grid.to(dt)
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    try:
                        out = fn(t, g)
                        cells.append(str(out.dtype).removeprefix("torch."))
                    except RuntimeError as e:
                        cells.append(f"error: {str(e).splitlines()[0][:50]}")
            rows.append(cells)
    rows[9][2] += " (input cast to fp32 first, as the model does)"
    return rows


def module_dtypes(batch: int = 1) -> list[list[str]]:
    """Per module class under bf16 autocast inference: how many instances, with input and output dtypes."""
    model = archspec.create_model(SPEC, overrides=["drop_path_rate=0"]).eval()
    seen: collections.Counter[tuple[str, str, str]] = collections.Counter()

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        result = out[0] if isinstance(out, tuple) else out
        if first is not None and isinstance(result, torch.Tensor):
            short = {torch.float32: "fp32", torch.bfloat16: "bf16"}
            seen[type(module).__name__, short.get(first.dtype, str(first.dtype)), short.get(result.dtype, "?")] += 1

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        model(torch.randn(batch, 3, 224, 224))
    for h in handles:
        h.remove()
    return [[f"`{k[0]}`", k[1], k[2], str(n)] for k, n in sorted(seen.items())]


def _dw_gelu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, act: str | None) -> torch.Tensor:
    y = F.conv2d(x, w, b, padding=1, groups=x.shape[1])
    return y if act is None else F.gelu(y, approximate=act)


def _dw_gelu_fused(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._convolution_pointwise(x, w, b, [1, 1], [1, 1], [1, 1], x.shape[1], "gelu", [], "none")


def _attention_sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    F.scaled_dot_product_attention(q, k, v).sum().backward()


def _attention_unfused(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    ((q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5).softmax(-1) @ v).sum().backward()


def _ms(fn: Callable[..., object], *args: Any) -> str:
    timer = Timer("fn(*args)", globals={"fn": fn, "args": args}, num_threads=torch.get_num_threads())
    return f"{timer.blocked_autorange(min_run_time=0.5).median * 1e3:.2f}"


def micro() -> tuple[list[list[str]], list[list[str]]]:
    """Two components in isolation, at SpectFormer-H-S's batch-8 shapes: the PVT-v2 depthwise 3×3 conv and
    GELU (separate, tanh GELU, and oneDNN's fused conv+GELU), and attention forward+backward (SDPA's fused
    CPU kernel against the unfused bmm + softmax)."""
    rows, attention = [], []
    for c, h in ((512, 56), (1024, 28)):
        for dt in (torch.float32, torch.bfloat16):
            x = torch.randn(8, c, h, h).to(dt).contiguous(memory_format=torch.channels_last)
            w = torch.randn(c, 1, 3, 3).to(dt).contiguous(memory_format=torch.channels_last)
            b = torch.randn(c).to(dt)
            with torch.inference_mode():
                cells = [_ms(_dw_gelu, x, w, b, None), _ms(_dw_gelu, x, w, b, "none"), _ms(_dw_gelu, x, w, b, "tanh")]
                try:
                    cells.append(_ms(_dw_gelu_fused, x, w, b))
                except (RuntimeError, AttributeError):
                    cells.append("n/a")
            rows.append([f"(8, {c}, {h}, {h}) channels-last", str(dt)[6:], *cells])
    for heads, tokens in ((10, 196), (14, 49)):
        for dt in (torch.float32, torch.bfloat16):
            qkv = [torch.randn(8, heads, tokens, 32, dtype=dt, requires_grad=True) for _ in range(3)]
            attention.append([f"(8, {heads}, {tokens}, 32)", str(dt)[6:], _ms(_attention_unfused, *qkv),
                              _ms(_attention_sdpa, *qkv)])  # fmt: skip
    return rows, attention


def md(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per case, after 3 warm-up steps")
    parser.add_argument("--profile-steps", type=int, default=3, help="steps per case under the profiler")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--system-malloc", action="store_true", help="keep glibc's allocator settings")
    args = parser.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; choose from {', '.join(CASES)}")
    if not args.system_malloc:
        retain_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(machine_description(threads=args.threads))
    print()
    flops = archspec.plan(archspec.load_spec(SPEC)).flops
    cpu = torch.device("cpu")
    rates = {dt: matmul_rate(cpu, dt) for dt in ("float32", "bfloat16")}
    results = [run_case(c, args.repeats, args.profile_steps, flops) for c in cases]
    rates = {dt: max(r, matmul_rate(cpu, dt)) for dt, r in rates.items()}

    print(f"1024² GEMM (torch.mm, same run, faster of before/after): float32 {rates['float32'] / 1e9:.1f} GFLOP/s, "
          f"bfloat16 {rates['bfloat16'] / 1e9:.1f} GFLOP/s; plan FLOPs per image {flops / 1e9:.2f} G\n")  # fmt: skip
    rows = []
    for r in results:
        rate = r["flops"] / r["median_s"]
        mode = {"train": "train step", "inference": "inference_mode", "no_grad": "no_grad"}[r["mode"]]
        rows.append([r["name"], mode, str(r["batch"]), r["dtype"],
                     f"{r['median_s'] * 1e3:.1f} ({r['min_s'] * 1e3:.1f}–{r['max_s'] * 1e3:.1f})",
                     f"{r['profiled_s'] * 1e3:.1f}", f"{rate / 1e9:.1f}", f"{rate / rates[r['dtype']]:.0%}",
                     f"{rate / rates['bfloat16']:.0%}"])  # fmt: skip
    print(md(["case", "mode", "batch", "dtype", "ms median (min–max)", "ms profiled", "GFLOP/s",
              "of same-dtype GEMM", "of bf16 GEMM"], rows))  # fmt: skip
    print()

    print("Self CPU time per step by category (ms, and share of the profiled step's wall time):\n")
    header = ["category", *(r["name"] for r in results)]
    rows = []
    for cat in CATEGORIES:
        cells = [cat]
        for r in results:
            s = r["categories"].get(cat, 0.0)
            cells.append(f"{s * 1e3:.1f} ({s / r['profiled_s']:.0%})")
        rows.append(cells)
    untraced = ["untraced (Python, hooks, profiler)"]
    for r in results:
        rest = r["profiled_s"] - sum(r["categories"].values())
        untraced.append(f"{rest * 1e3:.1f} ({rest / r['profiled_s']:.0%})")
    rows.append(untraced)
    print(md(header, rows))
    print()

    for r in results:
        if r["dtype"] != "bfloat16":
            continue
        total_n, total_s = sum(r["casts"].values()), sum(r["cast_s"].values())
        print(f"dtype conversions (aten::_to_copy) in one step, {r['name']} (profiled with module labels): "
              f"{total_n:.0f} calls, {total_s * 1e3:.1f} ms inclusive\n")  # fmt: skip
        rows = [[k.split(" | ")[0], k.split(" | ")[1], f"{n:.0f}", f"{r['cast_s'][k] * 1e3:.2f}"]
                for k, n in sorted(r["casts"].items(), key=lambda kv: -r["cast_s"][kv[0]])]  # fmt: skip
        print(md(["direction", "module → op", "calls", "ms"], rows))
        print()

    print("Output dtype of each kind of operator under CPU bfloat16 autocast:\n")
    print(md(["operator", "fp32 input", "bf16 input"], autocast_table()))
    print()
    conv_rows, attention_rows = micro()
    print("Micro-benchmark, depthwise 3×3 conv + exact GELU at the stage-1/2 FFN shapes, inference (ms per call):\n")
    print(md(["input", "dtype", "conv alone", "conv, then GELU", "conv, then tanh GELU", "fused conv+GELU (oneDNN)"],
             conv_rows))  # fmt: skip
    print()
    print("Micro-benchmark, attention forward+backward at the stage-3/4 shapes (q, k, v each; ms per call):\n")
    print(md(["q shape", "dtype", "bmm + softmax + bmm", "F.scaled_dot_product_attention"], attention_rows))
    print()
    print("Module input/output dtypes in a bf16 autocast inference pass (batch 1):\n")
    print(md(["module", "input", "output", "instances"], module_dtypes()))


if __name__ == "__main__":
    main()
