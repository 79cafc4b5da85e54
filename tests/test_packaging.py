"""The wheel works on its own: built, installed non-editable into a fresh environment, and run
from a directory outside the repository (configs ship inside the package)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, cwd, timeout=600):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(out), str(ROOT)], cwd=out)
    (found,) = out.glob("weightspace-*.whl")
    return found


def test_the_wheel_holds_the_configs_and_the_recipes(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT / "weightspace").as_posix()
               for p in (ROOT / "weightspace" / "configs").rglob("*.yaml")}
    assert shipped and {f"weightspace/{n}" for n in shipped} <= names
    assert "model_zoo/recipes/digits_mlp.py" in names
    metadata = next(n for n in names if n.endswith("METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: MIT" in text


def test_a_regular_install_builds_verifies_and_trains_outside_the_repository(wheel, tmp_path):
    # A fresh environment that sees the test environment's dependencies (torch, PyG, ...)
    # through a path entry, but none of its .pth hooks: weightspace comes only from the wheel.
    env = tmp_path / "env"
    _run([sys.executable, "-m", "venv", "--without-pip", str(env)], cwd=tmp_path)
    python = env / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig."
                              "get_paths()['purelib'])"], capture_output=True, text=True
                             ).stdout.strip()
    Path(purelib, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(wheel)], cwd=tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import weightspace; print(weightspace.__file__)"], work)
    assert Path(where.stdout.strip()).is_relative_to(env)
    cli = str(env / "bin" / "weightspace")
    _run([cli, "zoo", "build", "zoo=digits_cnn", "zoo.activations=[relu]", "n_runs=10", "out=z.h5",
          "zoo.epochs=1",
          "zoo.checkpoints=[1]", "progress=false"], work)
    assert "10/10 models checked, 0 problems" in _run([cli, "zoo", "verify", "z.h5"], work).stdout
    _run([cli, "train", "data.zoo=z.h5", "model=statnn", "trainer.epochs=1", "out_dir=run",
          "trainer.progress=false"], work)
    assert (work / "run" / "metrics.json").is_file()
