"""Third-party components through the ``archspec.components`` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

from archspec import registry

MIXERS = registry.names("mixer")

PLUGIN = '''
"""A token mixer that averages each token with its grid neighbours (no parameters)."""
from dataclasses import dataclass
from typing import Literal

from archspec.nodes import Node, Shape, Site
from archspec.registry import register
from archspec.specbase import MixerSpec


@dataclass(frozen=True)
class AvgMixArgs:
    kernel: int


@register
class AveragePoolMixer(MixerSpec):
    type: Literal["avgmix"] = "avgmix"
    build_args = AvgMixArgs

    def plan(self, tokens: Shape, site: Site) -> Node:
        return self.node(site, tokens, tokens, 0, 0, kernel=3)

    @staticmethod
    def build(node):
        kernel = node.args.kernel
        import torch.nn.functional as F
        from torch import nn

        class AvgMix(nn.Module):
            def forward(self, x, hw):
                b, n, c = x.shape
                grid = x.transpose(1, 2).reshape(b, c, *hw)
                return F.avg_pool2d(grid, kernel, 1, kernel // 2).flatten(2).transpose(1, 2)

        return AvgMix()
'''

SPEC = """\
name: WithPlugin
input: {size: 32}
num_classes: 5
stem: {type: patch, patch: 4}
stages:
  - {dim: 8, depth: 2, mixer: {type: avgmix}}
"""


def _install(site, name: str, module: str, code: str) -> None:
    """Lay out a package and its dist-info the way pip installs them."""
    (site / f"{module}.py").write_text(code)
    info = site / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[archspec.components]\n{module} = {module}\n")


def _archspec(site, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "archspec", *args], capture_output=True, text=True, env=env, cwd=site)


def test_plugin_component_is_listed_validated_built_and_in_the_schema(tmp_path):
    _install(tmp_path, "demo-plugin", "demo_plugin", PLUGIN)
    (tmp_path / "spec.yaml").write_text(SPEC)
    listing = _archspec(tmp_path, "components")
    assert ["mixer", "avgmix", "demo-plugin", "0.1", "(demo_plugin)"] in [
        line.split() for line in listing.stdout.splitlines()
    ]
    assert ["mixer", "spectral", "archspec"] in [line.split() for line in listing.stdout.splitlines()]
    built = _archspec(tmp_path, "build", "spec.yaml", "--no-tree")
    assert built.returncode == 0, built.stderr
    # patch stem 408 + 2 × (norms 32 + avgmix 0 + mlp 552) + norm 16 + pool head 45
    assert built.stderr.startswith("ok: built WithPlugin (1,637 params)")
    assert '"avgmix"' in _archspec(tmp_path, "schema").stdout


def test_broken_plugin_is_reported_not_fatal(tmp_path):
    _install(tmp_path, "broken-plugin", "broken_plugin", "raise ImportError('needs a missing library')\n")
    result = _archspec(tmp_path, "components")
    assert result.returncode == 0
    assert result.stderr == (
        "warning: plugin 'broken_plugin' (broken-plugin 0.1) failed to load: ImportError: needs a missing library\n"
    )


def test_specs_cannot_import_code(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC.replace("avgmix", "os.system"))
    result = _archspec(tmp_path, "validate", "spec.yaml")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == (
        f"spec.yaml:6:32: stages[0].mixer.type: unknown mixer type 'os.system' (valid: {', '.join(MIXERS)}) [AS203]"
    )
