"""The memorisation report: a training network seen again is at distance 0 and agrees with
itself; noise moves a network by exactly its level; the noise limit is read off the curve."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import weightspace as ws
from tests.conftest import build
from weightspace.generation import memorisation_report, nearest_training, tensor_noise
from weightspace.generation.memorisation import noise_limit
from weightspace.graph.symmetry import sample_symmetries


def zoo_of(name: str, n: int) -> tuple[ws.GraphSpec, torch.Tensor]:
    spec = ws.GraphSpec.from_module(build(name))
    return spec, torch.stack([spec.flatten(build(name, seed)) for seed in range(n)]).double()


def test_a_relabelled_training_network_is_found_at_distance_zero():
    spec, train = zoo_of("mlp_tanh", 6)
    t = sample_symmetries(spec, 2, torch.Generator().manual_seed(1), scale=False)
    rows = t(train[[4, 2]])  # not in the training networks' frame: every one a candidate
    d, index = nearest_training(spec, train, rows, candidates=6)
    assert index.tolist() == [4, 2]
    assert torch.all(d < 1e-12)
    d, index = nearest_training(spec, train, train[[4, 2]], exclude=torch.tensor([4, 2]))
    assert index[0] != 4 and index[1] != 2 and torch.all(d > 0.1)  # not themselves


def test_noise_moves_every_row_by_its_level():
    spec, train = zoo_of("small_cnn", 3)
    noised = tensor_noise(spec, train, torch.tensor([0.0, 0.1, 0.5]),
                          torch.Generator().manual_seed(0))
    moved = (noised - train).norm(dim=1) / train.norm(dim=1)
    assert torch.allclose(moved, torch.tensor([0.0, 0.1, 0.5], dtype=torch.float64))
    for slot in spec.params.slots:  # each tensor by the same fraction of its own norm
        part = slice(slot.offset, slot.stop)
        ratio = (noised[2, part] - train[2, part]).norm() / train[2, part].norm()
        assert float(ratio) == pytest.approx(0.5)


def test_the_noise_limit_is_interpolated_on_the_curve():
    curve = [(0.0, 0.9), (0.1, 0.8), (0.2, 0.4)]
    assert noise_limit(curve, 0.95) == 0.0
    assert noise_limit(curve, 0.8) == pytest.approx(0.1)
    assert noise_limit(curve, 0.6) == pytest.approx(0.15)
    assert noise_limit(curve, 0.1) == 0.2


def test_memorised_samples_are_reported_as_such():
    spec, train = zoo_of("mlp", 8)
    model = build("mlp")
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(0))

    def predict(rows):
        out = []
        for row in rows:
            m = copy.deepcopy(model).double()
            m.load_state_dict(spec.unflatten(row))
            out.append(m(x.double()).argmax(-1))
        return torch.stack(out)

    reference = predict(train[:1])

    def measure(rows):  # agreement with network 0: a metric that noise lowers
        return (predict(rows) == reference).double().mean(1).numpy()

    t = sample_symmetries(spec, 3, torch.Generator().manual_seed(2), scale=False)
    samples = t(train[[0, 0, 5]])  # training networks again, relabelled
    report = memorisation_report(spec, train, samples, measure, predict, metric="agreement",
                                 scale_networks=4, ks=(2,), levels=(0.0, 0.5, 1.0),
                                 candidates=8)
    rows = {r["name"]: r for r in report.rows}
    assert rows["samples"]["distance"] < 1e-10 and rows["samples"]["agreement"] == 1.0
    assert rows["training networks (against the nearest other)"]["distance"] > 0.1
    assert report.noise_curve[0][1] == pytest.approx(np.mean(measure(train[[0, 0, 5]])))
    assert "| samples | 3 |" in report.table()
    assert len(report.rows) == 4 and report.to_dict()["metric"] == "agreement"
