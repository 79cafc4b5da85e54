"""Datasets of the zoos, tasks and benchmarks: scikit-learn's handwritten digits (embedded),
MNIST-1D (generated offline by the ``mnist1d`` package and cached), local ``npz`` files and
torchvision datasets already on disk. Nothing downloads."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from weightspace.errors import ConfigError

MNIST1D_SAMPLES = 16000


def load_digits_splits(seed: int = 0, fractions=(0.6, 0.2, 0.2)
                       ) -> dict[str, tuple[Tensor, Tensor]]:
    """Digits split into ``train``/``val``/``test`` (seeded; images ``[n, 1, 8, 8]`` in 0..1)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return _split(x, torch.tensor(data.target, dtype=torch.long), seed, fractions)


def load_image_splits(source: str = "digits", seed: int = 0, fractions=(0.6, 0.2, 0.2),
                      cache_dir: str | os.PathLike | None = None
                      ) -> dict[str, tuple[Tensor, Tensor]]:
    """Train/val/test inputs and labels, from a local or generated source.

    ``source`` is ``"digits"`` (embedded, images ``[n, 1, 8, 8]``), ``"mnist1d"`` or
    ``"mnist1d:N"`` (``N`` MNIST-1D signals ``[n, 1, 40]``, default 16,000, generated from
    ``seed`` and cached in ``cache_dir``: see :func:`load_mnist1d`), ``"npz:PATH"`` (arrays
    ``x`` -- ``[n, H, W]``, ``[n, C, H, W]`` or ``[n, H, W, C]`` with ``C`` in 1..4 -- and
    ``y``; uint8 is scaled by 1/255), or ``"torchvision:NAME:ROOT"``
    (``torchvision.datasets.NAME`` already downloaded under ``ROOT``; opened with
    ``download=False``). Nothing is downloaded. Where a source has no validation split, it is
    cut from its training images. ``fractions``: train/val/test shares of a source that has
    no split of its own.
    """
    if source == "digits":
        return load_digits_splits(seed, fractions)
    kind, _, rest = source.partition(":")
    if kind == "mnist1d":
        return _split(*load_mnist1d(mnist1d_size(source), seed, cache_dir), seed, fractions)
    if kind == "npz":
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
    raise ConfigError(f"unknown dataset source {source!r}: use 'digits', 'mnist1d[:N]', "
                     f"'npz:PATH' or 'torchvision:NAME:ROOT'")


def data_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where generated datasets are cached: ``cache_dir``, else ``$WEIGHTSPACE_DATA``, else
    ``~/.cache/weightspace``."""
    if cache_dir is None:
        cache_dir = os.environ.get("WEIGHTSPACE_DATA") or Path.home() / ".cache" / "weightspace"
    return Path(cache_dir)


def mnist1d_size(source: str) -> int:
    """The number of signals a ``"mnist1d"`` or ``"mnist1d:N"`` source names."""
    kind, _, rest = source.partition(":")
    if kind != "mnist1d":
        raise ConfigError(f"dataset {source!r} is not an mnist1d source ('mnist1d:N')")
    try:
        return int(rest) if rest else MNIST1D_SAMPLES
    except ValueError:
        raise ConfigError(f"dataset {source!r}: write mnist1d:N with N a number of "
                         f"signals") from None


def load_mnist1d(samples: int = MNIST1D_SAMPLES, seed: int = 0,
                 cache_dir: str | os.PathLike | None = None) -> tuple[Tensor, Tensor]:
    """``samples`` MNIST-1D signals ``[n, 1, 40]`` (standardised) and their digits ``[n]``.

    Generated with ``mnist1d.data.make_dataset`` (Greydanus 2020; templates of the ten
    digits, randomly padded, translated, scaled, sheared and noised) from ``seed`` -- never
    downloaded -- and cached as ``mnist1d-N-seedS.npz`` in :func:`data_dir`, so every build
    and task reads the same signals.
    """
    if samples < 10:
        raise ValueError(f"mnist1d needs at least 10 signals (one per digit), got {samples}")
    path = data_dir(cache_dir) / f"mnist1d-{samples}-seed{seed}.npz"
    if not path.exists():
        x, y = _generate_mnist1d(samples, seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:
            np.savez(f, x=x, y=y)
        os.replace(tmp, path)  # atomic: a concurrent build reads a whole file or none
    with np.load(path, allow_pickle=False) as f:
        return torch.from_numpy(f["x"]).float().unsqueeze(1), torch.from_numpy(f["y"]).long()


def _generate_mnist1d(samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise ImportError("dataset 'mnist1d' needs the mnist1d package: pip install mnist1d") \
            from None
    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = samples, 1.0, seed
    # make_dataset seeds numpy's and Python's global generators: leave them as they were
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return data["x"].astype(np.float32), data["y"].astype(np.int64)


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
