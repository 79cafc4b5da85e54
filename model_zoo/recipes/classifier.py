"""Recipes that train image classifiers on a local dataset (the embedded digits by default).

Every run gets its own train subset (``train_fraction`` of the training images, drawn with the
run's seed), learning rate, weight decay and initialisation; runs of one group (same
architecture and optimiser) train together with :func:`model_zoo.training.train_vmapped`. Each
checkpoint records loss and accuracy on the train, validation and test images and the
generalisation gap ``train_acc - test_acc``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_zoo.training import evaluate_vmapped, train_vmapped
from weightspace.datasets import load_image_splits
from weightspace.functional import batched_forward
from weightspace.graph.spec import GraphSpec
from weightspace.zoo.recipe import Recipe, Run, TrainedModels


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


KEY = ("run_id", "seed", "epoch", "step")


def _pooled(a: tuple[Tensor, Tensor], b: tuple[Tensor, Tensor], n_a: int, n_b: int):
    """Loss and accuracy on the union of two disjoint sets from those on each."""
    return tuple((n_a * u + n_b * v) / (n_a + n_b) for u, v in zip(a, b, strict=True))


class ClassifierRecipe(Recipe):
    # config list key -> hyperparameter drawn from it (uniformly); ranges are log-uniform
    """Image classifiers trained vmapped by groups (module docstring).

    Args:
        config: the ``zoo`` config. Keys read here: ``dataset``, ``data_seed``, ``epochs``,
            ``checkpoints``, ``batch_size``, ``shared_init_seed`` (one initialisation for
            every run), and, per run, ``activations``, ``optimizers``,
            ``train_fractions`` (uniform choices) and ``lr``, ``weight_decay``, ``init_std``
            (log-uniform ranges).
    """

    CHOICES = {"activations": "activation", "optimizers": "optimizer",
               "train_fractions": "train_fraction"}
    LOG_RANGES = ("lr", "weight_decay", "init_std")

    def sample(self, rng) -> dict:
        """The architecture's hyperparameters, then each training hyperparameter the config
        gives a list (uniform choice) or a range (log-uniform) for."""
        h = self.sample_architecture(rng)
        for key, name in self.CHOICES.items():
            if key in self.config:
                value = rng.choice(self.config[key])
                h[name] = float(value) if name == "train_fraction" else str(value)
        for name in self.LOG_RANGES:
            if name in self.config:
                h[name] = log_uniform(rng, *self.config[name])
        return h

    def sample_architecture(self, rng) -> dict:
        return {}

    def inputs(self, x: Tensor) -> Tensor:
        """The images as the network takes them (an MLP flattens them)."""
        return x

    def data(self) -> dict[str, tuple[Tensor, Tensor]]:
        """The config's ``dataset`` (default the embedded digits), split train/val/test."""
        if not hasattr(self, "_data"):
            c = self.config
            splits = load_image_splits(c.get("dataset", "digits"), c.get("data_seed", 0),
                                       tuple(c.get("fractions", (0.6, 0.2, 0.2))),
                                       c.get("data_dir"))
            self._data = {k: (self.inputs(x), y) for k, (x, y) in splits.items()}
            # Two disjoint halves of the test set: the accuracies measured on each (columns
            # test_a_acc, test_b_acc) give the zoo's noise ceiling (weightspace.zoo.ceiling)
            x, y = self._data["test"]
            half = len(y) // 2
            self._data["test_a"], self._data["test_b"] = (x[:half], y[:half]), (x[half:], y[half:])
        return self._data

    def probe_inputs(self, k: int, seed: int = 0) -> Tensor:
        """``k`` inputs of the validation split, drawn with ``seed`` (the test split stays
        what the zoo's accuracies are measured on)."""
        x = self.data()["val"][0]
        if k > len(x):
            raise ValueError(f"model.probes={k}: the validation split has {len(x)} inputs")
        return x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:k]]

    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.data()["train"][0].shape[1:])

    def classes(self) -> int:
        return int(self.data()["train"][1].max()) + 1

    def initialize(self, model: nn.Module, run: Run) -> nn.Module:
        """Weights ``N(0, init_std^2)`` drawn with the run's seed (with ``shared_init_seed:
        S``, with ``S`` for every run: one initialisation, scaled by each run's
        ``init_std``), biases 0."""
        shared = self.config.get("shared_init_seed")
        g = torch.Generator().manual_seed(run.seed if shared is None else int(shared))
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("weight"):
                    p.copy_(torch.randn(p.shape, generator=g) * run.hparams["init_std"])
                else:
                    p.zero_()
        return model

    def _columns(self, measure) -> dict[str, np.ndarray]:
        """The metric columns a checkpoint gets: ``measure(x, y) -> (loss [B], acc [B])`` on
        each split, the test metrics pooled from its two halves, and the generalisation gap."""
        data = self.data()
        metrics = {s: measure(*data[s]) for s in ("train", "val", "test_a", "test_b")}
        metrics["test"] = _pooled(metrics["test_a"], metrics["test_b"],
                                  len(data["test_a"][1]), len(data["test_b"][1]))
        out = {}
        for split, (loss, acc) in metrics.items():
            out[f"{split}_loss"] = np.asarray(loss, dtype=np.float64)
            out[f"{split}_acc"] = np.asarray(acc, dtype=np.float64)
        out["gen_gap"] = out["train_acc"] - out["test_acc"]
        return out

    def _logits(self, arch: str, params: Tensor, x: Tensor, chunk: int = 256) -> Tensor:
        """``[B, n, classes]``: the networks of ``params`` on ``x``, ``chunk`` at a time."""
        model = self.network_of(arch)
        params = torch.as_tensor(params, dtype=torch.float32)
        with torch.no_grad():
            return torch.cat([batched_forward(model, part, x) for part in params.split(chunk)])

    def evaluate(self, arch: str, params: Tensor) -> dict[str, np.ndarray]:
        """Loss and accuracy on every split, as :meth:`train` stores them."""

        def measure(x, y):
            logits = self._logits(arch, params, x)
            loss = F.cross_entropy(logits.transpose(1, 2), y.expand(len(logits), -1),
                                   reduction="none").mean(1)
            return loss, (logits.argmax(-1) == y).float().mean(1)

        return self._columns(measure)

    def predictions(self, arch: str, params: Tensor, split: str = "test") -> Tensor:
        return self._logits(arch, params, self.data()[split][0]).argmax(-1)

    def train(self, runs: list[Run], on_step=None) -> list[TrainedModels]:
        c = self.config
        data = self.data()
        x, y = data["train"]
        models = [self.build(r) for r in runs]
        subsets = []
        for r in runs:
            g = torch.Generator().manual_seed(r.seed + 1)
            n = max(c["batch_size"], int(round(len(y) * r.hparams["train_fraction"])))
            subsets.append(torch.randperm(len(y), generator=g)[:n])

        def per_run(key):
            return torch.tensor([r.hparams[key] for r in runs])

        checkpoints = train_vmapped(
            models[0], models, x, y, subsets, [r.seed for r in runs], per_run("lr"),
            per_run("weight_decay"), runs[0].hparams["optimizer"], c["epochs"],
            c["batch_size"], list(c["checkpoints"]), on_step=on_step,
        )
        spec = GraphSpec.from_module(models[0])
        assert list(checkpoints[0].params) == spec.params.names()  # `ck.flat` is in its layout
        rows, buffer_rows, meta = [], [], {k: [] for k in KEY}
        for ck in checkpoints:
            columns = self._columns(lambda x, y, ck=ck: evaluate_vmapped(
                models[0], ck.params, x, y, buffers=ck.buffers))
            rows.append(ck.flat)  # named_parameters() order: the spec's layout
            buffer_rows.append(torch.cat([ck.buffers[n].reshape(len(runs), -1).double()
                                          for n in spec.buffers.names()], dim=1)
                               if len(spec.buffers) else None)
            for b, r in enumerate(runs):
                for key, value in zip(KEY, (r.run_id, r.seed, ck.epoch, ck.step), strict=True):
                    meta[key].append(value)
                for k, v in r.hparams.items():
                    meta.setdefault(k, []).append(v)
                for k, v in columns.items():
                    meta.setdefault(k, []).append(float(v[b]))
        buffers = torch.cat(buffer_rows) if len(spec.buffers) else None
        return [TrainedModels(spec, torch.cat(rows), {k: np.asarray(v) for k, v in meta.items()},
                              buffers)]
