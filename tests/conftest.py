"""Shared fixtures: the shipped specs, a tiny spec to vary, and plan-vs-module checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))
"""The SpectFormer specs at the top of specs/."""
ZOO = sorted((ROOT / "specs" / "zoo").glob("*.yaml"))
VARIANTS = sorted((ROOT / "specs" / "variants").glob("*.yaml"))
DIGITS = sorted((ROOT / "specs" / "digits").glob("*.yaml"))
"""SpectFormer scaled to 8×8 digits, with four mixers: the specs of the README's quick-fit table."""
SHIPPED = [*SPECS, *ZOO, *VARIANTS, *DIGITS]
"""Every shipped spec: the SpectFormers, the zoo of reference models, the variants and the digits specs."""
DATA = Path(__file__).resolve().parent / "data"

TINY: dict[str, Any] = {
    "name": "Tiny",
    "input": {"channels": 3, "size": 32},
    "num_classes": 5,
    "drop_path_rate": 0.1,
    "stem": {"type": "patch", "patch": 4},
    "stages": [
        {"dim": 8, "depth": 1, "mixer": {"type": "spectral"}, "ffn": {"type": "mlp", "ratio": 2}},
        {"dim": 16, "depth": 2, "mixer": {"type": "attention", "heads": 2}, "ffn": {"type": "mlp", "ratio": 2}},
    ],
    "head": {"type": "pool"},
}


def tiny(**changes: Any) -> dict[str, Any]:
    """A deep copy of the tiny spec with top-level keys replaced."""
    spec = copy.deepcopy(TINY)
    spec.update(copy.deepcopy(changes))
    return spec


@pytest.fixture(autouse=True)
def _seeded() -> None:
    import torch

    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _trained_as_without_native_bfloat16(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """fit, sweep --fit and search train under bfloat16 autocast by default where the device has native
    bfloat16 (:func:`archspec.runtime.default_precision`). So that a test's figures and messages do
    not depend on the CPU it runs on, tests see every device as one without it; a test of the default
    itself sets the capability it needs, and one marked ``machine_precision`` sees the real one.
    (Command-line subprocesses see the real machine.)"""
    if request.node.get_closest_marker("machine_precision") is None:
        from archspec import runtime

        monkeypatch.setattr(runtime, "native_bfloat16", lambda device: False)


def default_sigint() -> None:
    """For ``Popen(preexec_fn=...)``: give the child the default SIGINT disposition. A shell that starts
    the test run in the background ignores SIGINT, the child inherits that, and Python then installs no
    KeyboardInterrupt handler, so a test of what Ctrl-C does would test nothing."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
