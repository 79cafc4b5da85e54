"""``Task``: the one contract between what is trained and the training loop.

A task knows its data and its model; the loop (:func:`weightspace.training.run`) knows how to
train. The task says how a batch is built (:meth:`Task.batches`), what the loss of a batch is
(:meth:`Task.loss`), which metrics a split gets (:meth:`Task.evaluate`) and what is plotted
(:meth:`Task.plot`); the loop owns the device, DistributedDataParallel, mixed precision,
checkpoints, resume and logging. Two families implement it: metanetwork tasks on a zoo
(:class:`~weightspace.tasks.zoo_task.ZooTask`) and hypernetwork tasks on a condition
(:class:`~weightspace.hyper.tasks.HyperTask`).

Life of a task in the loop::

    task = TASKS[cfg.task.name].from_config(cfg)   # reads its data
    task.setup(device, rank, world, seed)          # samplers, augmentations, data on device
    model = task.build_model(cfg.model)
    for epoch: for batch in task.batches(epoch): task.loss(model, batch) ...
    task.evaluate(model, "val") ...

and from a checkpoint, without its data: ``from_checkpoint(cfg, state)`` then
``build_model(cfg.model)``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor, nn

from weightspace.registry import Registry


@dataclass
class Evaluation:
    """A split's metrics, with what a plot may need.

    Args:
        metrics: metric name -> value.
        records: per-example results ``[N, ...]`` (a zoo task's predictions), if any.
        targets: the matching targets ``[N]``, if any.
    """

    metrics: dict[str, float]
    records: np.ndarray | None = None
    targets: np.ndarray | None = None


class Task(ABC):
    """What a model is trained to do: data, model, batches, loss, metrics and plots.

    Class attributes:
        name: the task's name in configs (``task.name``).
        kind: what the model is, as stored in checkpoints (``"metanetwork"``,
            ``"hypernetwork"``).
        score: the validation metric that picks the best checkpoint.
        maximize: whether a larger score is better.
        distributed: whether the task trains under torchrun (DDP).
    """

    name: str
    kind: str
    score: str
    maximize: bool = True
    distributed: bool = True

    @classmethod
    @abstractmethod
    def from_config(cls, cfg: DictConfig) -> Task:
        """The task of a whole run config (``task``, ``data``, ``trainer`` ...), its data read."""

    @classmethod
    def from_checkpoint(cls, cfg: DictConfig, state: dict) -> Task:
        """The task of a trained model from its run config and :meth:`state`, without reading
        the training data where the task can (zoo tasks do not open the zoo)."""
        task = cls.from_config(cfg)
        task.load_state(state)
        return task

    def setup(self, device: torch.device, rank: int = 0, world: int = 1, seed: int = 0):  # noqa: B027
        """Prepare training on ``device``: this rank's share of the batches, random
        generators seeded from ``seed``."""

    @abstractmethod
    def build_model(self, cfg: DictConfig) -> nn.Module:
        """A fresh model from the ``model`` config group, fitted to the training data's
        statistics where it has any."""

    @abstractmethod
    def batches(self, epoch: int) -> Iterable:
        """The training batches of ``epoch``, on the device :meth:`setup` named."""

    @abstractmethod
    def loss(self, model: nn.Module, batch) -> Tensor:
        """The training loss of one batch (a scalar)."""

    @abstractmethod
    def evaluate(self, model: nn.Module, split: str) -> Evaluation:
        """Metrics of ``model`` on ``split`` (``"val"`` or ``"test"``); called without
        gradients, with the model in eval mode."""

    def plot(self, out_dir: Path, model: nn.Module, test: Evaluation):  # noqa: B027 -- optional
        """Figures of the test split, written into ``out_dir``."""

    def state(self) -> dict:
        """What the task learned or drew (plain values and tensors), stored in checkpoints."""
        return {}

    def load_state(self, state: dict):  # noqa: B027
        """Restore what :meth:`state` returned."""

    def summary(self) -> dict:
        """Values added to ``metrics.json`` beside the metrics."""
        return {}

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` beats ``b`` (NaN never does)."""
        if np.isnan(a):
            return False
        return np.isnan(b) or (a > b if self.maximize else a < b)


TASKS: Registry[type[Task]] = Registry("task", "task.name")
