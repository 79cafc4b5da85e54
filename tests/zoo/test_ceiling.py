"""The noise ceiling: Kendall tau between a metric's two test halves, stored when written."""

from __future__ import annotations

import numpy as np
import pytest

from tests.zoo.conftest import write_models
from weightspace.zoo import Zoo, ZooWriter, merge
from weightspace.zoo.ceiling import halves, noise_ceiling


def test_halves_pair_columns_by_name():
    assert halves(["test_a_acc", "test_b_acc", "test_acc", "val_a_loss", "x_a_y"]) == {
        "test_acc": ("test_a_acc", "test_b_acc")}


def test_ceiling_is_the_rank_agreement_of_the_halves():
    a = np.array([0.1, 0.2, 0.3, 0.4])
    assert noise_ceiling({"test_a_acc": a, "test_b_acc": a * 2}) == {"test_acc": 1.0}
    swapped = np.array([0.2, 0.1, 0.3, 0.4])  # one discordant pair of 6: tau = 4/6
    assert noise_ceiling({"test_a_acc": a, "test_b_acc": swapped})["test_acc"] == \
        pytest.approx(4 / 6)
    assert noise_ceiling({"test_a_acc": a, "test_b_acc": swapped}, indices=[2, 3]) == \
        {"test_acc": 1.0}
    assert noise_ceiling({"test_acc": a}) == {}


def test_a_finished_zoo_stores_its_ceiling(tmp_path):
    spec, params, buffers, meta = write_models(tmp_path / "plain.h5", [0, 1, 2, 3])
    rng = np.random.default_rng(0)
    half_a = meta["test_acc"]
    half_b = half_a + rng.normal(0, 0.2, len(half_a))  # noisy enough to swap some pairs
    expected = noise_ceiling({"test_a_acc": half_a, "test_b_acc": half_b})["test_acc"]
    assert 0 < expected < 1
    path = tmp_path / "halves.h5"
    writer = ZooWriter(path, {"name": "test"})
    writer.write(spec, params, {**meta, "test_a_acc": half_a, "test_b_acc": half_b}, buffers)
    assert Zoo(path).noise_ceiling == {"test_acc": pytest.approx(expected)}  # from the shards
    writer.finalize()
    zoo = Zoo(path)
    assert len(zoo.parts) == 1 and "noise_ceiling" in zoo._file(0).attrs
    assert zoo.noise_ceiling == {"test_acc": pytest.approx(expected)}
    merge([path], tmp_path / "merged.h5")
    assert Zoo(tmp_path / "merged.h5").noise_ceiling == {"test_acc": pytest.approx(expected)}
    plain = tmp_path / "plain.h5"
    ZooWriter(plain).finalize()
    assert Zoo(plain).noise_ceiling == {}  # no halves measured: no ceiling
