"""Embedded datasets: scikit-learn's handwritten digits ship with the package; nothing downloads."""

from __future__ import annotations

import torch
from torch import Tensor


def load_digits_tensors(seed: int = 0, test_fraction: float = 0.25
                        ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The 1,797 8x8 digits as ``(x_train, y_train, x_test, y_test)``.

    Images are scaled from 0..16 to 0..1 and shaped ``[n, 1, 8, 8]``; the split is a seeded
    random permutation, stratification-free, identical for a given seed in every process.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def load_digits_splits(seed: int = 0, fractions=(0.6, 0.2, 0.2)
                       ) -> dict[str, tuple[Tensor, Tensor]]:
    """Digits split into ``train``/``val``/``test`` (seeded; images ``[n, 1, 8, 8]`` in 0..1)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(round(len(y) * fractions[0]))
    n_val = int(round(len(y) * fractions[1]))
    parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val],
             "test": order[n_train + n_val :]}
    return {name: (x[idx], y[idx]) for name, idx in parts.items()}
