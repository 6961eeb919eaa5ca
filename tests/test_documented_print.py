"""specs/spectformer.yaml prints exactly as the documented SpectFormer, but for the document's one error."""

from __future__ import annotations

import difflib
import re

import torch
from conftest import DATA, ROOT

import archspec

# The document's block2 conv_output reads Conv2d(64, 128, ...): a 128-channel stage cannot feed a
# 64-channel conv, so the spec builds Conv2d(128, 128) there. No other line may differ.
DOCUMENT_ERROR = (
    "-        (conv_output): Conv2d(64, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
    "+        (conv_output): Conv2d(128, 128, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
)


def _normalise(text: str) -> list[str]:
    # Newer torch appends "bias=True" to norm reprs; that depends on the torch version, not the model.
    return [re.sub(r", bias=True(, track_running_stats|\))", r"\1", line) for line in text.splitlines()]


def test_print_matches_document():
    model = archspec.build(archspec.load_spec(ROOT / "specs" / "spectformer.yaml"))
    documented = _normalise((DATA / "documented-spectformer.txt").read_text())
    ours = _normalise(str(model))
    changed = [
        line
        for line in difflib.unified_diff(documented, ours, lineterm="", n=0)
        if line.startswith(("-", "+")) and not line.startswith(("---", "+++"))
    ]
    assert tuple(changed) == DOCUMENT_ERROR


def test_documented_model_numbers():
    model = archspec.build(archspec.load_spec(ROOT / "specs" / "spectformer.yaml")).eval()
    assert sum(p.numel() for p in model.parameters()) == 14_183_334
    with torch.no_grad():
        assert tuple(model(torch.randn(1, 3, 224, 224)).shape) == (1, 6)
    assert repr(model).startswith("SpectFormer(\n  (patch_embed1): Stem(")
    names = [name for name, _ in model.named_children()]
    assert names == [
        *(f"{part}{i}" for i in range(1, 5) for part in ("patch_embed", "block", "norm")),
        "post_network",
        "head",
    ]
    assert str(model.block1[0].drop_path) == "Identity()"
    assert str(model.block1[1].drop_path) == "DropPath()"
