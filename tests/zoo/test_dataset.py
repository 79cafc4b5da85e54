"""ZooDataset: splits by run, targets, normalisation, DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from tests.zoo.conftest import write_models
from weightspace.zoo import Zoo
from weightspace.zoo.dataset import split_by_run


def test_checkpoints_of_a_run_never_cross_splits():
    run_ids = np.repeat(np.arange(50), 4)
    splits = split_by_run(run_ids, (0.6, 0.2, 0.2), seed=3)
    runs = {name: set(run_ids[idx]) for name, idx in splits.items()}
    assert not runs["train"] & runs["val"] and not runs["train"] & runs["test"]
    assert not runs["val"] & runs["test"]
    assert sum(len(v) for v in splits.values()) == 200
    assert len(runs["train"]) == 30


def test_bad_fractions_are_refused():
    with pytest.raises(ValueError, match="fractions"):
        split_by_run(np.arange(4), (0.5, 0.2, 0.2))


def test_dataset_items_targets_and_splits(zoo_path):
    write_models(zoo_path, np.arange(20))
    zoo = Zoo(zoo_path)
    sets = {s: zoo.dataset(s, target="test_acc") for s in ("train", "val", "test")}
    assert sum(len(d) for d in sets.values()) == len(zoo)
    x, t = sets["train"][0]
    i = sets["train"].indices[0]
    assert torch.equal(x, torch.from_numpy(zoo.params([i])[0]))
    assert t.item() == pytest.approx(zoo.metadata()["test_acc"][i])
    with pytest.raises(KeyError, match="test_acc"):
        zoo.dataset("train", target="test_accuracy")


def test_normalisation_uses_train_statistics(zoo_path):
    write_models(zoo_path, np.arange(20))
    zoo = Zoo(zoo_path)
    train = zoo.dataset("train", normalize=True)
    x = torch.stack([train[i] for i in range(len(train))])
    assert x.mean(0).abs().max() < 1e-4
    assert (x.std(0, unbiased=False) - 1).abs().max() < 1e-3
    test = zoo.dataset("test", normalize=True)
    assert torch.equal(test.stats()[0], train.stats()[0])


def test_dataloader_with_workers_reads_the_same(zoo_path):
    write_models(zoo_path, np.arange(12))
    ds = Zoo(zoo_path).dataset("all", target="test_acc")
    serial = [b for b in DataLoader(ds, batch_size=5)]
    parallel = [b for b in DataLoader(ds, batch_size=5, num_workers=2)]
    for (xa, ta), (xb, tb) in zip(serial, parallel, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ta, tb)


def test_several_architectures_need_arch(tmp_path):
    write_models(tmp_path / "z.h5", np.arange(2))
    write_models(tmp_path / "z.h5", np.arange(2, 4), arch="mlp")
    zoo = Zoo(tmp_path / "z.h5")
    with pytest.raises(ValueError, match="pass arch="):
        zoo.dataset("all")
    assert len(zoo.dataset("all", arch=zoo.archs[0])) in (4, 2)


def test_where_selects_models_by_column(zoo_path):
    write_models(zoo_path, np.arange(6))  # checkpoints at epochs 1 and 2
    last = Zoo(zoo_path).dataset("all", target="test_acc", arch=None, where={"epoch": [2]})
    meta = Zoo(zoo_path).metadata()
    assert len(last) == 6 and (meta["epoch"][last.indices] == 2).all()
    with pytest.raises(KeyError, match="'epochs'"):
        Zoo(zoo_path).dataset("all", where={"epochs": 2})
    with pytest.raises(ValueError, match="matches"):
        Zoo(zoo_path).dataset("all", where={"epoch": 7})


def test_where_ranges_select_without_moving_runs_between_splits(zoo_path):
    write_models(zoo_path, np.arange(20))  # test_acc rises with the model index
    zoo = Zoo(zoo_path)
    meta = zoo.metadata()
    good = {"test_acc": {"min": 0.3, "max": 0.9}}
    for split in ("train", "val", "test"):
        every = zoo.dataset(split)
        some = zoo.dataset(split, where=good)
        # the selection only removes models from a split: runs keep the split they had
        assert set(some.indices) <= set(every.indices)
        acc = meta["test_acc"][some.indices]
        assert ((acc >= 0.3) & (acc <= 0.9)).all()
    chosen = zoo.dataset("all", where=good).indices
    expected = np.nonzero((meta["test_acc"] >= 0.3) & (meta["test_acc"] <= 0.9))[0]
    assert chosen.tolist() == expected.tolist()
    with pytest.raises(KeyError, match="'above'"):
        zoo.dataset("all", where={"test_acc": {"above": 0.5}})
