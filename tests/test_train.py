"""The training app: every shipped model config trains and writes its run directory; resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from model_zoo.app import CONFIG_DIR
from tests.zoo.conftest import write_models
from weightspace.cli import main as cli
from weightspace.train import run


def config(zoo, *overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"data.zoo={zoo}", "trainer.epochs=2",
                                           "trainer.progress=false", "trainer.batch_size=8",
                                           "model.hidden=16", *overrides])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "resnets.h5"
    write_models(path, np.arange(20))  # small ResNets with BatchNorm buffers, 2 checkpoints
    return path


@pytest.mark.parametrize("model", ["gmn", "statnn", "mlp"])
def test_every_model_config_trains_and_reports(zoo, tmp_path, model):
    results = run(config(zoo, f"model={model}"), tmp_path)
    for split in ("val", "test"):
        assert set(results[split]) == {"kendall_tau", "r2", "mse"}
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == model
    for name in ("config.yaml", "metrics.csv", "checkpoint.pt", "best.pt",
                 "learning_curves.png", "predicted_vs_true.png"):
        assert (tmp_path / name).exists(), name
    assert len((tmp_path / "metrics.csv").read_text().strip().splitlines()) == 3


def test_a_second_start_resumes_from_the_checkpoint(zoo, tmp_path):
    run(config(zoo, "model=statnn"), tmp_path)
    run(config(zoo, "model=statnn", "trainer.epochs=3"), tmp_path)
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_cli_trains(zoo, tmp_path):
    assert cli(["train", f"data.zoo={zoo}", "trainer.epochs=1", "trainer.progress=false",
                "model=statnn", "model.hidden=8", f"out_dir={tmp_path}"]) == 0
    assert (tmp_path / "metrics.json").exists()


def test_config_mistakes_are_named(zoo, tmp_path):
    with pytest.raises(Exception, match="trainer.epoch"):
        config(zoo, "trainer.epoch=3")
    with pytest.raises(KeyError, match="model.name"):
        run(config(zoo, "model.name=transformer"), tmp_path)
