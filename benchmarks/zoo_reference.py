"""Build reference vision models with their own implementations and record them as small JSON files.

Each model (timm's ViT/DeiT, CaiT, PVTv2, Swin, MetaFormer, ConvNeXt (V1, V2), MLP-Mixer, ResMLP,
ResNet, RegNetY, EfficientNet, MobileNet (V2, V3), MaxViT and CoAtNet models, and the official GFNet /
GFNet-H) is built in eval mode, given the seeded weights of :func:`archspec.testing.seeded_state_dict` (the names
and shapes come from the model's own ``state_dict``, buffers included, in order) and run on
:func:`archspec.testing.seeded_input`. One file per model goes to ``tests/data/zoo/<name>.json`` with
the reference and constructor used, the parameter count, the state_dict names and shapes, the leaf
modules and the logits, so that the tests can check archspec's models against them without timm or the
GFNet code installed.

The reference code is not a dependency of archspec; install it in a separate virtual environment::

    python -m venv /tmp/refvenv
    PIP_CONFIG_FILE=/dev/null /tmp/refvenv/bin/pip install torch==2.14.1 torchvision==0.29.1 timm==1.0.31

GFNet is not part of timm. Take ``gfnet.py`` from https://github.com/raoyongming/GFNet at the commit
pinned in ``GFNET_COMMIT`` and keep it outside this repository::

    git clone https://github.com/raoyongming/GFNet /tmp/GFNet-src
    mkdir -p /tmp/gfnet && git -C /tmp/GFNet-src show <GFNET_COMMIT>:gfnet.py > /tmp/gfnet/gfnet.py

Then, from the repository root::

    /tmp/refvenv/bin/python benchmarks/zoo_reference.py --gfnet-code /tmp/gfnet
    /tmp/refvenv/bin/python benchmarks/zoo_reference.py --only resnet18 convnext_atto

Without ``--gfnet-code`` the GFNet models are skipped. The GFNet sizes are those that the repository's
``main_gfnet.py --arch`` builds at the default 224×224 input. The script stops with an error when a
model's parameter count differs from the expected one or its seeded logits are not finite or collapse.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import sys
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
TIMM_VERSION = "1.0.31"
GFNET_REPO = "raoyongming/GFNet"
GFNET_COMMIT = "2de48b626ea805de82a7f389fed930af1ae0340d"
WEIGHTS_SEED = 0
INPUT = {"batch": 2, "channels": 3, "height": 224, "width": 224, "seed": 1}
NUM_CLASSES = 1000
MIN_LOGIT_STD = 1e-3

TIMM_MODELS: dict[str, int] = {
    "deit_tiny_patch16_224": 5_717_416,
    "deit_small_patch16_224": 22_050_664,
    "pvt_v2_b0": 3_666_760,
    "pvt_v2_b1": 14_009_000,
    "pvt_v2_b2": 25_362_856,
    "poolformer_s12": 11_915_176,
    "poolformerv2_s12": 11_891_712,
    "convformer_s18": 26_774_448,
    "caformer_s18": 26_341_656,
    "convnext_atto": 3_695_520,
    "convnext_tiny": 28_589_128,
    "resnet18": 11_689_512,
    "resnet50": 25_557_032,
    "vit_base_patch16_224": 86_567_656,
    "swin_tiny_patch4_window7_224": 28_288_354,
    "mixer_b16_224": 59_880_472,
    "efficientnet_b0": 5_288_548,
    "mobilenetv2_100": 3_504_872,
    "mobilenetv3_large_100": 5_483_032,
    "regnety_004": 4_344_144,
    "convnextv2_atto": 3_708_400,
    "maxvit_tiny_tf_224": 30_916_528,
    "coatnet_0_rw_224": 27_435_562,
    "resmlp_12_224": 15_350_872,
    "cait_xxs24_224": 11_956_264,
}

# GFNet constructor arguments exactly as main_gfnet.py passes them for each --arch (img_size is its
# default --input-size); every one also gets norm_layer=partial(nn.LayerNorm, eps=1e-6).
GFNET_MODELS: dict[str, tuple[str, dict[str, Any], int]] = {
    "gfnet-ti": (
        "GFNet",
        {"img_size": 224, "patch_size": 16, "embed_dim": 256, "depth": 12, "mlp_ratio": 4},
        7_511_784,
    ),
    "gfnet-h-ti": (
        "GFNetPyramid",
        {
            "img_size": 224,
            "patch_size": 4,
            "embed_dim": [64, 128, 256, 512],
            "depth": [3, 3, 10, 3],
            "mlp_ratio": [4, 4, 4, 4],
            "drop_path_rate": 0.1,
        },
        15_085_096,
    ),
    "gfnet-h-s": (
        "GFNetPyramid",
        {
            "img_size": 224,
            "patch_size": 4,
            "embed_dim": [96, 192, 384, 768],
            "depth": [3, 3, 10, 3],
            "mlp_ratio": [4, 4, 4, 4],
            "drop_path_rate": 0.2,
            "init_values": 1e-5,
        },
        32_162_632,
    ),
}
GFNET_NORM = "norm_layer=partial(nn.LayerNorm, eps=1e-6)"


@dataclass(frozen=True)
class Reference:
    """One model to record: how to build it and what it should come to."""

    name: str
    reference: str
    constructor: str
    params: int
    build: Callable[[], nn.Module]


class ReferenceError(RuntimeError):
    """A reference model did not build, load or run as expected."""


def load_testing() -> types.ModuleType:
    """``archspec/testing.py`` loaded by path, so that archspec and its dependencies need not be installed."""
    path = ROOT / "archspec" / "testing.py"
    spec = importlib.util.spec_from_file_location("archspec_testing", path)
    if spec is None or spec.loader is None:
        raise ReferenceError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timm_references() -> list[Reference]:
    def builder(name: str) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            import timm

            if timm.__version__ != TIMM_VERSION:
                raise ReferenceError(f"timm {timm.__version__} is installed; the reference is timm {TIMM_VERSION}")
            model: nn.Module = timm.create_model(name, pretrained=False, num_classes=NUM_CLASSES)
            return model

        return build

    return [
        Reference(
            name=name,
            reference=f"timm {TIMM_VERSION}",
            constructor=f"timm.create_model({name!r}, num_classes={NUM_CLASSES})",
            params=params,
            build=builder(name),
        )
        for name, params in TIMM_MODELS.items()
    ]


@cache
def import_gfnet(code_dir: Path) -> types.ModuleType:
    """The official ``gfnet.py`` from ``code_dir``, with shims for names that newer libraries dropped."""
    if not (code_dir / "gfnet.py").is_file():
        raise ReferenceError(f"no gfnet.py in {code_dir}")
    # gfnet.py imports ``pad`` from numpy.lib.arraypad (unused), a module numpy 2 made private.
    if importlib.util.find_spec("numpy.lib.arraypad") is None:
        import numpy

        shim = types.ModuleType("numpy.lib.arraypad")
        shim.pad = numpy.pad  # type: ignore[attr-defined]
        sys.modules["numpy.lib.arraypad"] = shim
    sys.path.insert(0, str(code_dir))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # timm.models.layers is deprecated, still present
        import gfnet  # type: ignore[import-not-found]
    return gfnet  # type: ignore[no-any-return]


def gfnet_references(code_dir: Path, commit: str) -> list[Reference]:
    def builder(cls_name: str, kwargs: dict[str, Any]) -> Callable[[], nn.Module]:
        def build() -> nn.Module:
            gfnet = import_gfnet(code_dir)
            with contextlib.redirect_stdout(io.StringIO()):  # the constructors print their drop-path setting
                model: nn.Module = getattr(gfnet, cls_name)(**kwargs, norm_layer=partial(nn.LayerNorm, eps=1e-6))
            return model

        return build

    refs = []
    for name, (cls_name, kwargs, params) in GFNET_MODELS.items():
        args = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
        refs.append(
            Reference(
                name=name,
                reference=f"GFNet {GFNET_REPO}@{commit} gfnet.py",
                constructor=f"{cls_name}({args}, {GFNET_NORM})",
                params=params,
                build=builder(cls_name, kwargs),
            )
        )
    return refs


def leaf_modules(model: nn.Module) -> list[list[str]]:
    return [[name, type(module).__name__] for name, module in model.named_modules() if not any(module.children())]


def record(ref: Reference, testing: types.ModuleType) -> dict[str, Any]:
    """Build, seed and run one model; the JSON document for it."""
    model = ref.build().eval()
    params = sum(p.numel() for p in model.parameters())
    if params != ref.params:
        raise ReferenceError(f"{ref.name}: built with {params:,} parameters, expected {ref.params:,}")

    own = model.state_dict()
    shapes = [(key, list(value.shape)) for key, value in own.items()]
    weights = testing.seeded_state_dict(shapes, seed=WEIGHTS_SEED)
    wrong = [f"{k} ({own[k].dtype} vs seeded {weights[k].dtype})" for k in own if own[k].dtype != weights[k].dtype]
    if wrong:
        raise ReferenceError(f"{ref.name}: dtype mismatch: {', '.join(wrong)}")
    model.load_state_dict(weights, strict=True)

    x = testing.seeded_input(INPUT["batch"], INPUT["channels"], INPUT["height"], INPUT["width"], seed=INPUT["seed"])
    with torch.no_grad():
        logits = model(x)
    expected_shape = (INPUT["batch"], NUM_CLASSES)
    if tuple(logits.shape) != expected_shape:
        raise ReferenceError(f"{ref.name}: logits shape {tuple(logits.shape)}, expected {expected_shape}")
    if not torch.isfinite(logits).all():
        raise ReferenceError(f"{ref.name}: seeded logits are not finite")
    std = logits.std(dim=1).min().item()
    peak = logits.abs().max().item()
    print(f"{ref.name}: {params:,} params, logits std {std:.4g} (lowest over batch), max |logit| {peak:.4g}")
    if std <= MIN_LOGIT_STD:
        raise ReferenceError(f"{ref.name}: seeded logits collapse (std across classes {std:.3g})")

    return {
        "name": ref.name,
        "reference": ref.reference,
        "constructor": ref.constructor,
        "params": params,
        "weights_seed": WEIGHTS_SEED,
        "input": INPUT,
        "state_dict": shapes,
        "modules": leaf_modules(model),
        "logits": [[float(f"{v:.7g}") for v in row] for row in logits.tolist()],
    }


def dumps(doc: dict[str, Any]) -> str:
    """Compact JSON with one line per top-level key, state_dict entry, module and logits row."""
    lines = []
    for key, value in doc.items():
        if isinstance(value, list) and value:
            items = ",\n  ".join(json.dumps(item, separators=(", ", ": ")) for item in value)
            text = f"[\n  {items}\n ]"
        else:
            text = json.dumps(value, separators=(", ", ": "))
        lines.append(f" {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data" / "zoo", help="output folder")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="record only these models")
    parser.add_argument("--gfnet-code", type=Path, metavar="DIR", help="folder holding the official gfnet.py")
    parser.add_argument("--gfnet-commit", default=GFNET_COMMIT, help="GFNet commit that gfnet.py comes from")
    args = parser.parse_args(argv)

    torch.set_num_threads(2)
    refs = timm_references()
    if args.gfnet_code is not None:
        refs += gfnet_references(args.gfnet_code.resolve(), args.gfnet_commit)
    else:
        print(f"skipping {', '.join(GFNET_MODELS)}: no --gfnet-code given")
    known = set(TIMM_MODELS) | set(GFNET_MODELS)
    if args.only:
        unknown = sorted(set(args.only) - known)
        if unknown:
            parser.error(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        refs = [ref for ref in refs if ref.name in args.only]

    testing = load_testing()
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for ref in refs:
        try:
            doc = record(ref, testing)
        except ReferenceError as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        text = dumps(doc)
        assert json.loads(text) == json.loads(json.dumps(doc)), "layout changed the document"
        path = args.out / f"{ref.name}.json"
        path.write_text(text)
        print(f"  wrote {path} ({len(text) / 1024:.0f} KiB)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
