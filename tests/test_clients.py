"""The libraries people train and deploy with, run on archspec models as their users run them.

These need timm, torchvision, Lightning, ptflops, fvcore and torchinfo, which CI's CPU torch
cannot have (torchvision's wheels there are CUDA builds): each test is skipped where its library is
missing. Run them in an environment that has them (see the README's "Other libraries" section):

    python -m pytest tests/test_clients.py -p no:cacheprovider
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import archspec

SMALL = ["input.size=64"]  # keeps every model here to a fraction of a second per step


def _model(name: str = "spectformer", **kwargs):
    return archspec.create_model(name, overrides=[*SMALL, "drop_path_rate=0"], **kwargs)


# --- timm -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def timm():
    timm = pytest.importorskip("timm")
    import archspec.timm

    archspec.timm.register()
    return timm


def test_timm_create_model_builds_every_shipped_spec(timm):
    for name in archspec.list_specs():
        model = timm.create_model(archspec.timm.timm_name(name), num_classes=7, pretrained=False, device="meta")
        assert model.num_classes == 7, name
        assert timm.is_model(archspec.timm.timm_name(name))
    model = timm.create_model("archspec_spectformer", img_size=64, num_classes=5, drop_rate=0.0, in_chans=3)
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)
    config = timm.data.resolve_data_config(model=model)
    assert config == {"input_size": (3, 64, 64), "interpolation": "bicubic", "mean": (0.485, 0.456, 0.406),
                      "std": (0.229, 0.224, 0.225), "crop_pct": 0.875, "crop_mode": "center"}  # fmt: skip
    features = timm.create_model("archspec_pvt_v2_b0", features_only=True, out_indices=(1, 3), img_size=64)
    assert features.feature_info.channels() == [64, 256] and features.feature_info.reduction() == [8, 32]


def test_timm_arguments_archspec_cannot_honour_are_refused_by_name(timm, tmp_path):
    headless = timm.create_model("archspec_pvt_v2_b0", num_classes=0, img_size=64)
    assert headless.num_classes == 0 and headless(torch.randn(1, 3, 64, 64)).shape == (1, 256)
    with pytest.raises(ValueError, match=r"^archspec_spectformer_h_s: drop_rate=0.1 needs a head with dropout"):
        timm.create_model("archspec_spectformer_h_s", drop_rate=0.1)
    with pytest.raises(TypeError, match=r"^archspec_resnet18: unexpected arguments bn_eps$"):
        timm.create_model("archspec_resnet18", bn_eps=1e-3)
    with pytest.raises(ValueError, match=r"^archspec_resnet18: archspec specs ship no weights"):
        timm.create_model("archspec_resnet18", pretrained=True)
    copy = tmp_path / "resnet18.yaml"
    copy.write_text("extends: pvt_v2_b0\n")
    with pytest.raises(
        archspec.ArchspecError, match=r"as 'archspec_resnet18' with timm: .*resnet18.yaml has that name"
    ):
        archspec.timm.register(copy)
    assert "archspec_resnet18" not in archspec.timm.__all__


def test_timm_layer_decay_gives_each_layer_its_own_rate(timm):
    from timm.optim import create_optimizer_v2

    model = _model()
    planned = archspec.plan(archspec.load_spec(archspec.models.resolve_spec_path("spectformer"), SMALL))
    blocks = sum(len(stage.blocks) for stage in planned.stages)
    layers = 1 + (len(planned.stages) - 1) + blocks + 1  # stem, downsamples, blocks, head
    optimizer = create_optimizer_v2(model, "adamw", lr=1e-3, weight_decay=0.05, layer_decay=0.75)
    scales = sorted({group["lr_scale"] for group in optimizer.param_groups}, reverse=True)
    assert len(scales) == layers
    assert scales == pytest.approx([0.75**i for i in range(layers)])
    by_name = {id(p): g["lr_scale"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert by_name[id(named["head.weight"])] == 1.0
    assert by_name[id(named["patch_embed1.conv.0.weight"])] == pytest.approx(0.75 ** (layers - 1))
    # A stage's end norm shares its last block's rate.
    last = len(planned.stages[0].blocks) - 1
    assert by_name[id(named["norm1.weight"])] == by_name[id(named[f"block1.{last}.norm1.weight"])]


def test_timm_ema_mixup_and_soft_target_cross_entropy(timm):
    from timm.data import Mixup
    from timm.loss import SoftTargetCrossEntropy
    from timm.utils import ModelEmaV3

    model = _model(num_classes=10).train()
    ema = ModelEmaV3(model, decay=0.5)
    mixup = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, labels = mixup(torch.randn(4, 3, 64, 64), torch.tensor([0, 3, 5, 9]))
    loss = SoftTargetCrossEntropy()(model(images), labels)
    loss.backward()
    assert [name for name, p in model.named_parameters() if p.grad is None] == []
    optimizer.step()
    before = ema.module.head.weight.clone()
    ema.update(model)
    torch.testing.assert_close(ema.module.head.weight, 0.5 * before + 0.5 * model.head.weight.detach())
    assert ema.module.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 10)


# --- torchvision -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def torchvision():
    return pytest.importorskip("torchvision")


def test_torchvision_fpn_takes_the_backbone_as_it_is(torchvision):
    from torchvision.models.detection.backbone_utils import BackboneWithFPN

    backbone = _model("pvt_v2_b0", features_only=True)
    layers = {name: str(i) for i, name in enumerate(backbone.feature_info.module_name())}
    fpn = BackboneWithFPN(backbone, layers, backbone.out_channels, out_channels=32)
    out = fpn(torch.randn(1, 3, 64, 64))
    assert {name: tuple(t.shape) for name, t in out.items()} == {
        "0": (1, 32, 16, 16), "1": (1, 32, 8, 8), "2": (1, 32, 4, 4), "3": (1, 32, 2, 2), "pool": (1, 32, 1, 1)
    }  # fmt: skip


# Stochastic depth adds nodes in training; torchvision notes it, as it does for timm's models.
@pytest.mark.filterwarnings("ignore:NOTE. The nodes obtained by tracing the model in eval mode:UserWarning")
@pytest.mark.parametrize("name", archspec.list_specs())
def test_torchvision_create_feature_extractor_traces_every_spec(torchvision, name):
    from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

    model = archspec.create_model(name, overrides=SMALL).eval()
    nodes = get_graph_node_names(model)[1]
    stages = len(_plan(name).stages)
    assert f"norm{stages}" in nodes and "check_image_batch" in nodes  # the input check is one node
    wanted = {"norm1": "stage1", f"norm{stages}": "last"} if stages > 1 else {"norm1": "last"}
    extractor = create_feature_extractor(model, return_nodes=wanted)
    with torch.no_grad():
        out = extractor(torch.randn(1, 3, 64, 64))
    assert list(out) == list(wanted.values())
    assert out[next(iter(out))].shape[-1] == _plan(name).stages[0].dim  # tokens (B, N, C) of stage 1


def test_torchvision_feature_extractor_on_a_real_model_matches_forward_intermediates(torchvision):
    from torchvision.models.feature_extraction import create_feature_extractor

    model = _model("spectformer").eval()
    extractor = create_feature_extractor(model, return_nodes={"norm2": "stage2", "head": "logits"})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        out = extractor(x)
        torch.testing.assert_close(out["logits"], model(x))
        stage2 = model.forward_intermediates(x, indices=[1], intermediates_only=True)[0]
    torch.testing.assert_close(out["stage2"].transpose(1, 2).reshape(stage2.shape), stage2)


def test_torchvision_faster_rcnn_trains_two_steps(torchvision):
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import BackboneWithFPN

    backbone = archspec.create_model("resnet18", features_only=True, overrides=["input.size=128"])  # 4 maps + pool
    layers = {name: str(i) for i, name in enumerate(backbone.feature_info.module_name())}
    detector = FasterRCNN(BackboneWithFPN(backbone, layers, backbone.out_channels, out_channels=64), num_classes=3,
                          min_size=128, max_size=128)  # fmt: skip
    optimizer = torch.optim.SGD(detector.parameters(), lr=1e-3, momentum=0.9)
    images = [torch.rand(3, 128, 128), torch.rand(3, 128, 128)]
    targets = [{"boxes": torch.tensor([[10.0, 20.0, 70.0, 90.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[30.0, 30.0, 120.0, 100.0]]), "labels": torch.tensor([2])}]  # fmt: skip
    detector.train()
    for _ in range(2):
        losses = detector(images, targets)
        assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
        total = sum(losses.values())
        assert torch.isfinite(total)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert backbone.stage1.patch_embed.conv[0].weight.grad is not None  # the archspec stages were trained
    detector.eval()
    with torch.no_grad():
        detections = detector(images[:1])
    assert set(detections[0]) == {"boxes", "labels", "scores"}


# --- Lightning ---------------------------------------------------------------------------------------


def test_lightning_trainer_runs_three_steps():
    lightning = pytest.importorskip("lightning")

    class Classifier(lightning.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = _model(num_classes=4)

        def training_step(self, batch, batch_idx):
            images, labels = batch
            return nn.functional.cross_entropy(self.model(images), labels)

        def configure_optimizers(self):
            return torch.optim.AdamW(self.parameters(), lr=1e-3)

    data = torch.utils.data.TensorDataset(torch.randn(12, 3, 64, 64), torch.randint(0, 4, (12,)))
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    module = Classifier()
    before = module.model.head.weight.detach().clone()
    trainer = lightning.Trainer(max_steps=3, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice on num_workers and the like
        trainer.fit(module, loader)
    assert trainer.global_step == 3
    assert not torch.equal(before, module.model.head.weight)


# --- counters ---------------------------------------------------------------------------------------


def _plan(name: str):
    return archspec.plan(archspec.load_spec(archspec.models.resolve_spec_path(name)))


@pytest.mark.parametrize("name", ["spectformer-h-s", "resnet50", "deit_tiny_patch16_224"])
def test_parameter_counters_agree_with_the_plan(name):
    ptflops = pytest.importorskip("ptflops")
    fvcore = pytest.importorskip("fvcore.nn")
    torchinfo = pytest.importorskip("torchinfo")
    model = archspec.create_model(name).eval()
    planned = _plan(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, ptflops_params = ptflops.get_model_complexity_info(
            model, (3, 224, 224), as_strings=False, print_per_layer_stat=False, verbose=False
        )
        fvcore_params = fvcore.parameter_count(model)[""]
        info = torchinfo.summary(model, input_size=(1, 3, 224, 224), verbose=0)
    assert ptflops_params == fvcore_params == info.total_params == planned.params
