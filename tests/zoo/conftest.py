"""Small zoos for the zoo tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import weightspace as ws
from weightspace import nets
from weightspace.zoo import ZooWriter

TINY_MLP = ["zoo=digits_mlp", "zoo.epochs=1", "zoo.checkpoints=[1]", "zoo.depths=[1]",
            "zoo.widths=[8]", "zoo.optimizers=[adam]", "zoo.activations=[relu]",
            "progress=false"]


def write_models(path, runs, arch="resnet", checkpoints=(1, 2)):
    """Store fake trained models of a small ResNet (with buffers) for runs ``runs``."""
    model = {"resnet": lambda: nets.ResNet((1, 1), (8, 16), 3, 10, 16),
             "mlp": lambda: nets.MLP(4, [8], 2),
             "mlp_tanh": lambda: nets.MLP(4, [8], 2, activation="tanh")}[arch]()
    spec = ws.GraphSpec.from_module(model)
    n = len(runs) * len(checkpoints)
    g = torch.Generator().manual_seed(int(runs[0]))
    run_ids = np.repeat(runs, len(checkpoints))
    meta = {"run_id": run_ids, "seed": run_ids * 7, "epoch": np.tile(checkpoints, len(runs)),
            "step": np.tile(checkpoints, len(runs)) * 10, "test_acc": np.linspace(0, 1, n),
            "gen_gap": np.linspace(0.2, 0, n),
            "optimizer": np.array(["adam", "sgd"] * n)[:n]}
    params = torch.randn(n, spec.num_params, generator=g)
    buffers = torch.rand(n, len(spec.buffers), generator=g) if len(spec.buffers) else None
    ZooWriter(path, {"name": "test"}).write(spec, params, meta, buffers)
    return spec, params, buffers, meta


@pytest.fixture
def zoo_path(tmp_path):
    return tmp_path / "zoo.h5"
