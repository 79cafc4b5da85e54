"""Cluster runs through Hydra's submitit launcher, exercised with its local executor: sharded
zoo builds give the same zoo as one process, and training sweeps write one run per job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.zoo.conftest import TINY_MLP, write_models
from weightspace.zoo import Zoo

pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
LOCAL = ["hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5"]


def script(name, *overrides, cwd):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / name), *overrides], cwd=cwd,
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_submitit_shards_build_the_zoo_one_process_builds(tmp_path):
    common = ["n_runs=6", "chunk_size=2", "seed=4", *TINY_MLP]
    sharded, single = tmp_path / "sharded.h5", tmp_path / "single.h5"
    script("build_zoo.py", "-m", *common, f"out={sharded}", *LOCAL, "rank=0,1", "world=2",
           f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    assert not sharded.exists()  # each job left its shard; a plain run merges them
    script("build_zoo.py", *common, f"out={sharded}", f"hydra.run.dir={tmp_path / 'merge'}",
           cwd=tmp_path)
    script("build_zoo.py", *common, f"out={single}", f"hydra.run.dir={tmp_path / 'one'}",
           cwd=tmp_path)
    a, b = Zoo(sharded), Zoo(single)
    ids_a, ids_b = a.metadata()["run_id"], b.metadata()["run_id"]
    assert sorted(ids_a) == sorted(ids_b) == list(range(6))
    rows_a = a.params(np.arange(len(a)))[np.argsort(ids_a)]
    rows_b = b.params(np.arange(len(b)))[np.argsort(ids_b)]
    assert np.array_equal(np.asarray(rows_a), np.asarray(rows_b))


@pytest.mark.slow
def test_submitit_training_sweep_writes_one_run_per_seed(tmp_path):
    zoo = tmp_path / "zoo.h5"
    write_models(zoo, np.arange(20))
    script("train.py", "-m", f"data.zoo={zoo}", "model=statnn", "trainer.epochs=1",
           "trainer.batch_size=8", "trainer.progress=false", "trainer.seed=0,1", *LOCAL,
           f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path)
    for job in (0, 1):
        metrics = json.loads((tmp_path / "sweep" / str(job) / "metrics.json").read_text())
        assert np.isfinite(metrics["test"]["mse"])
