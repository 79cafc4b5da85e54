"""``task=generate_zoo``: a generator trains from a config, samples become ordinary modules and
a zoo with measured metrics, and ``weightspace evaluate`` reports memorisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import weightspace as ws
from weightspace.cli import main as cli
from weightspace.configs import compose
from weightspace.generation import judge, load_generator
from weightspace.nets import SmallCNN
from weightspace.training import run
from weightspace.zoo import Zoo
from weightspace.zoo.build import build_from_config
from weightspace.zoo.recipe import recipe_for

SMALL = ["model.encoder.hidden=32", "model.latent=8", "model.decoder_hidden=[32]",
         "model.diffusion_hidden=32", "model.diffusion_depth=1", "model.timesteps=50",
         "model.passes=1", "task.samples=8", "trainer.epochs=2", "trainer.batch_size=8",
         "trainer.progress=false"]


@pytest.fixture(scope="module")
def cnn_zoo(tmp_path_factory):
    """30 digits Small CNNs (ReLU), 2 epochs each."""
    path = tmp_path_factory.mktemp("cnn") / "cnns.h5"
    return build_from_config(compose("build_zoo", [
        "zoo=digits_cnn", "n_runs=30", f"out={path}", "zoo.epochs=2", "zoo.checkpoints=[2]",
        "zoo.activations=[relu]", "zoo.optimizers=[adam]", "progress=false"]))


@pytest.fixture(scope="module")
def generator(cnn_zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("generator")
    results = run(compose("train", ["task=generate_zoo", f"data.zoo={cnn_zoo}", *SMALL]), out)
    return out, results


def test_a_generator_trains_and_reports_its_samples(generator):
    out, results = generator
    for split in ("val", "test"):
        m = results[split]
        assert {"objective", "reconstruction", "diffusion", "sample_test_acc",
                "recon_test_acc", "zoo_test_acc_median"} <= set(m)
        assert 0 <= m["sample_test_acc"] <= 1
    assert results["condition"] == "test_acc" and results["networks"]["train"] > 0
    for name in ("best.pt", "metrics.json", "samples_vs_zoo.png"):
        assert (out / name).exists()
    assert json.loads((out / "metrics.json").read_text())["task"] == "generate_zoo"


def test_generate_returns_modules_of_the_zoo_architecture(generator, cnn_zoo):
    out, _ = generator
    nets = ws.generate(out, 0.5, n=4, seed=1)
    assert len(nets) == 4 and all(isinstance(m, SmallCNN) for m in nets)
    spec = Zoo(cnn_zoo).spec(Zoo(cnn_zoo).archs[0])
    assert spec.id == ws.GraphSpec.from_module(nets[0]).id
    rows = ws.generate(out, [0.2, 0.9], n=2, seed=1, as_params=True)
    assert rows.shape == (2, spec.num_params) and torch.isfinite(rows).all()
    again = ws.generate(out, 0.5, n=4, seed=1, as_params=True)
    assert torch.equal(again, torch.stack([spec.flatten(m) for m in nets]))
    free = ws.generate(out, n=3, seed=2, as_params=True)  # conditions drawn from the zoo's
    assert free.shape == (3, spec.num_params)
    assert torch.equal(free, ws.generate(out, n=3, seed=2, as_params=True))
    with pytest.raises(ValueError, match="one value or 3"):
        ws.generate(out, [0.1, 0.2], n=3)


def test_samples_become_a_zoo_and_the_report_is_printed(generator, tmp_path, capsys):
    out, _ = generator
    path = tmp_path / "samples.h5"
    assert cli(["generate", f"ckpt={out}", "n=6", f"out={path}", "condition=0.8"]) == 0
    with Zoo(path) as z:
        meta = z.metadata()
        assert len(z) == 6 and np.all(meta["condition"] == 0.8)
        assert np.all((meta["test_acc"] >= 0) & (meta["test_acc"] <= 1))
        rows = torch.from_numpy(z.params(np.arange(6)))
    task = load_generator(out).task  # the metrics are the recipe's, of the stored weights
    again = recipe_for(task.recipe).evaluate(task.spec.id, rows)
    assert np.allclose(again["test_acc"], meta["test_acc"])
    assert np.allclose(again["gen_gap"], meta["gen_gap"])
    capsys.readouterr()
    assert cli(["evaluate", f"ckpt={out}", "n=5"]) == 0
    text = capsys.readouterr().out
    assert "| samples | 5 |" in text and "Noise keeps" in text
    result = judge(out, n=5)
    assert {r["name"] for r in result["report"]["rows"]} >= {"samples"}
    assert len(result["conditioning"]["mean"]) == 5


def test_the_graph_encoder_trains_and_bad_configs_are_named(cnn_zoo, tmp_path):
    results = run(compose("train", ["task=generate_zoo", f"data.zoo={cnn_zoo}", *SMALL,
                                    "model.encoder.name=gmn", "model.encoder.layers=1",
                                    "trainer.epochs=1", "task.condition=null",
                                    "augment.symmetries=true", "model.align_scales=true"]),
                  tmp_path / "gmn")
    assert results["condition"] is None and "sample_test_acc" in results["test"]
    with pytest.raises(KeyError, match="no column 'nope'"):
        run(compose("train", ["task=generate_zoo", f"data.zoo={cnn_zoo}", *SMALL,
                              "task.condition=nope"]), tmp_path / "bad")
    with pytest.raises(ValueError, match="without a condition"):
        ws.generate(tmp_path / "gmn", 0.5, n=2)
