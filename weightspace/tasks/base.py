"""``Task``: what a metanetwork is trained to do -- its output, loss, metrics and plot.

A task sees batches ``(vecs [B, P], buffers [B, Q], y [B])`` of a zoo split (all of one
architecture, ``arch``) and the model's output: ``[B, out_dim]`` for an invariant task,
``delta [B, P]`` (a change of every weight, in the spec's layout) for an equivariant one.
:meth:`Task.encode` turns zoo targets into what the loss compares against (standardised values,
one-hot labels), so that augmentations such as MixUp can mix them; :meth:`Task.record` keeps
per-network results for :meth:`Task.metrics`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from torch import Tensor


class Task(ABC):
    name: str
    equivariant: bool = False  # the model outputs delta [B, P] instead of [B, out_dim]
    score: str  # the validation metric that picks the best checkpoint
    maximize: bool = True

    def out_dim(self) -> int:
        return 0

    def fit(self, train_targets: Tensor):  # noqa: B027 -- most tasks need no statistics
        """Statistics of the training targets (e.g. for standardisation)."""

    def state(self) -> dict:
        """What :meth:`fit` learned, as plain values (stored in checkpoints)."""
        return {}

    def load_state(self, state: dict):  # noqa: B027
        """Restore what :meth:`state` returned."""

    def encode(self, y: Tensor) -> Tensor:
        """Zoo targets -> what :meth:`loss` compares against."""
        return y

    @abstractmethod
    def loss(self, out: Tensor, vecs: Tensor, buffers: Tensor, target: Tensor,
             arch: int = 0) -> Tensor:
        """The training loss of one batch, whose networks are of architecture ``arch`` (its
        position among the task's ``archs``)."""

    @abstractmethod
    def record(self, out: Tensor, vecs: Tensor, buffers: Tensor, y: Tensor,
               arch: int = 0) -> Tensor:
        """Per-network results ``[B, ...]`` (detached) that :meth:`metrics` reads."""

    @abstractmethod
    def metrics(self, records: np.ndarray, y: np.ndarray) -> dict[str, float]: ...

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats ``b`` (NaN never does)."""
        if np.isnan(a):
            return False
        return np.isnan(b) or (a > b if self.maximize else a < b)

    def plot(self, out_dir: Path, records: np.ndarray, y: np.ndarray):  # noqa: B027
        """Figures of the test split (optional)."""
