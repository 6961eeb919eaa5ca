"""timm's model contract, FX tracing and the single training output, for every shipped spec (no timm needed)."""

from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.fx
from torch import nn

import archspec
from archspec.models import resolve_spec_path

ROOT = Path(__file__).resolve().parents[1]

SPECS = archspec.list_specs()
SMALL = ["input.size=64", "drop_path_rate=0"]


def _plan(name: str, sets: list[str] | None = None) -> archspec.Plan:
    return archspec.plan(archspec.load_spec(resolve_spec_path(name), sets or []))


def _small(name: str, **kwargs):
    return archspec.create_model(name, overrides=SMALL, **kwargs)


@pytest.mark.parametrize("name", SPECS)
def test_the_model_describes_itself_as_timm_does(name):
    model = archspec.create_model(name, device="meta")
    planned = _plan(name)
    assert model.feature_info.channels() == [stage.dim for stage in planned.stages]
    assert model.feature_info.module_name() == [f"block{i}" for i in range(1, len(planned.stages) + 1)]
    assert model.feature_info.reduction() == [224 // stage.grid[0] for stage in planned.stages]
    conv_head = getattr(planned.head.args, "conv", None)  # a pool head's conv widens what the pooling reads
    assert model.num_features == (conv_head["cout"] if conv_head else planned.stages[-1].dim)
    assert model.num_classes == planned.spec.num_classes
    classifier = model.get_classifier()
    assert isinstance(classifier, nn.Linear) and classifier.out_features == model.num_classes
    cfg = model.pretrained_cfg
    assert model.get_submodule(cfg["classifier"]) is classifier
    assert isinstance(model.get_submodule(cfg["first_conv"]), nn.Conv2d)
    assert cfg["input_size"] == (3, 224, 224) and cfg["num_classes"] == model.num_classes
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert model.default_cfg == cfg


def _layer_of(matcher: dict, name: str) -> tuple[float, ...] | None:
    """The ordinal timm's group_with_matcher gives a parameter name (None: the head, last)."""
    for ordinal, spec in enumerate(matcher.values()):
        for pattern, suffix in [(spec, None)] if isinstance(spec, str) else spec:
            found = re.match(pattern, name)
            if found:
                return (ordinal, *map(float, found.groups()), *(suffix or ()))
    return None


@pytest.mark.parametrize("name", SPECS)
def test_group_matcher_orders_stem_stages_and_head(name):
    model = archspec.create_model(name, device="meta")
    planned = _plan(name)
    fine, coarse = model.group_matcher(), model.group_matcher(coarse=True)
    for param in (n for n, _ in model.named_parameters()):
        layer = _layer_of(fine, param)
        if param.startswith(("head", "aux_head", "post_network", "cls_token", "conv_head")):
            assert layer is None, param  # the head (with CaiT's learned class token) is the last layer
        elif param.startswith("patch_embed1."):
            assert layer == (0.0,), param
        else:
            assert layer is not None and layer[0] == 1.0, param
            assert _layer_of(coarse, param) is not None, param
    # Fine groups: one per downsample and block; a stage's norm joins its last block (timm's 99999).
    layers = {_layer_of(fine, n) for n, _ in model.named_parameters()} - {None, (0.0,)}
    joined = {layer for layer in layers if layer[-1] != 99999}
    blocks = sum(len(stage.blocks) for stage in planned.stages)
    downsamples = {layer for layer in joined if layer[-1] == -1}
    assert len(joined) - len(downsamples) == blocks
    assert len(downsamples) <= len(planned.stages) - 1  # a downsample without parameters has no group


@pytest.mark.parametrize("name", ["spectformer", "convnext_atto", "deit_tiny_patch16_224", "convformer_s18"])
def test_forward_head_pre_logits(name):
    model = _small(name).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        pre = model.forward_head(features, pre_logits=True)
        assert pre.shape == (2, model.num_features)
        logits = model(x)
        torch.testing.assert_close(model.forward_head(features), logits)
        if isinstance(model.head, nn.Linear):
            torch.testing.assert_close(model.head(pre), logits)


def test_forward_intermediates_takes_timms_arguments():
    model = _small("pvt_v2_b0").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        final, maps = model.forward_intermediates(x)
        torch.testing.assert_close(final, model.forward_features(x))
        assert [tuple(m.shape) for m in maps] == [(1, 32, 16, 16), (1, 64, 8, 8), (1, 160, 4, 4), (1, 256, 2, 2)]
        last_two = model.forward_intermediates(x, indices=2, intermediates_only=True)
        assert [m.shape[1] for m in last_two] == [160, 256]
        negative = model.forward_intermediates(x, indices=[-1], intermediates_only=True, norm=True)
        backbone = archspec.models.backbone(model, _plan("pvt_v2_b0", SMALL), (1, 3))
        expected = backbone(x)
        torch.testing.assert_close(negative[0], expected["stage4"])  # with norm=True the last map is normed
        torch.testing.assert_close(last_two[1], maps[3])  # without: as the head reads it
        tokens = model.forward_intermediates(x, indices=[1], output_fmt="NLC", stop_early=True)
        assert tokens[1][0].shape == (1, 64, 64)
        torch.testing.assert_close(tokens[1][0], expected["stage2"].flatten(2).transpose(1, 2))
    with pytest.raises(ValueError, match=r"^indices \(4,\) must name stages 0–3 \(or −4–−1\)$"):
        model.forward_intermediates(x, indices=[4])
    with pytest.raises(ValueError, match=r"^output_fmt must be 'NCHW' or 'NLC', got 'NHWC'$"):
        model.forward_intermediates(x, output_fmt="NHWC")


def _saved_bytes(model: nn.Module, x: torch.Tensor) -> tuple[int, dict[str, torch.Tensor]]:
    """Bytes of the activations autograd keeps for the backward pass, and the gradients."""
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += tensor.numel() * tensor.element_size()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = model(x)
    loss = sum(o.square().mean() for o in (out.values() if isinstance(out, dict) else [out]))
    loss.backward()
    return total, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("features_only", [False, True], ids=["classifier", "features"])
def test_grad_checkpointing_gives_equal_gradients_and_keeps_less(features_only):
    model = _small("spectformer", features_only=features_only).train()
    x = torch.randn(2, 3, 64, 64)
    kept, grads = _saved_bytes(model, x)
    model.set_grad_checkpointing()
    kept_checkpointed, grads_checkpointed = _saved_bytes(model, x)
    assert grads.keys() == grads_checkpointed.keys() == {n for n, _ in model.named_parameters()}
    for name, grad in grads.items():
        torch.testing.assert_close(grads_checkpointed[name], grad, rtol=0, atol=0, msg=name)
    assert kept_checkpointed < kept / 2, (kept_checkpointed, kept)
    model.set_grad_checkpointing(False)
    assert _saved_bytes(model, x)[0] == kept


# One spec of each family and head type runs for real; the others are traced on the meta device.
FAMILIES = ["spectformer", "spectformer-h-s", "gfnet-ti", "deit_tiny_patch16_224", "pvt_v2_b0", "poolformer_s12",
            "caformer_s18", "convnext_atto", "resnet18"]  # fmt: skip


@pytest.mark.parametrize("name", SPECS)
def test_every_spec_is_fx_traceable(name):
    """torch.fx.symbolic_trace (what torchvision's create_feature_extractor runs) traces the classifier and
    the backbone of every spec, with no Python branch on a traced value."""
    for model in (
        archspec.create_model(name, device="meta"),
        archspec.create_model(name, device="meta", features_only=True),
    ):
        traced = torch.fx.symbolic_trace(model)
        first = next(node for node in traced.graph.nodes if node.op == "call_function")
        assert first.target.__name__ == "check_image_batch"  # recorded as one call, not traced into


@pytest.mark.parametrize("name", FAMILIES)
def test_a_traced_model_computes_what_the_eager_one_does(name):
    x = torch.randn(1, 3, 64, 64)
    for model in (_small(name).eval(), _small(name, features_only=True).eval()):
        traced = torch.fx.symbolic_trace(model)
        with torch.no_grad():
            want, got = model(x), traced(x)
        if isinstance(want, dict):
            assert isinstance(want, OrderedDict) and list(got) == list(want)
            want, got = list(want.values()), list(got.values())
        torch.testing.assert_close(got, want)


def test_a_traced_model_still_refuses_a_wrong_input():
    traced = torch.fx.symbolic_trace(_small("spectformer").eval())
    with pytest.raises(archspec.nn.backbone.InputShapeError, match=r"expects 3 input channels"):
        traced(torch.randn(1, 4, 64, 64))


@pytest.mark.parametrize("name", FAMILIES)
def test_one_tensor_out_in_training_and_every_parameter_learns(name):
    model = archspec.create_model(name, overrides=[*SMALL, "num_classes=3"]).train()
    out = model(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3)
    out.logsumexp(-1).mean().backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_reset_classifier_takes_timms_global_pool():
    model = _small("convnext_atto")
    model.reset_classifier(4, global_pool="avg")
    assert model.num_classes == 4 and model.get_classifier().out_features == 4
    with pytest.raises(ValueError, match=r"^this head pools by 'avg'; global_pool='max' would need another head type$"):
        model.reset_classifier(4, global_pool="max")
    model.reset_classifier(0)
    assert model.num_classes == 0
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, model.num_features)


def test_token_labelling_needs_an_aux_head():
    with pytest.raises(ValueError, match=r"^resnet18 has no aux_head: token labelling needs head.type "):
        archspec.nn.TokenLabelling(archspec.create_model("resnet18", device="meta"))


def test_timm_registration_names():
    from archspec.timm import timm_name

    assert timm_name("spectformer-h-s") == "archspec_spectformer_h_s"
    assert timm_name("specs/my.variant-2.yaml") == "archspec_my_variant_2"


def test_register_without_timm_says_how_to_get_it():
    try:
        import timm  # noqa: F401
    except ImportError:
        import archspec.timm

        with pytest.raises(archspec.ArchspecError, match=r"^archspec.timm.register needs timm: pip install timm$"):
            archspec.timm.register()
    else:
        pytest.skip("timm is installed here; tests/test_clients.py registers with it")


PEAK = """\
import sys
import torch
import archspec

def status(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))

torch.set_num_threads(1)
# retain_memory=False: the environment's glibc settings decide, so freed activations go back to the OS.
model = archspec.create_model("spectformer", overrides=["input.size=128", "drop_path_rate=0"], retain_memory=False)
model.train()
model.set_grad_checkpointing(sys.argv[1] == "on")
x = torch.randn(16, 3, 128, 128)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak resident size (VmHWM) to the present one
before = status("VmRSS")
model(x).logsumexp(-1).mean().backward()
print(status("VmHWM") - before)
"""


def test_grad_checkpointing_lowers_the_peak_memory_of_a_training_step(tmp_path):
    """The process's peak resident memory during one forward and backward pass (Linux's VmHWM, reset
    after the build), in a fresh process each way."""
    import os
    import subprocess
    import sys

    script = tmp_path / "peak.py"
    script.write_text(PEAK)
    # A fixed mmap threshold makes glibc return every large block when it is freed, so the peak
    # resident size follows the memory in use rather than the heap's high-water mark.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MALLOC_MMAP_THRESHOLD_": "65536", "PYTHONPATH": str(ROOT)}
    rises = {}
    for mode in ("off", "on"):
        run = subprocess.run([sys.executable, str(script), mode], capture_output=True, text=True, check=True, env=env)
        rises[mode] = int(run.stdout)
    # KiB above the built model's peak: gradients (the same in both) plus activations. Measured:
    # about 440 MB without checkpointing and 270 MB with it.
    assert rises["on"] < 0.7 * rises["off"], rises


def test_coarse_groups_are_whole_stages():
    model = archspec.create_model("pvt_v2_b0", device="meta")
    coarse = model.group_matcher(coarse=True)
    groups: dict[tuple[float, ...] | None, set[str]] = {}
    for name, _ in model.named_parameters():
        groups.setdefault(_layer_of(coarse, name), set()).add(name.split(".")[0])
    assert groups == {
        (0.0,): {"patch_embed1"},
        (1.0, 1.0): {"block1", "norm1"},
        (1.0, 2.0): {"patch_embed2", "block2", "norm2"},
        (1.0, 3.0): {"patch_embed3", "block3", "norm3"},
        (1.0, 4.0): {"patch_embed4", "block4", "norm4"},
        None: {"head"},
    }


def test_feature_info_counts_stages_as_timm_does():
    features = archspec.create_model("pvt_v2_b0", features_only=True, out_indices=(1, 3), device="meta")
    info = features.feature_info
    assert info.out_indices == (1, 3)
    assert info.channels() == features.out_channels == [64, 256]
    assert info.channels(3) == 256 and info.channels(0) == 32 and info.reduction([0, 2]) == [4, 16]
    assert info == [
        {"num_chs": 64, "reduction": 8, "module": "stage2", "stage": 1},
        {"num_chs": 256, "reduction": 32, "module": "stage4", "stage": 3},
    ]
    assert archspec.create_model("pvt_v2_b0", features_only=True, out_indices=2, device="meta").out_indices == (2, 3)
    assert archspec.create_model("pvt_v2_b0", features_only=True, out_indices=(-1,), device="meta").out_indices == (3,)


MLP_HEADS = [name for name in SPECS if getattr(_plan(name).head.args, "hidden", None) is not None]


def test_the_shipped_mlp_heads_say_what_their_features_are():
    """timm's widths: MobileNetV3 and MaxViT keep their hidden layer without classes, MetaFormer does not."""
    widths = {}
    for name in MLP_HEADS:
        model = archspec.create_model(name, device="meta")
        widths[name] = (model.num_features, model.head_hidden_size)
    assert widths == {
        "caformer_s18": (512, 512),
        "convformer_s18": (512, 512),
        "maxvit_tiny_tf_224": (512, 512),
        "mobilenetv3_large_100": (960, 1280),
    }


@pytest.mark.parametrize("name", MLP_HEADS)
def test_an_mlp_head_without_classes_gives_what_pre_logits_gives(name):
    model = _small(name).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        assert pre.shape == (1, model.head_hidden_size)
        if model.hidden_features:  # the classifier is fc2 alone and reads the hidden layer
            torch.testing.assert_close(model.get_classifier()(pre), logits)
        model.reset_classifier(0)
        assert model.num_classes == 0
        torch.testing.assert_close(model(x), pre)
        model.reset_classifier(3)
        assert model(x).shape == (1, 3) and model.num_classes == 3


def test_num_classes_zero_gives_the_pooled_features():
    for name in ("caformer_s18", "spectformer-h-s", "deit_tiny_patch16_224"):
        model = archspec.create_model(name, num_classes=0, overrides=SMALL).eval()
        assert model.num_classes == 0 and model.head_hidden_size == model.num_features
        with torch.no_grad():
            x = torch.randn(1, 3, 64, 64)
            features = model.forward_features(x)
            out = model(x)
            assert out.shape == (1, model.num_features)
            torch.testing.assert_close(out, model.forward_head(features, pre_logits=True))
