"""What a hypernetwork is trained to do: ``hyper_regularization`` and ``hyper_inr``.

Both evaluate every weight set of a step in one :func:`~weightspace.functional.batched_forward`.

``hyper_regularization`` (as in the MIP paper's experiments, on the embedded digits): the
condition ``gamma in [0, 1]`` is the weight of an L2 penalty on a digits classifier,

.. math::
    L(\\gamma) = \\mathrm{CE}(f(x; \\theta(\\gamma)), y) + \\gamma\\, s\\, \\|\\theta(\\gamma)\\|^2,

with ``s = task.strength``. Every step draws ``task.conditions`` values of ``gamma`` uniformly
and averages their losses on one minibatch, so one hypernetwork learns the classifier for the
whole range; validation evaluates it on a grid of ``gamma``.

``hyper_inr``: the condition is a digit class (one-hot, 10 values); the hypernetwork generates
a SIREN (the digits_inr architecture) and is trained on the MSE between its rendering and the
digits images of that class -- the best single image per class is the class mean.
"""

from __future__ import annotations

import os
from abc import abstractmethod
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from weightspace.data.minibatches import minibatches
from weightspace.datasets import load_digits_splits, load_image_splits, pixel_grid
from weightspace.functional import batched_forward
from weightspace.hyper.hypernetwork import HyperNetwork
from weightspace.nets import MLP, SIREN, SmallCNN
from weightspace.tasks.base import TASKS, Evaluation, Task

GRID = 5  # conditions evaluated on validation (hyper_regularization)


class HyperTask(Task):
    """A hypernetwork task: conditions in, a target network's weights out, trained on the
    task's own data (no zoo). The model is a :class:`~weightspace.hyper.HyperNetwork`
    (``model=hyper``); every weight set of a step is evaluated in one batched forward.

    Besides :class:`~weightspace.tasks.base.Task`'s, the class attributes:
        cond_dim: the width of a condition.
        batch_size: conditions per training step.
    """

    kind = "hypernetwork"
    distributed = False  # every step already runs all its weight sets at once
    cond_dim: int
    batch_size: int = 64

    @classmethod
    @abstractmethod
    def create(cls, cfg: DictConfig, seed: int = 0) -> HyperTask:
        """The task of config group ``task`` (``cfg``); ``seed`` splits its data."""

    @abstractmethod
    def target(self) -> nn.Module:
        """A fresh target network (initialised from torch's global generator)."""

    @abstractmethod
    def minibatches(self, split: str, batch_size: int,
                    generator: torch.Generator | None = None):
        """The split's data in minibatches (shuffled when a generator is given)."""

    @abstractmethod
    def objective(self, hypernet, batch, generator: torch.Generator) -> Tensor:
        """The loss of one minibatch; conditions are drawn from ``generator``."""

    @abstractmethod
    def metrics(self, hypernet, split: str) -> dict[str, float]:
        """The metrics of the hypernetwork on a split."""

    def plot_hypernetwork(self, out_dir: Path, hypernet):  # noqa: B027 -- optional
        """Figures of the test split."""

    # ------------------------------------------------------------ the Task contract
    @classmethod
    def from_config(cls, cfg: DictConfig) -> HyperTask:
        if cfg.model.name != "hyper":
            raise ValueError(f"task {cfg.task.name!r} trains a hypernetwork: use model=hyper, "
                             f"not model={cfg.model.name}")
        if int(os.environ.get("WORLD_SIZE", 1)) > 1:
            raise ValueError("hypernetwork tasks train in one process (every step already runs "
                             "all its weight sets at once); run without torchrun")
        task = cls.create(cfg.task, int(cfg.data.get("split_seed", 0)))
        task.batch_size, task.mip = int(cfg.trainer.batch_size), bool(cfg.model.mip)
        task.generator = torch.Generator().manual_seed(int(cfg.trainer.seed) + 1)
        return task

    def setup(self, device, rank=0, world=1, seed=0):
        self.to(device)

    def build_model(self, cfg: DictConfig) -> HyperNetwork:
        modules = OmegaConf.to_container(cfg.modules) if cfg.get("modules") is not None \
            else None
        return HyperNetwork(self.target(), self.cond_dim, hidden=list(cfg.hidden), mip=cfg.mip,
                            modules=modules, chunk=cfg.get("chunk"))

    def batches(self, epoch: int):
        yield from self.minibatches("train", self.batch_size, self.generator)

    def loss(self, model, batch):
        return self.objective(model, batch, self.generator)

    def evaluate(self, model, split):
        return Evaluation(self.metrics(model, split))

    def plot(self, out_dir, model, test):
        self.plot_hypernetwork(out_dir, model)

    def state(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state(self, state: dict):
        if "generator" in state:
            self.generator.set_state(state["generator"])

    def summary(self) -> dict:
        return {"mip": self.mip}


@TASKS.register("hyper_regularization")
class HyperRegularization(HyperTask):
    """One hypernetwork for a classifier's whole range of L2 weights ``gamma in [0, 1]``.

    Args:
        target: the classifier generated: ``"mlp"`` (64-64 hidden) or ``"cnn"`` (Small CNN).
        strength: the L2 weight ``s`` at ``gamma = 1``.
        conditions: values of ``gamma`` drawn per step, all evaluated at once.
        dataset: ``digits``, ``npz:PATH`` or ``torchvision:NAME:ROOT`` (local files only).
        seed: splits the dataset.
    """

    name, score, maximize, cond_dim = "hyper_regularization", "accuracy", True, 1

    def __init__(self, target: str = "mlp", strength: float = 0.01, conditions: int = 8,
                 dataset: str = "digits", seed: int = 0):
        if target not in ("mlp", "cnn"):
            raise KeyError(f"unknown target {target!r} (config key task.target); known: mlp, cnn")
        if conditions < 1:
            raise ValueError(f"task.conditions must be at least 1, got {conditions}")
        self.classifier, self.strength, self.conditions = target, float(strength), int(conditions)
        self.data = load_image_splits(dataset, seed)
        x = self.data["train"][0]
        self.image_shape, self.classes = tuple(x.shape[1:]), int(self.data["train"][1].max()) + 1
        self._device = torch.device("cpu")

    @classmethod
    def create(cls, cfg, seed=0):
        return cls(cfg.get("target", "mlp"), cfg.get("strength", 0.01), cfg.get("conditions", 8),
                   cfg.get("dataset", "digits"), seed)

    def target(self) -> nn.Module:
        c, h, w = self.image_shape
        if self.classifier == "mlp":
            return nn.Sequential(nn.Flatten(), MLP(c * h * w, [64, 64], self.classes))
        return SmallCNN(c, 16, self.classes, image_size=h)

    def to(self, device):
        self._device = torch.device(device)
        return self

    def minibatches(self, split, batch_size, generator=None):
        yield from minibatches(self.data[split], batch_size, generator)

    def terms(self, hypernet, gamma: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, ...]:
        """Per condition: the loss, the cross-entropy, the accuracy and ``||theta||^2``."""
        theta = hypernet(gamma)
        logits = batched_forward(hypernet.target, theta, x)  # [B, n, classes]
        ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(theta)), reduction="none")
        ce = ce.view(len(theta), -1).mean(1)
        sq = theta.pow(2).sum(1)
        acc = (logits.argmax(-1) == y).float().mean(1)
        return ce + gamma[:, 0] * self.strength * sq, ce, acc, sq

    def objective(self, hypernet, batch, generator):
        x, y = (t.to(self._device) for t in batch)
        gamma = torch.rand(self.conditions, 1, generator=generator).to(self._device)
        return self.terms(hypernet, gamma, x, y)[0].mean()

    @torch.no_grad()
    def sweep(self, hypernet, split: str, gammas: Tensor) -> dict[str, np.ndarray]:
        x, y = (t.to(self._device) for t in self.data[split])
        loss, ce, acc, sq = self.terms(hypernet, gammas.to(self._device), x, y)
        return {"gamma": gammas[:, 0].cpu().numpy(), "loss": loss.cpu().numpy(),
                "cross_entropy": ce.cpu().numpy(), "accuracy": acc.cpu().numpy(),
                "weight_norm": sq.sqrt().cpu().numpy()}

    def metrics(self, hypernet, split):
        s = self.sweep(hypernet, split, torch.linspace(0, 1, GRID).unsqueeze(1))
        out = {"accuracy": float(s["accuracy"].mean()), "loss": float(s["loss"].mean()),
               "cross_entropy": float(s["cross_entropy"].mean())}
        for g, a, n in zip(s["gamma"], s["accuracy"], s["weight_norm"], strict=True):
            out[f"accuracy@{g:.2f}"], out[f"weight_norm@{g:.2f}"] = float(a), float(n)
        return out

    def plot_hypernetwork(self, out_dir, hypernet):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        s = self.sweep(hypernet, "test", torch.linspace(0, 1, 21).unsqueeze(1))
        fig, ax = plt.subplots(1, 2, figsize=(8, 3.2))
        ax[0].plot(s["gamma"], s["accuracy"], marker=".")
        ax[0].set(xlabel="condition gamma (L2 weight / strength)", ylabel="test accuracy")
        ax[1].plot(s["gamma"], s["weight_norm"], marker=".")
        ax[1].set(xlabel="condition gamma", ylabel="||theta(gamma)||")
        fig.suptitle(f"one hypernetwork, {self.classifier} targets over the whole range",
                     fontsize=9)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "hyper_sweep.png", dpi=120)
        plt.close(fig)


@TASKS.register("hyper_inr")
class HyperINR(HyperTask):
    """A digit class (one-hot condition) in, a SIREN drawing that digit out.

    Args:
        hidden: the SIREN's hidden widths (the digits_inr architecture).
        w0: the SIREN's frequency factor.
        seed: splits the digits.
    """

    name, score, maximize, cond_dim = "hyper_inr", "mse", False, 10

    def __init__(self, hidden=(32, 32), w0: float = 30.0, seed: int = 0):
        self.hidden, self.w0 = tuple(hidden), float(w0)
        self.data = {k: (x.flatten(1), y) for k, (x, y) in load_digits_splits(seed).items()}
        self.side = int(self.data["train"][0].shape[1] ** 0.5)
        self.grid = pixel_grid(self.side)
        x, y = self.data["train"]
        self.class_means = torch.stack([x[y == c].mean(0) for c in range(10)])

    @classmethod
    def create(cls, cfg, seed=0):
        return cls(tuple(cfg.get("hidden", (32, 32))), cfg.get("w0", 30.0), seed)

    def target(self) -> nn.Module:
        return SIREN(2, self.hidden, 1, w0=self.w0)

    def to(self, device):
        self.grid, self.class_means = self.grid.to(device), self.class_means.to(device)
        return self

    def minibatches(self, split, batch_size, generator=None):
        yield from minibatches(self.data[split], batch_size, generator)

    def render(self, hypernet, labels: Tensor) -> Tensor:
        """``[B, pixels]``: the SIREN generated for each label, on the pixel grid."""
        theta = hypernet(F.one_hot(labels.long(), 10).float())
        return batched_forward(hypernet.target, theta, self.grid).squeeze(-1)

    def objective(self, hypernet, batch, generator):
        x, y = (t.to(self.grid.device) for t in batch)
        return F.mse_loss(self.render(hypernet, y), x)

    @torch.no_grad()
    def metrics(self, hypernet, split):
        x, y = (t.to(self.grid.device) for t in self.data[split])
        classes = torch.arange(10, device=self.grid.device)
        renders = self.render(hypernet, classes)
        mean_err = (renders - self.class_means).pow(2).mean()
        return {"mse": float((renders[y] - x).pow(2).mean()),
                "mse_class_mean_images": float((self.class_means[y] - x).pow(2).mean()),
                "psnr_vs_class_mean": float(10 * torch.log10(1 / mean_err))}

    def plot_hypernetwork(self, out_dir, hypernet):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with torch.no_grad():
            renders = self.render(hypernet, torch.arange(10, device=self.grid.device)).cpu()
        fig, axes = plt.subplots(2, 10, figsize=(11, 2.6))
        for c in range(10):
            for row, img in enumerate((renders[c], self.class_means[c].cpu())):
                axes[row, c].imshow(img.view(self.side, self.side).numpy(), cmap="gray_r", vmin=0,
                                    vmax=1)
                axes[row, c].set_xticks([]), axes[row, c].set_yticks([])
            axes[0, c].set_title(str(c), fontsize=8)
        axes[0, 0].set_ylabel("generated", fontsize=8)
        axes[1, 0].set_ylabel("class mean", fontsize=8)
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "hyper_inr.png", dpi=120)
        plt.close(fig)

