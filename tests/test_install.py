"""A wheel of the project, installed into a fresh virtual environment, finds its shipped specs (and search
space) by name.

The wheel is built offline (``pip wheel --no-deps --no-build-isolation --no-index``) from a copy of the
source tree, so the build writes nothing into the checkout. The environment sees the system's packages
(torch and the rest need not be installed again), and the wheel goes into the environment's own
site-packages, ahead of any editable install of the checkout: each command checks that the archspec it
runs is the environment's copy. Every command runs from an empty folder, so nothing is found beside it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.install

# What the wheel is built from: the source tree without caches, build outputs and version control.
_LEFT_OUT = shutil.ignore_patterns(
    ".git", "build", "dist", ".venv", "out", "__pycache__", "*.egg-info", ".*_cache", ".hypothesis", ".benchmarks"
)
# A shipped spec small enough to fit one epoch on digits in seconds (with 10% of the images for training).
FIT_SPEC = "spectformer-digits-pool"


def _missing_tools() -> str | None:
    # Looked up in a child process: in this one, asking for setuptools' spec once distutils is
    # imported (as other tests' packages do) makes setuptools warn, which the suite treats as an error.
    for module in ("setuptools", "pip", "venv"):
        found = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, check=False)
        if found.returncode != 0:
            return f"building and installing a wheel offline needs {module}, which is not importable"
    return None


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the project's wheel (and the system's packages)."""
    if (missing := _missing_tools()) is not None:
        pytest.skip(missing)
    base = tmp_path_factory.mktemp("install")
    source, wheels, env = base / "source", base / "wheels", base / "venv"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_LEFT_OUT)
    wheel_args = ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(wheels), str(source)]
    build = subprocess.run([sys.executable, "-m", "pip", *wheel_args], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = wheels.glob("*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env)], check=True)
    python = str(env / "bin" / "python")
    # The system's pip, run by the environment's python, installs into the environment; --ignore-installed
    # leaves the system's (editable) archspec alone and puts the wheel's copy first on the environment's path.
    install_args = ["install", "--no-deps", "--no-index", "--ignore-installed", "-q", str(wheel)]
    install = subprocess.run([python, "-m", "pip", *install_args], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    return env


def _run(env: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    variables = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    variables["PATH"] = f"{env / 'bin'}{os.pathsep}{variables.get('PATH', '')}"
    variables["VIRTUAL_ENV"] = str(env)
    return subprocess.run(list(args), cwd=cwd, env=variables, capture_output=True, text=True, timeout=240)


def test_the_installed_wheel_finds_shipped_specs_by_name(venv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    python = str(venv / "bin" / "python")
    archspec = str(venv / "bin" / "archspec")

    probe = _run(
        venv, python, "-c",
        "import archspec, archspec.compose as c; print(archspec.__file__); print(c.SHIPPED_SPECS); "
        "print(len(archspec.list_specs())); print(len({p.stem for p in c.shipped_specs()}))",
        cwd=empty,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    module, shipped, count, stems = probe.stdout.splitlines()
    site = venv.resolve()
    assert Path(module).resolve().is_relative_to(site), f"archspec came from {module}, not the wheel in {venv}"
    assert Path(shipped).resolve().is_relative_to(site)
    assert int(count) == int(stems) == 50
    assert (Path(shipped) / "archspec.schema.json").is_file()

    build = _run(venv, archspec, "build", "deit_tiny_patch16_224", "--no-tree", cwd=empty)
    assert build.returncode == 0, build.stderr
    assert "5,717,416" in build.stdout

    validate = _run(venv, archspec, "validate", "resnet18", "spectformer-digits", cwd=empty)
    assert validate.returncode == 0, validate.stderr
    assert validate.stdout.startswith("resnet18: ok (resnet18: 11,689,512 params")

    show = _run(venv, archspec, "show", "spectformer", cwd=empty)
    assert show.returncode == 0, show.stderr
    assert show.stdout.startswith("name: SpectFormer\n")

    child = tmp_path / "child.yaml"
    child.write_text("extends: resnet18\nname: resnet18-10\nnum_classes: 10\n")
    extended = _run(venv, archspec, "validate", str(child), cwd=empty)
    assert extended.returncode == 0, extended.stderr
    assert extended.stdout == f"{child}: ok (resnet18-10: 11,181,642 params, 3.627 GFLOPs, 10 out)\n"

    missing = _run(venv, archspec, "validate", "resnet5", cwd=empty)
    assert missing.returncode != 0
    assert "resnet5: no such file or shipped spec; did you mean resnet50, resnet18? [AS101]" in missing.stderr

    fit = _run(
        venv, archspec, "fit", FIT_SPEC, "--epochs", "1", "--data", "digits", "--batch", "256",
        "--val-fraction", "0.9", "--format", "json",
        cwd=empty,
    )  # fmt: skip
    assert fit.returncode == 0, fit.stderr

    assert (Path(shipped) / "search.schema.json").is_file()
    search = _run(
        venv, archspec, "search", "--space", "spectformer-digits", "--objectives", "params,gflops", "--trials", "2",
        "--seed", "0", "--storage", str(tmp_path / "search.db"), "--format", "json",
        cwd=empty,
    )  # fmt: skip
    assert search.returncode == 0, search.stderr
    assert '"COMPLETE": 2' in search.stdout
    assert list(empty.iterdir()) == []  # nothing was written beside the command, nor looked for there
