"""Building zoos: resume, crash safety under SIGKILL, configs, the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

import weightspace as ws
from tests.zoo.conftest import TINY_MLP
from weightspace.cli import main as cli
from weightspace.configs import compose as compose_config
from weightspace.zoo import Zoo
from weightspace.zoo.build import build_from_config
from weightspace.zoo.reader import shard_dir
from weightspace.zoo.verify import verify

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

def compose(overrides):
    return compose_config("build_zoo", overrides)


def build(path, n_runs, *extra):
    return build_from_config(compose([f"n_runs={n_runs}", f"out={path}", "chunk_size=2",
                                      *TINY_MLP, *extra]))


def test_resume_is_idempotent_and_adds_only_missing_runs(tmp_path):
    path = tmp_path / "z.h5"
    build(path, 4)
    first = Zoo(path)
    before = first.params(range(4))
    build(path, 4)  # nothing to do
    again = Zoo(path)
    assert len(again) == 4 and np.array_equal(again.params(range(4)), before)
    build(path, 7)
    grown = Zoo(path)
    assert sorted(grown.metadata()["run_id"]) == list(range(7))
    assert np.array_equal(grown.params(range(4)), before)


def test_same_seed_same_zoo(tmp_path):
    build(tmp_path / "a.h5", 3)
    build(tmp_path / "b.h5", 3)
    a, b = Zoo(tmp_path / "a.h5"), Zoo(tmp_path / "b.h5")
    assert np.array_equal(a.params(range(3)), b.params(range(3)))


def test_ranks_build_disjoint_shares_that_merge(tmp_path):
    for rank in (0, 1):
        build(tmp_path / f"r{rank}.h5", 5, f"rank={rank}", "world=2")
    assert cli(["zoo", "merge", str(tmp_path / "all.h5"), str(tmp_path / "r0.h5"),
                str(tmp_path / "r1.h5")]) == 0
    assert sorted(Zoo(tmp_path / "all.h5").metadata()["run_id"]) == list(range(5))


def test_unknown_config_key_is_named():
    with pytest.raises(Exception, match="n_run"):
        compose(["n_run=3"])
    with pytest.raises(Exception, match="zoo.epoch"):
        compose(["zoo.epoch=3"])


def test_unknown_recipe_is_named(tmp_path):
    with pytest.raises(KeyError, match="zoo.recipe"):
        build(tmp_path / "z.h5", 2, "zoo.recipe=nope")


def test_cli_verify_and_info(tmp_path, capsys):
    path = tmp_path / "z.h5"
    build(path, 2)
    assert cli(["zoo", "verify", str(path)]) == 0
    assert cli(["zoo", "info", str(path)]) == 0
    assert "2 models from 2 runs" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:3000])
    assert cli(["zoo", "verify", str(path)]) == 1


# Small CNNs with dropout: their training draws random numbers beyond the runs' own seeds.
TINY_DROPOUT_CNN = ["zoo=digits_cnn", "zoo.activations=[relu]", "zoo.optimizers=[adam]",
                    "zoo.dropouts=[0.3]", "zoo.channels=4", "progress=false"]


def assert_same_zoo(a, b):
    """Row by row: the same models, weights, buffers and metrics."""
    za, zb = Zoo(a), Zoo(b)
    ma, mb = za.metadata(), zb.metadata()
    assert len(za) == len(zb) and sorted(ma) == sorted(mb)
    for name in ma:
        assert np.array_equal(ma[name], mb[name]), name
    for arch in za.archs:
        idx = za.indices(arch)
        assert np.array_equal(za.params(idx), zb.params(idx))


def test_an_interrupted_build_equals_one_that_ran_through(tmp_path, monkeypatch):
    from weightspace.zoo.writer import ZooWriter

    def build_cnn(out):
        build_from_config(compose(["n_runs=8", f"out={out}", "chunk_size=2",
                                   *TINY_DROPOUT_CNN, "zoo.epochs=2", "zoo.checkpoints=[1,2]"]))

    build_cnn(tmp_path / "straight.h5")
    write, calls = ZooWriter.write, []

    def dies_after_two_shards(self, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(ZooWriter, "write", dies_after_two_shards)
    with pytest.raises(KeyboardInterrupt):
        build_cnn(tmp_path / "resumed.h5")
    monkeypatch.setattr(ZooWriter, "write", write)
    assert 0 < len(Zoo(tmp_path / "resumed.h5")) < 16
    build_cnn(tmp_path / "resumed.h5")
    assert_same_zoo(tmp_path / "straight.h5", tmp_path / "resumed.h5")


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_finished(tmp_path):
    """Kill a build with SIGKILL three times and resume: exactly the requested runs, equal row
    by row to the same build run through without a kill."""
    path = tmp_path / "z.h5"
    n_runs = 24

    def command(out):
        return [sys.executable, "scripts/build_zoo.py", f"n_runs={n_runs}", f"out={out}",
                "chunk_size=2", f"hydra.run.dir={tmp_path / 'run'}", *TINY_DROPOUT_CNN,
                "zoo.epochs=6", "zoo.checkpoints=[1,6]"]

    rng = np.random.default_rng(0)
    env = {**os.environ, "PYTHONPATH": ROOT}
    stored_after_kill = []
    for _ in range(3):
        proc = subprocess.Popen(command(path), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Kill once training has begun (a shard appears, or 60 s pass on a loaded machine), at
        # a random moment after.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and not (
            shard_dir(path).exists() and any(shard_dir(path).glob("*.h5"))
        ):
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if shard_dir(path).exists() or path.exists():
            zoo = Zoo(path)  # complete and readable at every moment between runs
            zoo.params(zoo.indices(zoo.archs[0])[:1])
            stored_after_kill.append(len(set(zoo.metadata()["run_id"])))
    assert any(0 < n < n_runs for n in stored_after_kill), stored_after_kill
    subprocess.run(command(path), cwd=ROOT, env=env, check=True, capture_output=True)
    zoo = Zoo(path)
    meta = zoo.metadata()
    keys = sorted(zip(meta["run_id"], meta["step"], strict=True))
    assert sorted(set(meta["run_id"])) == list(range(n_runs))
    assert len(keys) == len(set(keys)) == 2 * n_runs
    assert verify(path).ok
    assert not shard_dir(path).exists()
    subprocess.run(command(tmp_path / "straight.h5"), cwd=ROOT, env=env, check=True,
                   capture_output=True)
    assert_same_zoo(tmp_path / "straight.h5", path)


def test_dropout_rate_does_not_change_the_architecture():
    import weightspace as ws
    from weightspace.nets import SmallCNN

    assert (ws.GraphSpec.from_module(SmallCNN(dropout=0.0)).id
            == ws.GraphSpec.from_module(SmallCNN(dropout=0.3)).id)


def test_digits_cnn_recipe_builds_the_small_cnn_zoo_network(tmp_path):
    path = tmp_path / "cnn.h5"
    build_from_config(compose(["zoo=digits_cnn", "n_runs=2", f"out={path}", "zoo.epochs=1",
                               "zoo.checkpoints=[1]", "progress=false"]))
    zoo = Zoo(path)
    assert len(zoo) == 2
    assert all(zoo.spec(a).num_params == 4970 for a in zoo.archs)
    meta = zoo.metadata()
    assert {"lr", "weight_decay", "init_std", "dropout", "activation", "optimizer",
            "train_fraction", "test_acc", "val_acc", "gen_gap"} <= set(meta)


def test_two_local_workers_build_one_zoo(tmp_path):
    """Run as a user runs it, so that what the processes leave at exit is seen too."""
    path = tmp_path / "z.h5"
    done = subprocess.run([sys.executable, "scripts/build_zoo.py", "n_runs=6", f"out={path}",
                           "chunk_size=2", "workers=2", f"hydra.run.dir={tmp_path / 'run'}",
                           *TINY_MLP], cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT},
                          check=True, capture_output=True, text=True)
    assert "leaked" not in done.stderr, done.stderr  # no multiprocessing lock left behind
    zoo = Zoo(path)
    assert sorted(zoo.metadata()["run_id"]) == list(range(6))
    assert not shard_dir(path).exists()
    build(tmp_path / "serial.h5", 6)  # the same runs, the same weights, whoever trained them
    serial = Zoo(tmp_path / "serial.h5")
    np.testing.assert_allclose(zoo.params(range(6)), serial.params(range(6)), rtol=1e-6,
                               atol=1e-7)


def test_a_local_npz_dataset_replaces_the_digits(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 12, 12, 3), dtype=np.uint8)  # channels-last colour images
    y = rng.integers(0, 4, 60)
    np.savez(tmp_path / "tiny.npz", x=x, y=y)
    path = tmp_path / "cnn.h5"
    build_from_config(compose(["zoo=digits_cnn", "n_runs=2", f"out={path}", "zoo.epochs=1",
                               "zoo.checkpoints=[1]", "progress=false",
                               f"zoo.dataset=npz:{tmp_path / 'tiny.npz'}"]))
    zoo = Zoo(path)
    spec = zoo.spec(zoo.archs[0])
    assert spec.params.by_name["features.0.weight"].shape == (16, 3, 3, 3)
    assert spec.params.by_name["head.weight"].shape == (4, 16)


def test_an_unknown_dataset_source_is_named():
    from weightspace.datasets import load_image_splits

    with pytest.raises(ValueError, match="imagenet"):
        load_image_splits("imagenet")


def test_digits_resnet_stores_batchnorm_statistics(tmp_path):
    path = tmp_path / "resnet.h5"
    build_from_config(compose(["zoo=digits_resnet", "n_runs=2", f"out={path}", "zoo.epochs=1",
                               "zoo.checkpoints=[1]", "progress=false", "zoo.widths=[4,8]"]))
    zoo = Zoo(path)
    spec = zoo.spec(zoo.archs[0])
    assert len(spec.buffers) > 0
    buffers = zoo.buffers([0, 1])
    means = buffers[:, spec.buffers.by_name["bn1.running_mean"].offset]
    assert (means != 0).all()  # trained statistics, not the initial zeros
    assert verify_ok(path)


def verify_ok(path):
    return verify(path).ok


def test_torchrun_ranks_share_one_zoo_and_a_plain_build_finishes_it(tmp_path, monkeypatch):
    path = tmp_path / "z.h5"
    for rank in (0, 1):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        build(path, 5)
    assert shard_dir(path).exists() and not path.exists()  # ranks leave shards for the others
    assert sorted(Zoo(path).metadata()["run_id"]) == list(range(5))
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    build(path, 5)  # nothing left to train: merges
    assert path.exists() and not shard_dir(path).exists()
    assert sorted(Zoo(path).metadata()["run_id"]) == list(range(5))


@pytest.mark.slow
def test_hydra_multirun_ranks_with_the_joblib_launcher(tmp_path):
    path = tmp_path / "z.h5"
    script = [sys.executable, "scripts/build_zoo.py"]
    common = ["n_runs=6", f"out={path}", "chunk_size=2", *TINY_MLP]
    env = {**os.environ, "PYTHONPATH": ROOT}
    subprocess.run([*script, "-m", *common, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                    "rank=0,1", "world=2", f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    assert sorted(Zoo(path).metadata()["run_id"]) == list(range(6))  # both ranks' shards
    subprocess.run([*script, *common, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=env,
                   check=True, capture_output=True)
    assert path.exists() and not shard_dir(path).exists()
    assert sorted(Zoo(path).metadata()["run_id"]) == list(range(6))


def test_digits_inr_shared_initialisation(tmp_path):
    """With shared_init_seed every INR starts from one initialisation; without, each its own."""
    from weightspace.zoo.recipe import RECIPES

    cfg = OmegaConf.to_container(compose(["zoo=digits_inr"]).zoo)
    shared = RECIPES["digits_inr"]({**cfg, "shared_init_seed": 5})
    own = RECIPES["digits_inr"](cfg)
    runs = [shared.run(i, 0) for i in range(2)]
    a, b = (ws.GraphSpec.from_module(m).flatten(m) for m in map(shared.build, runs))
    assert torch.equal(a, b)
    c, d = (ws.GraphSpec.from_module(m).flatten(m) for m in map(own.build, runs))
    assert not torch.equal(c, d)
    with pytest.raises(ValueError, match="copies"):
        RECIPES["digits_inr"]({**cfg, "shared_init_seed": 5, "copies": 2}).build(runs[0])


def test_digits_cnn_basin_is_one_initialisation_and_one_optimiser():
    """The generators' zoo (p-diff's setting): every run starts from one initialisation with
    the same optimiser and rates; the runs differ only in data order and training fraction."""
    from weightspace.zoo.recipe import RECIPES

    cfg = OmegaConf.to_container(compose(["zoo=digits_cnn_basin"]).zoo)
    recipe = RECIPES[cfg["recipe"]](cfg)
    runs = [recipe.run(i, 0) for i in range(8)]
    fixed = {k: v for k, v in runs[0].hparams.items() if k != "train_fraction"}
    assert fixed["optimizer"] == "adam" and fixed["activation"] == "relu"
    assert all({k: v for k, v in r.hparams.items() if k != "train_fraction"} == fixed
               for r in runs)
    assert len({r.hparams["train_fraction"] for r in runs}) > 1
    assert len({r.seed for r in runs}) == len(runs)  # data order and dropout draws differ
    first, second = (ws.GraphSpec.from_module(m).flatten(m) for m in map(recipe.build, runs[:2]))
    assert torch.equal(first, second)


def build_mnist1d(tmp_path, monkeypatch, recipe, *overrides) -> Zoo:
    """A small zoo of an mnist1d recipe, its signals cached under ``tmp_path / "data"``."""
    monkeypatch.setenv("WEIGHTSPACE_DATA", str(tmp_path / "data"))
    path = tmp_path / f"{recipe}.h5"
    build_from_config(compose([f"zoo={recipe}", f"out={path}", "progress=false", *overrides]))
    return Zoo(path)


def test_mnist1d_cnn_recipe_measures_both_test_halves(tmp_path, monkeypatch):
    zoo = build_mnist1d(tmp_path, monkeypatch, "mnist1d_cnn", "n_runs=3", "zoo.epochs=1",
                        "zoo.checkpoints=[1]", "zoo.dataset=mnist1d:400", "zoo.channels=4")
    path = zoo.paths[0]
    meta = zoo.metadata()
    assert len(zoo) == 3 and (tmp_path / "data" / "mnist1d-400-seed0.npz").exists()
    spec = zoo.spec(zoo.archs[0])
    assert spec.num_params == (1 * 4 * 5 + 4) + 2 * (4 * 4 * 5 + 4) + (4 * 10 + 10)
    # the full test accuracy pools the halves (250 test signals: 125 + 125)
    np.testing.assert_allclose(meta["test_acc"], (meta["test_a_acc"] + meta["test_b_acc"]) / 2,
                               rtol=1e-6)
    assert set(zoo.noise_ceiling) == {"test_acc", "test_loss"}
    assert "noise ceiling of test_acc" in _info_output(path)


def _info_output(path):
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli(["zoo", "info", str(path)]) == 0
    return out.getvalue()


def test_mnist1d_inr_recipe_fits_a_siren_per_signal(tmp_path, monkeypatch):
    from weightspace.datasets import load_mnist1d

    zoo = build_mnist1d(tmp_path, monkeypatch, "mnist1d_inr", "n_runs=4", "zoo.steps=40",
                        "zoo.checkpoints=[1,40]", "zoo.dataset=mnist1d:100", "zoo.lr=0.003")
    meta = zoo.metadata()
    assert len(zoo) == 8 and zoo.spec(zoo.archs[0]).num_params == 2 * 32 + 32 * 33 + 33
    _, labels = load_mnist1d(100, 0, tmp_path / "data")
    signal = meta["image"]  # the index of the signal each INR fits; its label is that digit
    assert np.array_equal(meta["label"], labels.numpy()[signal])
    first, last = meta["step"] == 1, meta["step"] == 40
    assert (meta["mse"][last] < meta["mse"][first]).all()  # fitting reduces the error
