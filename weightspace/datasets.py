"""Datasets of the zoos, tasks and benchmarks: scikit-learn's handwritten digits (embedded),
local ``npz`` files and torchvision datasets already on disk. Nothing downloads."""

from __future__ import annotations

import torch
from torch import Tensor


def load_digits_splits(seed: int = 0, fractions=(0.6, 0.2, 0.2)
                       ) -> dict[str, tuple[Tensor, Tensor]]:
    """Digits split into ``train``/``val``/``test`` (seeded; images ``[n, 1, 8, 8]`` in 0..1)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return _split(x, torch.tensor(data.target, dtype=torch.long), seed, fractions)


def load_image_splits(source: str = "digits", seed: int = 0, fractions=(0.6, 0.2, 0.2)
                      ) -> dict[str, tuple[Tensor, Tensor]]:
    """Train/val/test images ``[n, C, H, W]`` in 0..1 and labels, from a local source.

    ``source`` is ``"digits"`` (embedded), ``"npz:PATH"`` (arrays ``x`` -- ``[n, H, W]``,
    ``[n, C, H, W]`` or ``[n, H, W, C]`` with ``C`` in 1..4 -- and ``y``; uint8 is scaled by
    1/255), or ``"torchvision:NAME:ROOT"`` (``torchvision.datasets.NAME`` already downloaded
    under ``ROOT``; opened with ``download=False``). Nothing is downloaded. Where a source has
    no validation split, it is cut from its training images.
    """
    if source == "digits":
        return load_digits_splits(seed, fractions)
    kind, _, rest = source.partition(":")
    if kind == "npz":
        import numpy as np

        with np.load(rest, allow_pickle=False) as f:
            x, y = _images(torch.from_numpy(f["x"])), torch.from_numpy(f["y"]).long()
        return _split(x, y, seed, fractions)
    if kind == "torchvision":
        name, _, root = rest.partition(":")
        try:
            import torchvision.datasets as tvd
        except ImportError:
            raise ImportError("dataset source 'torchvision:...' needs torchvision installed") \
                from None
        make = getattr(tvd, name, None)
        if make is None:
            raise ValueError(f"torchvision.datasets has no {name!r}")
        parts = {}
        for train in (True, False):
            ds = make(root, train=train, download=False)
            data = torch.as_tensor(ds.data)
            parts[train] = (_images(data), torch.as_tensor(ds.targets).long())
        x, y = parts[True]
        splits = _split(x, y, seed, (fractions[0] / (fractions[0] + fractions[1]),
                                     fractions[1] / (fractions[0] + fractions[1]), 0.0))
        splits["test"] = parts[False]
        return splits
    raise ValueError(f"unknown dataset source {source!r}: use 'digits', 'npz:PATH' or "
                     f"'torchvision:NAME:ROOT'")


def _images(x: Tensor) -> Tensor:
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float()
    if x.dim() == 3:
        return x.unsqueeze(1)
    if x.dim() == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return x.permute(0, 3, 1, 2).contiguous()
    if x.dim() != 4:
        raise ValueError(f"images must be [n, H, W] or [n, C, H, W], got {list(x.shape)}")
    return x


def _split(x: Tensor, y: Tensor, seed: int, fractions) -> dict[str, tuple[Tensor, Tensor]]:
    if len(x) != len(y):
        raise ValueError(f"{len(x)} images but {len(y)} labels")
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(round(len(y) * fractions[0]))
    n_val = int(round(len(y) * fractions[1]))
    parts = {"train": order[:n_train], "val": order[n_train : n_train + n_val],
             "test": order[n_train + n_val :]}
    return {name: (x[idx], y[idx]) for name, idx in parts.items()}


def digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits as ``[1797, 64]`` intensities in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return (torch.tensor(data.images, dtype=torch.float32).reshape(-1, 64) / 16.0,
            torch.tensor(data.target))


def pixel_grid(side: int = 8) -> torch.Tensor:
    """``[side * side, 2]`` coordinates in [-1, 1]^2, row-major like the images."""
    axis = torch.linspace(-1, 1, side)
    return torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
