"""Training on several architectures at once: batches that never mix architectures.

Weight rows of different architectures have different lengths ``P``, so a batch holds one
architecture; over an epoch, every architecture's networks are seen once, in an order mixed
across architectures. :class:`ArchDataset` joins one zoo dataset per architecture and tags each
item with the architecture's position; :class:`ArchBatchSampler` yields the batches (and, under
DistributedDataParallel, this rank's share of them: every process steps the same number of
times).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class ArchDataset(Dataset):
    """Items ``(*item, arch)`` of the datasets ``parts`` (one per architecture), back to back.

    Args:
        parts: one dataset per architecture; item ``i`` of part ``k`` becomes ``(*item, k)``.
    """

    def __init__(self, parts: Sequence[Dataset]):
        self.parts = list(parts)
        self.sizes = [len(p) for p in self.parts]
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)])

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def targets(self) -> torch.Tensor:
        return torch.cat([p.targets for p in self.parts])

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, positions: list[int]):
        positions = np.asarray(positions)
        part = np.searchsorted(self.starts, positions, side="right") - 1
        out = [None] * len(positions)
        for a in np.unique(part):  # one architecture per batch from ArchBatchSampler
            where = np.nonzero(part == a)[0]
            items = self.parts[a].__getitems__((positions[where] - self.starts[a]).tolist())
            for k, item in zip(where, items, strict=True):
                out[k] = (*item, torch.tensor(int(a)))
        return out


class ArchBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` positions of an :class:`ArchDataset` with part sizes ``sizes``,
    each within one part. With ``shuffle``, positions and batch order are reshuffled per epoch
    (:meth:`set_epoch`) from ``seed``; with ``world > 1`` rank ``rank`` gets every ``world``-th
    batch of a list cut to a multiple of ``world``.

    Args:
        sizes: the length of each part of the :class:`ArchDataset`.
        batch_size: positions per batch (a part's last batch may be shorter).
        shuffle: reshuffle positions and batch order every epoch.
        seed: seeds the shuffle (with the epoch).
        rank: this process's rank under DDP.
        world: the number of DDP processes.
    """

    def __init__(self, sizes: Sequence[int], batch_size: int, shuffle: bool = False,
                 seed: int = 0, rank: int = 0, world: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.sizes, self.batch_size, self.shuffle = list(sizes), batch_size, shuffle
        self.seed, self.rank, self.world, self.epoch = seed, rank, world, 0

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        batches, start = [], 0
        for n in self.sizes:
            order = torch.randperm(n, generator=g) if self.shuffle else torch.arange(n)
            batches += [(start + chunk).tolist() for chunk in order.split(self.batch_size)]
            start += n
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g)]
        if self.world > 1:
            batches = batches[: len(batches) // self.world * self.world][self.rank :: self.world]
        return batches

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
