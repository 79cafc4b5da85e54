"""Hypernetwork tasks through the training app, and ``weightspace.generate`` on their runs."""

from __future__ import annotations

import json

import pytest
import torch

import weightspace as ws
from weightspace.configs import compose as compose_config
from weightspace.datasets import load_digits_splits
from weightspace.graph import GraphSpec
from weightspace.nets import SIREN
from weightspace.training import load_trained, run


def config(*overrides):
    return compose_config("train", ["trainer.epochs=2", "trainer.progress=false",
                                    "model.hidden=[32]", *overrides])


@pytest.fixture(scope="module")
def regularization_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hyper_reg")
    results = run(config("task=hyper_regularization", "trainer.epochs=3"), out)
    return out, results


def test_regularization_task_trains_over_the_whole_range(regularization_run):
    out, results = regularization_run
    for name in ("config.yaml", "metrics.csv", "metrics.json", "checkpoint.pt", "best.pt",
                 "learning_curves.png", "hyper_sweep.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "metrics.json").read_text())["test"] == results["test"]
    test = results["test"]
    assert test["accuracy"] > 0.8  # 3 epochs on digits, averaged over gamma in [0, 1]
    # a stronger L2 weight gives smaller weights: the condition is used
    assert test["weight_norm@1.00"] < test["weight_norm@0.00"]


def test_generated_classifiers_are_ordinary_modules(regularization_run):
    out, results = regularization_run
    nets = ws.generate(out, torch.tensor([[0.0], [1.0]]))
    x, y = load_digits_splits(0)["test"]
    for net, key in zip(nets, ("accuracy@0.00", "accuracy@1.00"), strict=True):
        assert isinstance(net, torch.nn.Module) and not isinstance(net, ws.hyper.HyperNetwork)
        with torch.no_grad():
            acc = float((net(x).argmax(1) == y).float().mean())
        assert acc == pytest.approx(results["test"][key], abs=1e-6)
    flat = ws.generate(out, [0.0, 0.5, 1.0], as_params=True)
    assert flat.shape == (3, GraphSpec.from_module(nets[0]).num_params)
    torch.testing.assert_close(flat[0], GraphSpec.from_module(nets[0]).flatten(nets[0]))


def test_a_second_start_resumes(regularization_run, tmp_path):
    run(config("task=hyper_regularization", "trainer.epochs=1"), tmp_path)
    run(config("task=hyper_regularization", "trainer.epochs=2"), tmp_path)
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2"]


def test_inr_task_generates_a_siren_per_class(tmp_path):
    results = run(config("task=hyper_inr", "trainer.epochs=3", "model.chunk=64"), tmp_path)
    assert (tmp_path / "hyper_inr.png").exists()
    # better than predicting the pixel average for every image, nearer the class means
    x = load_digits_splits(0)["test"][0].flatten(1)
    assert results["test"]["mse"] < float((x - x.mean()).pow(2).mean())
    nets = ws.generate(tmp_path, torch.eye(10)[:2])
    assert all(type(n) is SIREN for n in nets)
    trained = load_trained(tmp_path, kind="hypernetwork")
    hypernet, cfg = trained.model, trained.config
    assert hypernet.chunk == 64 and cfg.task.name == "hyper_inr"


def test_mistakes_are_named(tmp_path, regularization_run):
    with pytest.raises(ValueError, match="model=hyper"):
        run(config("task=hyper_inr", "model=gmn", "model.hidden=8"), tmp_path)
    with pytest.raises(KeyError, match="task.target"):
        run(config("task=hyper_regularization", "task.target=vit"), tmp_path)
    with pytest.raises(KeyError, match="trainer.optimizer"):
        run(config("task=hyper_regularization", "trainer.optimizer=lion"), tmp_path / "b")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ws.generate(regularization_run[0], [2.0])
    bad = tmp_path / "not_hyper.pt"
    torch.save({"model": {}}, bad)
    with pytest.raises(ValueError, match="not a weightspace hypernetwork"):
        ws.generate(bad, [0.5])
    with pytest.raises(TypeError, match="HyperNetwork"):
        ws.generate(torch.nn.Linear(2, 2), [0.5])
