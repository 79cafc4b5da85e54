"""The training app: every shipped model and task config trains and writes its run directory;
resume; evaluate; predict; DistributedDataParallel under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import weightspace as ws
from tests.zoo.conftest import write_models
from weightspace.cli import main as cli
from weightspace.configs import compose as compose_config
from weightspace.nets import MLP, SIREN
from weightspace.training import evaluate, run
from weightspace.zoo import Zoo
from weightspace.zoo.build import build_from_config


def compose_zoo(overrides):
    return compose_config("build_zoo", overrides)

def config(zoo, *overrides):
    return compose_config("train", [f"data.zoo={zoo}", "trainer.epochs=2",
                                    "trainer.progress=false", "trainer.batch_size=8",
                                    "model.hidden=16", *overrides])


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "resnets.h5"
    write_models(path, np.arange(20))  # small ResNets with BatchNorm buffers, 2 checkpoints
    return path


@pytest.fixture(scope="module")
def inr_zoo(tmp_path_factory):
    """40 digits INRs, fitted to about 60 dB PSNR in 100 steps."""
    path = tmp_path_factory.mktemp("inr") / "inrs.h5"
    return build_from_config(compose_zoo(["zoo=digits_inr", "n_runs=40", f"out={path}",
                                          "zoo.steps=100", "zoo.lr=0.001",
                                          "zoo.checkpoints=[100]", "progress=false"]))


def run_dir_holds(path, *names):
    for name in ("config.yaml", "metrics.csv", "metrics.json", "checkpoint.pt", "best.pt",
                 "learning_curves.png", *names):
        assert (path / name).exists(), name
    assert any((path / "tensorboard").glob("events.out.tfevents.*"))


@pytest.mark.parametrize("model", ["gmn", "statnn", "mlp"])
def test_every_model_config_trains_and_reports(zoo, tmp_path, model):
    results = run(config(zoo, f"model={model}"), tmp_path)
    for split in ("val", "test"):
        assert set(results[split]) == {"kendall_tau", "r2", "mse"}
    assert json.loads((tmp_path / "metrics.json").read_text())["model"] == model
    run_dir_holds(tmp_path, "predicted_vs_true.png")
    assert len((tmp_path / "metrics.csv").read_text().strip().splitlines()) == 3


@pytest.mark.parametrize("model", ["gmn", "np", "mlp"])
def test_inr_classification_and_editing(inr_zoo, tmp_path, model):
    out = tmp_path / "classify"
    results = run(config(inr_zoo, f"model={model}", "task=classify_inr",
                         "augment.symmetries=true", "augment.noise=0.05"), out)
    assert 0 <= results["test"]["accuracy"] <= 1
    run_dir_holds(out, "confusion_matrix.png")
    out = tmp_path / "edit"
    results = run(config(inr_zoo, f"model={model}", "task=edit_dilate"), out)
    assert results["test"]["mse"] > 0 and results["test"]["mse_unedited"] > 0
    run_dir_holds(out, "edits.png")


def test_mixup_trains_the_classifier_on_soft_targets(inr_zoo, tmp_path):
    results = run(config(inr_zoo, "model=np", "task=classify_inr", "augment.mixup=0.4",
                         "augment.mixup_permute=true", "augment.dropout=0.05"), tmp_path)
    assert np.isfinite(results["test"]["cross_entropy"])


def test_editing_learns(inr_zoo, tmp_path):
    """A few epochs of the GMN bring dilated images closer than the unedited INRs are."""
    results = run(config(inr_zoo, "model=gmn", "task=edit_dilate", "trainer.epochs=30",
                         "trainer.batch_size=4", "model.hidden=32",
                         "data.fractions=[0.6,0.2,0.2]"), tmp_path)
    assert results["test"]["mse"] < 0.8 * results["test"]["mse_unedited"]


def test_task_mistakes_are_named(inr_zoo, zoo, tmp_path):
    with pytest.raises(ValueError, match="'statnn' is invariant"):
        run(config(inr_zoo, "model=statnn", "task=edit_dilate"), tmp_path)
    with pytest.raises(ValueError, match="mixup"):
        run(config(inr_zoo, "task=edit_dilate", "augment.mixup=0.2"), tmp_path)
    with pytest.raises(ValueError, match="digits_inr zoo"):
        run(config(zoo, "task=edit_dilate"), tmp_path)
    with pytest.raises(ValueError, match="NPNetwork handles"):
        run(config(zoo, "model=np"), tmp_path)  # ResNets are outside the NP weight space


def test_predict_and_evaluate_from_the_run_directory(inr_zoo, tmp_path, capsys):
    # with probe features: the reloaded model rebuilds its networks from the zoo's recipe
    results = run(config(inr_zoo, "model=gmn", "task=classify_inr", "model.probes=4"), tmp_path)
    assert evaluate(tmp_path, "test") == results["test"]
    assert cli(["evaluate", f"ckpt={tmp_path / 'best.pt'}", "split=val"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == results["val"]["accuracy"]
    z = Zoo(inr_zoo)
    inrs = [z.load(i, SIREN(2, (32, 32), 1, w0=30.0)) for i in range(5)]
    labels = ws.predict(tmp_path, inrs)
    assert labels.shape == (5,) and labels.dtype == torch.long
    assert torch.equal(labels, ws.predict(tmp_path, torch.from_numpy(z.params(range(5)))))
    with pytest.raises(ws.SpecMismatchError, match="trained on"):
        ws.predict(tmp_path, [SIREN(2, (16,), 1)])


def test_predict_returns_edited_networks(inr_zoo, tmp_path):
    run(config(inr_zoo, "model=mlp", "task=edit_dilate"), tmp_path)
    z = Zoo(inr_zoo)
    inrs = [z.load(i, SIREN(2, (32, 32), 1, w0=30.0)) for i in range(3)]
    edited = ws.predict(tmp_path, inrs)
    assert all(isinstance(m, SIREN) for m in edited)
    spec = ws.GraphSpec.from_module(inrs[0])
    rows = ws.predict(tmp_path, torch.stack([spec.flatten(m) for m in inrs]))
    for m, row, original in zip(edited, rows, inrs, strict=True):
        assert torch.equal(spec.flatten(m), row)
        assert not torch.equal(row, spec.flatten(original))


def test_generalization_gap_task(zoo, tmp_path):
    results = run(config(zoo, "model=statnn", "task=predict_gap"), tmp_path)
    assert results["task"] == "predict" and "kendall_tau" in results["test"]
    assert "gen_gap" in (tmp_path / "config.yaml").read_text()


def test_a_second_start_resumes_from_the_checkpoint(zoo, tmp_path):
    run(config(zoo, "model=statnn"), tmp_path)
    run(config(zoo, "model=statnn", "trainer.epochs=3"), tmp_path)
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "2", "3"]


def test_cosine_schedule_falls_to_zero_over_the_epochs_and_is_checkpointed(zoo, tmp_path):
    run(config(zoo, "model=statnn", "trainer.schedule=cosine", "trainer.lr=0.01"), tmp_path)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["scheduler"]["last_epoch"] == 2  # epochs 1 and 2 at 0.01 and 0.005
    assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_cli_trains(zoo, tmp_path):
    assert cli(["train", f"data.zoo={zoo}", "trainer.epochs=1", "trainer.progress=false",
                "model=statnn", "model.hidden=8", f"out_dir={tmp_path}"]) == 0
    assert (tmp_path / "metrics.json").exists()


def test_config_mistakes_are_named(zoo, tmp_path):
    with pytest.raises(Exception, match="trainer.epoch"):
        config(zoo, "trainer.epoch=3")
    with pytest.raises(KeyError, match="model.name"):
        run(config(zoo, "model.name=transformer"), tmp_path)


def test_torchrun_trains_with_two_processes(zoo, tmp_path):
    """``torchrun --nproc_per_node=2`` runs the app with DistributedDataParallel over gloo."""
    root = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(root / "scripts" / "train.py"), f"data.zoo={zoo}", "model=gmn", "model.hidden=8",
           "model.layers=1", "trainer.epochs=2", "trainer.batch_size=8", "trainer.progress=false",
           f"out_dir={tmp_path / 'run'}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert results["world_size"] == 2 and np.isfinite(results["test"]["mse"])
    assert len((tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()) == 3


@pytest.fixture(scope="module")
def two_arch_zoo(tmp_path_factory):
    """MLPs with ReLU and with tanh: two architectures, one flat layout (like the Small CNN
    Zoo's activations)."""
    path = tmp_path_factory.mktemp("two") / "mlps.h5"
    write_models(path, np.arange(12), arch="mlp")
    write_models(path, np.arange(12, 24), arch="mlp_tanh")
    return path


@pytest.mark.parametrize("model", ["gmn", "statnn", "np"])
def test_every_architecture_of_a_zoo_trains_together(two_arch_zoo, tmp_path, model):
    results = run(config(two_arch_zoo, f"model={model}", "data.arch=all"), tmp_path)
    zoo = Zoo(two_arch_zoo)
    assert sorted(results["archs"]) == sorted(zoo.archs)
    relu, tanh = MLP(4, [8], 2), MLP(4, [8], 2, activation="tanh")
    nets = [zoo.load(int(i), relu if zoo.arch_of(int(i)) == ws.GraphSpec.from_module(relu).id
                     else tanh) for i in (0, 30)]
    assert {ws.GraphSpec.from_module(n).id for n in nets} == set(zoo.archs)
    assert ws.predict(tmp_path, nets).shape == (2,)
    assert evaluate(tmp_path)["mse"] == pytest.approx(results["test"]["mse"], rel=1e-5)


def test_models_of_one_flat_layout_refuse_mixed_layouts(tmp_path):
    path = tmp_path / "mixed.h5"
    write_models(path, np.arange(10), arch="mlp")
    write_models(path, np.arange(10, 20), arch="resnet")
    with pytest.raises(ValueError, match="differ in their parameters"):
        run(config(path, "model=mlp", "data.arch=all"), tmp_path / "run")
    with pytest.raises(KeyError, match="data.arch"):
        run(config(path, "data.arch=nonexistent"), tmp_path / "run")


def test_metrics_give_the_test_split_size_and_its_noise_ceiling(tmp_path):
    from weightspace.zoo import ZooWriter
    from weightspace.zoo.ceiling import noise_ceiling

    spec, params, buffers, meta = write_models(tmp_path / "plain.h5", np.arange(20))
    rng = np.random.default_rng(1)
    halves = {"test_a_acc": meta["test_acc"],
              "test_b_acc": meta["test_acc"] + rng.normal(0, 0.1, len(meta["test_acc"]))}
    path = tmp_path / "halves.h5"
    writer = ZooWriter(path, {"name": "test"})
    writer.write(spec, params, {**meta, **halves}, buffers)
    writer.finalize()
    run(config(path, "model=statnn"), tmp_path / "run")
    results = json.loads((tmp_path / "run" / "metrics.json").read_text())
    zoo = Zoo(path)
    test = zoo.dataset("test", target="test_acc", arch=zoo.archs[0]).indices
    assert results["networks"] == {"train": 32, "val": 4, "test": 4} and len(test) == 4
    expected = noise_ceiling(zoo.metadata(), test)["test_acc"]
    assert results["noise_ceiling"] == pytest.approx(expected)
