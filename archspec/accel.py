"""The CPU speed paths, in one place, behind one switch.

Four paths make CPU work faster without changing what a model computes:

* **Token-Linear kernel choice** (:func:`token_linear`). A Linear over (B, N, C) tokens is one matrix
  product of B·N rows, which torch runs as MKL's ``addmm``. oneDNN runs the same product as a 1×1
  convolution over the tokens viewed as a channels-last (B, C, N, 1) grid. Which is faster depends on
  the CPU and on the shape: on a 2-core Intel Xeon with AVX512, oneDNN ran a 40 → 160 channel layer
  over 8 × 3136 tokens 1.4× as fast as MKL, yet ConvNeXt-Atto at batch 1 with every Linear sent to
  oneDNN took 1.17× as long. So the first call for each shape (rows, channels in and out, bias) times
  both, five calls each in alternation, and oneDNN serves that shape for the rest of the process only
  if its best time was under :data:`MARGIN` of MKL's, much as cuDNN's benchmark mode picks among
  convolution algorithms. Both compute the same sums in another order: their outputs agree to float32
  rounding. Training is timed apart from inference, forward and backward together: on a 2-core AMD
  EPYC, the 1×1 convolution's forward and backward took 0.5–0.7 of the Linear's at ConvNeXt's MLP
  shapes (batch 8), which made ConvNeXt-V2-Atto's training step 1.3× as long as timm's 1×1-conv MLP.
  The training route is :func:`torch.nn.functional.conv2d`, which autograd differentiates as usual;
  the timing runs on detached copies, so it leaves no gradient behind. The choice is made only for a
  plain ``nn.Linear`` on plain float32 CPU tensors with nothing watching the operators (see
  :func:`unwatched`): in inference mode and under autograd; and only for products of at least
  :data:`MIN_MACS` multiply-adds. Everywhere else (``torch.no_grad``, autocast, tracing) the Linear
  runs as ``nn.Linear`` does.

* **Fused conv + GELU** (:func:`conv_gelu`). PVT-v2's feed-forward network (SpectFormer-H's too) runs
  a 3×3 depthwise conv over its widest activations and then an exact GELU: two passes over a tensor
  of 8 × 3136 × 512 floats at batch 8 for SpectFormer-H-S's first stage. oneDNN applies the GELU as
  each conv output tile is written, so the second pass disappears; on an AMD EPYC machine (2 threads,
  channels-last) the pair ran 1.2–1.4× faster at every stage's shape, at batch 1 and 8, with outputs
  within 3e-7 of the two-step result. The fused kernel is taken only under ``torch.inference_mode``
  (nothing will differentiate the result), for an exact ``nn.Conv2d`` with zero padding and an exact
  ``nn.GELU``, neither hooked nor given its own ``forward``, on plain float32 CPU tensors, or on
  bfloat16 ones under CPU bfloat16 autocast on a CPU with native bfloat16 kernels (the weights are
  cast as autocast would cast them; the GELU is applied before the one rounding to bfloat16, where
  autocast's two steps round twice: SpectFormer-H-S's logits moved by at most 2 bfloat16 steps, and
  its batch-8 bfloat16 inference ran 1.09× as fast, 235 → 215 ms on a 2-core Intel Xeon with AMX),
  and only where nothing watches which operators run: not under float16 autocast, ``torch.compile``,
  ``torch.jit.trace``, FX tracing, a dispatch mode such as ``FlopCounterMode``, or a functorch
  transform. Everywhere else the two modules are called one after the other, so parameter counters,
  FLOP counters, hooks and export see them as usual.

* **Unfused bfloat16 attention** (:func:`bfloat16_attend`). ``F.scaled_dot_product_attention`` runs a
  fused (flash) kernel on the CPU; in bfloat16 and at short sequences that kernel is the slow way: on
  a 2-core AMD EPYC with AVX512-BF16, at SpectFormer-H-S's third-stage shape (batch 8, 10 heads, 196
  tokens) its forward took 4.3 ms where the product, softmax and product as three calls took 2.2, and
  its forward and backward together at the fourth stage's shape 7.1 ms against 1.0. So an exact
  :class:`~archspec.nn.Attention` is given an ``attend`` of its own that computes
  ``softmax(q kᵀ / √d + mask) v`` as three calls when the tensors are bfloat16 CPU tensors (under
  bfloat16 autocast, or a model built in bfloat16) on a CPU with native bfloat16 kernels, there is no
  dropout on the weights, a head holds at most :data:`UNFUSED_SCORES` scores (query × key tokens: at
  batch 8, 3136 × 196 ran faster fused), and nothing watches the operators. The probabilities are
  rounded to bfloat16 before the second product, as autocast rounds them in the plain formula;
  SpectFormer-H-S's bfloat16 logits stayed as far from the float32 ones as before (8.5e-3 of the
  largest logit). Its batch-8 bfloat16 inference went from 204 to 169 ms and its training step from
  695 to 591 ms (``benchmarks/bf16_profile.py``, before and after, same machine).
  Elsewhere the class's own ``attend`` (SDPA) runs.

* **Retained freed memory** (:func:`retain_freed_memory`), process-wide and therefore opt-in. glibc's
  ``malloc`` serves large blocks with fresh pages from ``mmap`` and hands them back to the kernel
  when they are freed. Its threshold starts at 128 KiB and never rises above 32 MiB, so every forward
  pass of a vision model asks the kernel for its big activations again, and the kernel zeroes each
  page on first touch. For SpectFormer-H-S at batch 8 on two cores that page-fault work was about a
  third of the forward time. :func:`retain_freed_memory` calls ``mallopt(M_MMAP_THRESHOLD, 1 GiB)``
  and ``mallopt(M_TRIM_THRESHOLD, 2 GiB - 1)``: blocks under 1 GiB then come from the heap, and freed
  heap memory goes back to the OS only beyond 2 GiB of free space. The same trade jemalloc and
  tcmalloc make, at a cost: it applies to every allocation of the process (Python's, NumPy's, any
  library's, not only torch's), the resident set stays near its peak instead of shrinking after a
  large forward pass, it works on glibc only (elsewhere it does nothing and returns False), and it
  cannot be undone for the rest of the process. :func:`archspec.builder.build` therefore leaves the
  allocator alone unless asked (``retain_memory=True``); the command-line tools that run models turn
  it on (``archspec bench`` unless ``--system-malloc``).

**The switch.** :func:`set_enabled` (``archspec.accel.set_enabled(False)``) or the environment
variable ``ARCHSPEC_ACCEL`` (``1``/``0``, also ``on``/``off``, ``true``/``false``, ``yes``/``no``;
unset or empty means on, read when this module is first imported; any other value is refused with
:class:`AccelSettingError`) turns all four off: the kernel paths fall back to the plain modules on
the next call, of models built before as well as after, and :func:`retain_freed_memory` leaves the
allocator alone and returns False. With the variable set to ``0`` before the build,
:func:`archspec.builder.build` attaches nothing at all (``build(..., accel=...)`` decides per model).

**How the paths reach a model.** The modules of :mod:`archspec.nn` are plain torch: ``FFN.forward``
calls ``self.fc1(x)``, ``PVT2FFN.forward`` calls ``self.act(self.dwconv(x, hw))``, and none of them
knows this module. :func:`apply` (which :func:`archspec.builder.build` calls) walks a built model and,
through the tables :data:`TOKEN_LINEARS`, :data:`FORWARDS` and :data:`ATTENDS`, gives chosen
instances a ``forward`` (an attention, an ``attend``) of their own: each token Linear (``fc1``,
``qkv``, ``proj``, ...) of an exact :class:`~archspec.nn.FFN`, :class:`~archspec.nn.Attention`, ...
gets :func:`token_linear`, each exact :class:`~archspec.nn.PVT2FFN` gets the forward that runs its
depthwise conv and GELU through :func:`conv_gelu`, and each exact :class:`~archspec.nn.Attention`
gets :func:`bfloat16_attend`. Nothing else changes: the classes, module tree, ``print(model)``, state_dict keys
and parameters are those of the plain model, and hooks on a Linear still fire (Module's ``__call__``
runs them around the forward). FX keeps ``nn.Linear`` a leaf; under ``torch.jit.trace``,
``torch.compile``, ``torch.export`` and FX the attached forwards see the tracer (see
:func:`unwatched`) and run the class's own computation. An attached forward refers to its module
weakly, so a model is freed as soon as it is dropped (no reference cycle), and copies and pickles of a
model carry their own. A ``forward`` someone else sets on an instance replaces accel's, which
:func:`remove` takes back off.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import functools
import os
import platform
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as _module

from archspec.errors import ArchspecError
from archspec.nn.attention import Attention
from archspec.nn.ffn import FFN, PVT2FFN, DWConv
from archspec.nn.layout import grid_to_tokens, tokens_to_grid
from archspec.nn.sepconv import SepConv
from archspec.nn.talking_heads import TalkingHeadsAttention
from archspec.nn.window_attention import WindowAttention

ENVIRONMENT_VARIABLE = "ARCHSPEC_ACCEL"
_ON = ("1", "on", "true", "yes")
_OFF = ("0", "off", "false", "no")


class AccelSettingError(ArchspecError):
    """``ARCHSPEC_ACCEL`` holds a value that is neither on nor off."""


def _from_environment(value: str | None) -> bool:
    """The switch as ``ARCHSPEC_ACCEL`` sets it: unset or empty is on; refuses what is neither on nor off."""
    text = (value or "").strip().lower()
    if not text or text in _ON:
        return True
    if text in _OFF:
        return False
    raise AccelSettingError(
        f"{ENVIRONMENT_VARIABLE}={value!r}: use 1 to turn archspec's CPU speed paths on or 0 to turn them off "
        f"(also {'/'.join(_ON[1:])} or {'/'.join(_OFF[1:])})"
    )


_enabled = _from_environment(os.environ.get(ENVIRONMENT_VARIABLE))


def set_enabled(enabled: bool) -> None:
    """Turn all three speed paths on or off for the process (see the module docstring).

    Off takes effect at the next call of every model's attached forwards, and makes
    :func:`retain_freed_memory` a no-op; memory already retained stays so (that cannot be undone).
    """
    global _enabled
    _enabled = bool(enabled)


def enabled() -> bool:
    """Whether the speed paths are on: ``ARCHSPEC_ACCEL``, then the last :func:`set_enabled`."""
    return _enabled


# --- the safety checks shared by both kernel paths ---------------------------------------------------

pointwise = (
    getattr(torch.ops.mkldnn, "_convolution_pointwise", None)
    if torch.backends.mkldnn.is_available()  # type: ignore[no-untyped-call]
    else None
)
"""oneDNN's convolution with a fused pointwise op, or None where this torch build has no oneDNN."""


def plain_module(layer: nn.Module, kind: type[nn.Module]) -> bool:
    """Exactly ``kind``, with its class's own forward (or one :func:`apply` attached) and no hook of its
    own or a global one."""
    forward = layer.__dict__.get("forward")
    return (
        type(layer) is kind
        # a forward replaced on the instance (adapters, offloading) is someone else's: leave it alone
        and (forward is None or isinstance(forward, _Attached))
        and not layer._forward_hooks
        and not layer._forward_pre_hooks
        and not _module._global_forward_hooks
        and not _module._global_forward_pre_hooks
    )


def unwatched(x: torch.Tensor, inference: bool = True) -> bool:
    """A plain float32 CPU tensor in inference mode (or, with ``inference=False``, under autograd), with
    nothing recording or transforming the ops."""
    return (
        not torch.compiler.is_compiling()  # first: the compiler then reads no further
        and type(x) is torch.Tensor  # also excludes FX proxies and tensor subclasses
        and (
            torch.is_inference_mode_enabled()
            if inference
            else torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
        )
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_autocast_enabled("cpu")
        and not torch._C._get_tracing_state()
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._functorch.is_functorch_wrapped_tensor(x)
    )


def under_bfloat16_autocast(x: torch.Tensor) -> bool:
    """A bfloat16 CPU tensor in inference mode, under CPU bfloat16 autocast, on a CPU with native bfloat16
    kernels, with nothing else recording or transforming the ops (as :func:`unwatched`, autocast aside)."""
    return (
        not torch.compiler.is_compiling()
        and type(x) is torch.Tensor
        and torch.is_inference_mode_enabled()
        and x.device.type == "cpu"
        and x.dtype == torch.bfloat16
        and torch.is_autocast_enabled("cpu")
        and torch.get_autocast_dtype("cpu") == torch.bfloat16
        and not torch._C._get_tracing_state()
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._functorch.is_functorch_wrapped_tensor(x)
        and _native_bfloat16()
    )


@functools.cache
def _native_bfloat16() -> bool:
    from archspec.runtime import cpu_has_native_bfloat16

    return cpu_has_native_bfloat16()


def plain_weight(layer: nn.Module) -> bool:
    """A float32 weight that is an ordinary parameter or tensor (not a subclass such as a quantised or sharded one)."""
    weight = layer.weight
    return type(weight) in (nn.Parameter, torch.Tensor) and weight.dtype == torch.float32


# --- fused conv + GELU ------------------------------------------------------------------------------


def _fusable(conv: nn.Module, act: nn.Module, x: torch.Tensor) -> bool:
    return (
        _enabled
        and pointwise is not None
        and plain_module(conv, nn.Conv2d)
        and plain_module(act, nn.GELU)
        and (unwatched(x) or under_bfloat16_autocast(x))
        and x.dim() == 4
        and x.shape[1] == conv.in_channels
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)  # "same" and "valid" are resolved by Conv2d itself
        and plain_weight(conv)
    )


def conv_gelu(conv: nn.Conv2d, act: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``act(conv(x))``, through the fused kernel where the module docstring says it is safe."""
    if not _fusable(conv, act, x):
        return cast("torch.Tensor", act(conv(x)))
    assert isinstance(act, nn.GELU) and pointwise is not None
    weight, bias = conv.weight, conv.bias
    if x.dtype == torch.bfloat16:  # what autocast would give conv2d: bfloat16 weights and output
        weight, bias = weight.to(torch.bfloat16), None if bias is None else bias.to(torch.bfloat16)
    out: torch.Tensor = pointwise(
        x, weight, bias, conv.padding, conv.stride, conv.dilation, conv.groups, "gelu", [], act.approximate
    )
    return out


def pvt2ffn_forward(ffn: PVT2FFN, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """:meth:`PVT2FFN.forward <archspec.nn.PVT2FFN.forward>` with its depthwise conv and activation
    through :func:`conv_gelu`: the same steps, in the same order."""
    if not (_enabled and plain_module(ffn.dwconv, DWConv)):
        # A hooked or replaced DWConv is called as a module, by the class's own forward.
        return PVT2FFN.forward(ffn, x, hw)
    x = ffn.fc1(x)
    grid = tokens_to_grid(x, hw)
    if _fusable(ffn.dwconv.dwconv, ffn.act, grid):
        # Nothing watches the wrapper, so its conv and the activation may run as one kernel.
        x = grid_to_tokens(conv_gelu(ffn.dwconv.dwconv, ffn.act, grid))
    else:
        # The class's steps: the activation over the (B, N, C) tokens. Over the 4-D grid view of the
        # same memory its backward took a third longer in bfloat16, and so did the conv's backward.
        x = ffn.act(ffn.dwconv(x, hw))
    if ffn.se is not None:
        x = ffn.se(x)
    x = F.dropout(x, ffn.drop, ffn.training)
    return F.dropout(ffn.fc2(x), ffn.drop, ffn.training)


# --- token-Linear kernel choice ---------------------------------------------------------------------

MIN_MACS = 1 << 22
"""Products smaller than this (4M multiply-adds, well under a millisecond) always go to MKL."""

MARGIN = 0.95
"""oneDNN's convolution serves a shape only if its best time is under this fraction of MKL's."""

_faster: dict[tuple[int, int, int, bool, bool], bool] = {}
"""Per shape (rows, in, out, bias) and route (training or not): whether oneDNN's convolution won the timing."""


def _as_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """What ``nn.Linear.forward`` computes (MKL's product on the CPU)."""
    return F.linear(x, layer.weight, layer.bias)


def _as_conv(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    assert pointwise is not None
    batch, tokens, _ = x.shape
    grid = x.view(batch, tokens, 1, layer.in_features).permute(0, 3, 1, 2)  # (B, C, N, 1), channels-last
    weight = layer.weight.view(layer.out_features, layer.in_features, 1, 1)
    out: torch.Tensor = pointwise(grid, weight, layer.bias, [0, 0], [1, 1], [1, 1], 1, "none", [], None)
    return out.permute(0, 2, 3, 1).reshape(batch, tokens, layer.out_features)


def _as_trainable_conv(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    batch, tokens, _ = x.shape
    grid = x.view(batch, tokens, 1, layer.in_features).permute(0, 3, 1, 2)  # (B, C, N, 1), channels-last
    weight = layer.weight.view(layer.out_features, layer.in_features, 1, 1)
    out = F.conv2d(grid, weight, layer.bias)  # (B, out, N, 1), channels-last
    return out.permute(0, 2, 3, 1).reshape(batch, tokens, layer.out_features)


def _trained_conv_is_faster(layer: nn.Linear, x: torch.Tensor) -> bool:
    """Time forward + backward of both routes on detached copies of the layer and the tokens, in a thread
    of its own: autograd's thread-local state (saved-tensor hooks, which activation checkpointing and
    memory probes install, anomaly mode) then never sees the probe's graph."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_time_training, layer, x).result()


def _time_training(layer: nn.Linear, x: torch.Tensor) -> bool:
    probe = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
    with torch.no_grad():
        probe.weight.copy_(layer.weight)
        if probe.bias is not None and layer.bias is not None:
            probe.bias.copy_(layer.bias)
    tokens = x.detach().requires_grad_(x.requires_grad)
    grad = torch.ones(*x.shape[:2], layer.out_features)
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for conv in (False, True):
            start = time.perf_counter()
            (_as_trainable_conv(probe, tokens) if conv else probe(tokens)).backward(grad)
            best[conv] = min(best[conv], time.perf_counter() - start)
    return best[True] < MARGIN * best[False]


def _conv_is_faster(layer: nn.Linear, x: torch.Tensor) -> bool:
    best = {False: float("inf"), True: float("inf")}
    for _ in range(5):
        for conv in (False, True):
            start = time.perf_counter()
            _as_conv(layer, x) if conv else _as_linear(layer, x)
            best[conv] = min(best[conv], time.perf_counter() - start)
    return best[True] < MARGIN * best[False]


def _eligible(layer: nn.Linear, x: torch.Tensor, training: bool) -> bool:
    return (
        pointwise is not None
        and plain_module(layer, nn.Linear)
        and unwatched(x, inference=not training)
        and x.is_contiguous()
        and x.shape[2] == layer.in_features
        and x.shape[0] * x.shape[1] * layer.in_features * layer.out_features >= MIN_MACS
        and plain_weight(layer)
        and layer.weight.is_contiguous()
    )


def _route(layer: nn.Linear, x: torch.Tensor) -> Callable[[nn.Linear, torch.Tensor], torch.Tensor] | None:
    """The conv route measured faster for this shape, or None where the Linear's own product serves."""
    # Proxies (FX) and graphs being compiled never reach the shape key: it would become control
    # flow, or specialise the graph to one batch size.
    if not _enabled or torch.compiler.is_compiling() or type(x) is not torch.Tensor or x.dim() != 3:
        return None
    training = torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    key = (x.shape[0] * x.shape[1], x.shape[2], layer.out_features, layer.bias is not None, training)
    conv = _faster.get(key)
    if conv is False or not _eligible(layer, x, training):  # a shape MKL won needs no further checks
        return None
    if conv is None:
        conv = _faster[key] = (_trained_conv_is_faster if training else _conv_is_faster)(layer, x)
    if not conv:
        return None
    return _as_trainable_conv if training else _as_conv


def token_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)`` for tokens (B, N, C), by the route measured faster for this shape (see the module docstring)."""
    route = _route(layer, x)
    return cast("torch.Tensor", layer(x)) if route is None else route(layer, x)


def token_linear_forward(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The ``forward`` :func:`apply` gives a token Linear: its own product, or the conv route measured faster."""
    route = _route(layer, x)
    return _as_linear(layer, x) if route is None else route(layer, x)


# --- unfused bfloat16 attention --------------------------------------------------------------------

UNFUSED_SCORES = 1 << 18
"""The most attention scores per head (query tokens × key tokens) :func:`bfloat16_attend` computes unfused."""


def _unfused_attention_pays(q: torch.Tensor, k: torch.Tensor, drop: float) -> bool:
    return (
        _enabled
        and not torch.compiler.is_compiling()
        and type(q) is torch.Tensor
        and q.device.type == "cpu"
        and q.dtype == torch.bfloat16
        and drop == 0.0
        and q.shape[-2] * k.shape[-2] <= UNFUSED_SCORES
        and not torch._C._get_tracing_state()
        and torch._C._len_torch_dispatch_stack() == 0
        and not torch._C._functorch.is_functorch_wrapped_tensor(q)
        and _native_bfloat16()
    )


def bfloat16_attend(
    module: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, drop: float
) -> torch.Tensor:
    """The ``attend`` :func:`apply` gives an :class:`~archspec.nn.Attention`: on bfloat16 CPU tensors with
    short enough sequences, the product, softmax and product as three calls; elsewhere the class's own."""
    if not _unfused_attention_pays(q, k, drop):
        return type(module).attend(module, q, k, v, mask, drop)
    scores = torch.matmul(q * q.shape[-1] ** -0.5, k.transpose(-2, -1))  # (B, h, N, M)
    if mask is not None:
        scores = scores + mask
    return torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)


# --- attaching the paths to a model -----------------------------------------------------------------

TOKEN_LINEARS: dict[type[nn.Module], tuple[str, ...]] = {
    FFN: ("fc1", "fc2"),
    PVT2FFN: ("fc1", "fc2"),
    Attention: ("qkv", "q", "kv", "proj"),
    WindowAttention: ("qkv", "proj"),
    TalkingHeadsAttention: ("qkv", "proj"),  # not proj_l and proj_w: they mix heads, not tokens
    SepConv: ("pwconv1", "pwconv2"),
}
"""For each module class (exactly that class), the children that are Linears over its (B, N, C) tokens."""

FORWARDS: dict[type[nn.Module], Callable[..., Any]] = {PVT2FFN: pvt2ffn_forward}
"""For each module class (exactly that class), accel's forward for its instances."""

ATTENDS: dict[type[nn.Module], Callable[..., Any]] = {Attention: bfloat16_attend}
"""For each module class (exactly that class), accel's ``attend`` (the attention itself) for its instances."""

ATTACHED = ("forward", "attend")
"""The instance attributes accel attaches functions as."""


class _Attached:
    """An instance's ``forward``: ``function(module, *args)``, with the module held weakly.

    A strong reference would make every model a reference cycle (module → forward → module), freed
    only by the cyclic garbage collector. Copies and pickles of the module carry a forward bound to
    the copy.
    """

    __slots__ = ("function", "module")

    def __init__(self, module: nn.Module, function: Callable[..., Any]) -> None:
        self.module = weakref.ref(module)
        self.function = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(self.module(), *args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Attached, (self.module(), self.function))

    def __deepcopy__(self, memo: dict[int, Any]) -> _Attached:
        module = self.module()
        assert module is not None  # the module's own __dict__ holds this
        return _Attached(copy.deepcopy(module, memo), self.function)


def _attach(module: nn.Module, function: Callable[..., Any], name: str = "forward") -> bool:
    if name in module.__dict__:  # someone's own, or accel's already
        return False
    setattr(module, name, _Attached(module, function))
    return True


def apply(model: nn.Module) -> int:
    """Attach the speed paths to the modules of ``model`` that :data:`TOKEN_LINEARS`, :data:`FORWARDS` and
    :data:`ATTENDS` name (see the module docstring); returns how many functions were attached. Idempotent."""
    attached = 0
    for module in model.modules():
        kind = type(module)
        for name in TOKEN_LINEARS.get(kind, ()):
            layer = module._modules.get(name)
            if type(layer) is nn.Linear:
                attached += _attach(layer, token_linear_forward)
        if kind in FORWARDS:
            attached += _attach(module, FORWARDS[kind])
        if kind in ATTENDS:
            attached += _attach(module, ATTENDS[kind], "attend")
    return attached


def remove(model: nn.Module) -> int:
    """Take the functions :func:`apply` attached back off ``model``'s modules; returns how many."""
    removed = 0
    for module in model.modules():
        for name in ATTACHED:
            if isinstance(module.__dict__.get(name), _Attached):
                delattr(module, name)
                removed += 1
    return removed


def attached(module: nn.Module) -> bool:
    """Whether ``module`` runs a function :func:`apply` attached (a ``forward``, or an attention's ``attend``)."""
    return any(isinstance(module.__dict__.get(name), _Attached) for name in ATTACHED)


# --- retained freed memory --------------------------------------------------------------------------

# mallopt(3) parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap and are reused after free
TRIM_THRESHOLD = (1 << 31) - 1  # give freed heap memory back only beyond 2 GiB of free space

_retained = False


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def retain_freed_memory() -> bool:
    """Keep freed memory for reuse instead of returning it to the OS (glibc only; idempotent).

    Returns True when the setting is in force, False where the C library is not glibc or the switch
    is off (then nothing changes). Once made, it lasts for the rest of the process and affects every
    allocation, not only torch's; the resident set stays near its peak. See the module docstring.
    """
    global _retained
    if _retained:
        return True
    if not _enabled:
        return False
    libc = _libc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _retained = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _retained


def freed_memory_retained() -> bool:
    """Whether :func:`retain_freed_memory` has taken effect in this process."""
    return _retained


def release_free_memory() -> bool:
    """Hand the memory that is free right now back to the OS (glibc's ``malloc_trim``); False elsewhere.

    Peak-memory measurements call this first, so memory kept by :func:`retain_freed_memory` for
    earlier work does not count towards the next measurement.
    """
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim.argtypes = [ctypes.c_size_t]
    libc.malloc_trim(0)
    return True
