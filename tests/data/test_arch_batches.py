"""Batches for several architectures: one architecture per batch, every item once per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.zoo.conftest import write_models
from weightspace.data.arch_batches import ArchBatchSampler, ArchDataset
from weightspace.zoo import Zoo

SIZES = [10, 7, 3]


def part_of(position):
    return int(np.searchsorted(np.cumsum(SIZES), position, side="right"))


def test_batches_stay_in_one_part_and_cover_everything_once():
    sampler = ArchBatchSampler(SIZES, 4, shuffle=True, seed=0)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert all(len({part_of(i) for i in b}) == 1 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(sum(SIZES)))
    sampler.set_epoch(0)
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first  # reshuffled per epoch
    assert list(ArchBatchSampler(SIZES, 4)) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9],
                                                [10, 11, 12, 13], [14, 15, 16], [17, 18, 19]]


def test_ranks_get_disjoint_equal_shares():
    shares = [list(ArchBatchSampler(SIZES, 3, shuffle=True, seed=1, rank=r, world=2))
              for r in range(2)]
    assert len(shares[0]) == len(shares[1]) == 4  # 8 batches: 4, 3, 1 per part
    seen = [i for share in shares for b in share for i in b]
    assert len(seen) == len(set(seen))
    with pytest.raises(ValueError, match="batch_size"):
        ArchBatchSampler(SIZES, 0)


def test_items_carry_their_architecture(tmp_path):
    path = tmp_path / "two.h5"
    write_models(path, np.arange(3), arch="mlp")
    write_models(path, np.arange(3, 5), arch="mlp_tanh")
    zoo = Zoo(path)
    parts = [zoo.dataset("all", target="test_acc", arch=a, buffers=True) for a in zoo.archs]
    ds = ArchDataset(parts)
    assert len(ds) == 10 and ds.sizes == [len(p) for p in parts]
    start = len(parts[0])
    items = ds.__getitems__([start, start + 1])
    assert [int(item[-1]) for item in items] == [1, 1]
    vec, _, y, arch = items[0]
    torch.testing.assert_close(vec, parts[1][0][0])
    assert float(y) == float(parts[1].targets[0])
