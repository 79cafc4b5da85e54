"""Datasets: MNIST-1D generated offline, cached, the same every time; sources named on error."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from weightspace.datasets import load_image_splits, load_mnist1d


def test_mnist1d_is_generated_once_cached_and_reproducible(tmp_path):
    np.random.seed(123)  # noqa: NPY002 (the global generator the package reseeds)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())  # noqa: NPY002
    x, y = load_mnist1d(200, seed=3, cache_dir=tmp_path)
    # the package seeds the global generators; ours are left as they were
    assert np.array_equal(np.random.get_state()[1], before[0])  # noqa: NPY002
    assert random.getstate() == before[1]
    assert x.shape == (200, 1, 40) and x.dtype == torch.float32
    assert sorted(set(y.tolist())) == list(range(10)) and np.bincount(y).min() == 20
    cached = tmp_path / "mnist1d-200-seed3.npz"
    assert cached.exists()
    again, _ = load_mnist1d(200, seed=3, cache_dir=tmp_path)
    fresh, _ = load_mnist1d(200, seed=3, cache_dir=tmp_path / "other")
    assert torch.equal(again, x) and torch.equal(fresh, x)
    other, _ = load_mnist1d(200, seed=4, cache_dir=tmp_path)
    assert not torch.equal(other, x)


def test_mnist1d_splits_follow_the_fractions(tmp_path):
    splits = load_image_splits("mnist1d:400", 0, (0.3, 0.075, 0.625), tmp_path)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 120, "val": 30, "test": 250}
    ids = [set(map(tuple, v[0].reshape(len(v[0]), -1).tolist())) for v in splits.values()]
    assert not (ids[0] & ids[2]) and not (ids[1] & ids[2])  # disjoint


@pytest.mark.parametrize("source, message", [("mnist1d:many", "mnist1d:N with N a number"),
                                             ("mnist1d:5", "at least 10 signals"),
                                             ("imagenet", "mnist1d")])
def test_bad_sources_are_named(tmp_path, source, message):
    with pytest.raises(ValueError, match=message):
        load_image_splits(source, 0, cache_dir=tmp_path)
