"""Property prediction: regression of a zoo metric, classification of a label.

``Regression``: the model predicts ``(y - mean) / std`` of the training targets (MSE loss);
metrics are Kendall's tau, R^2 and MSE in the target's own units. ``Classification``: logits of
``num_classes`` classes, cross-entropy against (possibly mixed) one-hot targets; accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from weightspace.tasks.base import TASKS
from weightspace.tasks.metrics import classification_metrics, regression_metrics
from weightspace.tasks.zoo_task import ZooTask


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@TASKS.register("predict")
class Regression(ZooTask):
    """Regression of a zoo column (a network's accuracy, its generalisation gap, ...).

    The model predicts ``(y - mean) / std`` of the training targets under an MSE loss; metrics
    are Kendall's tau, R^2 and MSE in the target's own units.

    Args:
        target: the zoo column to predict (``task.target``).
        recipe: the zoo's recipe config.
        archs: the architecture ids trained on.
    """

    name, score = "predict", "kendall_tau"

    def __init__(self, target: str, recipe: dict | None = None, archs: Sequence[str] = ()):
        super().__init__(recipe or {}, archs)
        self.target = target
        self.mean, self.std = 0.0, 1.0

    @classmethod
    def create(cls, cfg, recipe, archs):
        return cls(cfg.target, recipe, archs)

    def out_dim(self) -> int:
        return 1

    def fit(self, train_targets: Tensor):
        self.mean = float(train_targets.mean())
        self.std = float(train_targets.std().clamp_min(1e-8))

    def stats(self) -> dict:
        return {"mean": self.mean, "std": self.std}

    def load_stats(self, state: dict):
        self.mean, self.std = float(state["mean"]), float(state["std"])

    def encode(self, y: Tensor) -> Tensor:
        return (y.float() - self.mean) / self.std

    def objective(self, out, vecs, buffers, target, arch=0):
        return F.mse_loss(out.float().squeeze(-1), target)

    def record(self, out, vecs, buffers, y, arch=0):
        return out.detach().float().squeeze(-1) * self.std + self.mean

    def metrics(self, records, y):
        return regression_metrics(records, y)

    def plot_records(self, out_dir, records, y):
        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.scatter(y, records, s=8, alpha=0.6)
        lo, hi = float(min(y.min(), records.min())), float(max(y.max(), records.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set(xlabel=f"true {self.target}", ylabel=f"predicted {self.target}",
               title="test split")
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "predicted_vs_true.png", dpi=120)
        plt.close(fig)


@TASKS.register("classify")
class Classification(ZooTask):
    """Classification of networks by a label column (the digit an INR draws).

    Logits of ``num_classes`` classes under cross-entropy against (possibly mixed) one-hot
    targets; metrics are accuracy and cross-entropy.

    Args:
        target: the zoo column of integer labels (``task.target``).
        num_classes: the number of classes; ``None`` counts them in the training labels.
        recipe: the zoo's recipe config.
        archs: the architecture ids trained on.
    """

    name, score = "classify", "accuracy"

    def __init__(self, target: str, num_classes: int | None = None, recipe: dict | None = None,
                 archs: Sequence[str] = ()):
        super().__init__(recipe or {}, archs)
        self.target, self.num_classes = target, num_classes

    @classmethod
    def create(cls, cfg, recipe, archs):
        return cls(cfg.target, cfg.get("num_classes"), recipe, archs)

    def fit(self, train_targets: Tensor):
        labels = train_targets.long()
        if not torch.equal(labels.float(), train_targets.float()) or labels.min() < 0:
            raise ValueError(f"classification needs non-negative integer labels in column "
                             f"{self.target!r}")
        seen = int(labels.max()) + 1
        if self.num_classes is None:
            self.num_classes = seen
        elif seen > self.num_classes:
            raise ValueError(f"column {self.target!r} has label {seen - 1}, but "
                             f"task.num_classes is {self.num_classes}")

    def stats(self) -> dict:
        return {"num_classes": self.num_classes}

    def load_stats(self, state: dict):
        self.num_classes = int(state["num_classes"])

    def out_dim(self) -> int:
        if self.num_classes is None:
            raise RuntimeError("call fit() with the training labels first")
        return self.num_classes

    def encode(self, y: Tensor) -> Tensor:
        return F.one_hot(y.long(), self.num_classes).float()

    def objective(self, out, vecs, buffers, target, arch=0):
        return F.cross_entropy(out.float(), target)  # soft (mixed) targets are allowed

    def record(self, out, vecs, buffers, y, arch=0):
        return out.detach().float()

    def metrics(self, records, y):
        logits = torch.from_numpy(records)
        return {**classification_metrics(records, y),
                "cross_entropy": float(F.cross_entropy(logits, torch.from_numpy(y).long()))}

    def plot_records(self, out_dir, records, y):
        plt = _pyplot()
        k = self.num_classes
        counts = np.zeros((k, k))
        np.add.at(counts, (y.astype(int), records.argmax(-1)), 1)
        fig, ax = plt.subplots(figsize=(4.5, 4))
        im = ax.imshow(counts / counts.sum(1, keepdims=True).clip(min=1), cmap="Blues",
                       vmin=0, vmax=1)
        ax.set(xlabel="predicted", ylabel="true", title="test split (row-normalised)",
               xticks=range(k), yticks=range(k))
        fig.colorbar(im)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "confusion_matrix.png", dpi=120)
        plt.close(fig)
