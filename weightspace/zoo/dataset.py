"""``ZooDataset``: a zoo as a torch Dataset of flat weight vectors and targets.

Splits are by *run*: every checkpoint of a run lands in the same split, so no split sees
another's training trajectory. The run ids are shuffled with ``seed`` and cut at the
cumulative ``fractions`` (train, val, test). Normalisation statistics come from the train
split only. Items are ``(params [P], target)`` -- ``(params, buffers [Q], target)`` with
``buffers=True`` -- and ``params`` alone without a target; a DataLoader batch of indices is
read with one block read per run of consecutive rows (``__getitems__``). Each DataLoader
worker opens the files itself, lazily.

``where`` selects models by their metadata columns: ``{"epoch": [18]}`` keeps the models whose
column takes one of the listed values (e.g. final checkpoints), ``{"val_acc": {"min": 0.5}}``
those whose value lies in ``[min, max]`` (either bound may be left out), e.g. to leave failed
runs out. The split is drawn over all runs of the architecture *before* the selection, so a
run's split never depends on ``where``: a run left out of one selection cannot move into
another selection's test split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:  # the reader builds datasets (Zoo.dataset); this module never opens files
    from weightspace.zoo.reader import Zoo

SPLITS = ("train", "val", "test")


def split_by_run(run_ids: np.ndarray, fractions=(0.8, 0.1, 0.1), seed: int = 0
                 ) -> dict[str, np.ndarray]:
    """Model positions of each split, with all models of a run in the same split."""
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got "
                         f"{fractions}")
    runs = np.unique(run_ids)
    order = np.random.default_rng(seed).permutation(runs)
    cuts = np.round(np.cumsum(fractions)[:2] * len(runs)).astype(int)
    split_of_run = {}
    for name, chunk in zip(SPLITS, np.split(order, cuts), strict=True):
        for r in chunk:
            split_of_run[int(r)] = name
    labels = np.array([split_of_run[int(r)] for r in run_ids])
    return {name: np.nonzero(labels == name)[0] for name in SPLITS}


def selected(meta: dict[str, np.ndarray], positions: np.ndarray, where: dict | None
             ) -> np.ndarray:
    """Which of the models at ``positions`` satisfy every condition of ``where`` (a mask):
    a list of allowed values, one value, or a ``{"min": a, "max": b}`` range (inclusive)."""
    keep = np.ones(len(positions), dtype=bool)
    for column, condition in (where or {}).items():
        if column not in meta:
            raise KeyError(f"no metadata column {column!r} to select on (where=); the zoo "
                           f"has {sorted(k for k in meta if k != 'arch')}")
        values = meta[column][positions]
        if isinstance(condition, Mapping):
            unknown = set(condition) - {"min", "max"}
            if unknown:
                raise KeyError(f"where.{column}: a range takes 'min' and 'max', not "
                               f"{sorted(unknown)}")
            if "min" in condition:
                keep &= values >= condition["min"]
            if "max" in condition:
                keep &= values <= condition["max"]
        else:
            allowed = condition if isinstance(condition, list | tuple) else [condition]
            keep &= np.isin(values, allowed)
    return keep


class ZooDataset(Dataset):
    """One split of a zoo's models of one architecture, as ``(weights, target)`` items.

    Splits are by ``run_id`` (every checkpoint of a run is in the same split), drawn with
    ``seed``, so no run leaks from train to test.

    Args:
        zoo: the :class:`~weightspace.zoo.Zoo`.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        target: the metadata column to predict; ``None``: weights only.
        arch: the architecture (required when the zoo has several).
        fractions: the train/val/test fractions of runs.
        seed: seeds the split.
        normalize: standardise each weight coordinate with its train-split mean and std.
        buffers: also return the buffers (BatchNorm statistics).
        where: keep only models whose metadata match, e.g. ``{"epoch": [18]}`` or
            ``{"test_acc": {"min": 0.5}}``.
    """

    def __init__(self, zoo: Zoo, split: str = "train", target: str | None = None,
                 arch: str | None = None, fractions=(0.8, 0.1, 0.1), seed: int = 0,
                 normalize: bool = False, buffers: bool = False,
                 where: dict | None = None):
        self.zoo = zoo
        if split not in (*SPLITS, "all"):
            raise ValueError(f"split must be one of {SPLITS} or 'all', got {split!r}")
        if arch is None:
            if len(self.zoo.archs) > 1:
                raise ValueError(f"the zoo holds {len(self.zoo.archs)} architectures "
                                 f"({', '.join(self.zoo.archs)}): pass arch=")
            arch = self.zoo.archs[0]
        if arch not in self.zoo.archs:
            raise KeyError(f"no architecture {arch!r} in the zoo; it has {self.zoo.archs}")
        self.arch = arch
        meta = self.zoo.metadata()
        in_arch = np.nonzero(meta["arch"] == arch)[0]
        if target is not None and target not in meta:
            raise KeyError(f"no metadata column {target!r}; the zoo has "
                           f"{sorted(k for k in meta if k != 'arch')}")
        splits = split_by_run(meta["run_id"][in_arch], fractions, seed)
        keep = selected(meta, in_arch, where)
        if not keep.any():
            raise ValueError(f"no model of architecture {arch} matches where={where}")

        def kept(name):  # the selected models of one split, in canonical order
            return in_arch[splits[name][keep[splits[name]]]]

        self.indices = in_arch[keep] if split == "all" else kept(split)
        self._train = kept("train")
        self.target = target
        self.targets = (torch.as_tensor(meta[target][self.indices].astype(np.float64),
                                        dtype=torch.float32) if target else None)
        self.normalize = normalize
        self.with_buffers = buffers
        self._stats = None

    def __len__(self) -> int:
        return int(self.indices.size)

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-coordinate mean and std of the weights over the train split."""
        if self._stats is None:
            total, sq, n = None, None, 0
            for start in range(0, self._train.size, 1024):
                rows = self.zoo.params(self._train[start : start + 1024]).astype(np.float64)
                total = rows.sum(0) if total is None else total + rows.sum(0)
                sq = (rows**2).sum(0) if sq is None else sq + (rows**2).sum(0)
                n += rows.shape[0]
            mean = total / n
            std = np.sqrt(np.maximum(sq / n - mean**2, 0)) + 1e-8
            self._stats = (torch.from_numpy(mean).float(), torch.from_numpy(std).float())
        return self._stats

    def _rows(self, positions) -> torch.Tensor:
        x = torch.from_numpy(self.zoo.params(self.indices[np.asarray(positions)]))
        if self.normalize:
            mean, std = self.stats()
            x = (x - mean) / std
        return x

    def __getitem__(self, i: int):
        return self.__getitems__([i])[0]

    def __getitems__(self, positions: list[int]):
        columns = [self._rows(positions)]
        if self.with_buffers:
            columns.append(torch.from_numpy(self.zoo.buffers(self.indices[np.asarray(positions)])))
        if self.target:
            columns.append(self.targets[positions])
        if len(columns) == 1:
            return list(columns[0])
        return [tuple(c[k] for c in columns) for k in range(len(positions))]
