"""``ZooTask``: a metanetwork task on the networks of a zoo.

Batches are ``(vecs [B, P], buffers [B, Q], target, arch)``: rows of one split of the zoo
(split by run, :class:`~weightspace.zoo.dataset.ZooDataset`), all of one architecture
(position ``arch`` among the task's architectures, :mod:`weightspace.data.arch_batches`),
augmented on the device. The model is a :class:`~weightspace.nn.WeightSpaceModel`; its output is
``[B, out_dim]`` for an invariant task and ``delta [B, P]`` (a change of every weight, in the
spec's layout) for an equivariant one.

A subclass says what is learned per batch: :meth:`ZooTask.encode` turns zoo targets into what
:meth:`ZooTask.objective` compares against (standardised values, one-hot labels -- so that
MixUp can mix them); :meth:`ZooTask.record` keeps per-network results that
:meth:`ZooTask.metrics` reads and :meth:`ZooTask.plot_records` draws.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor
from torch.utils.data import DataLoader

from weightspace.data.arch_batches import ArchBatchSampler, ArchDataset
from weightspace.data.augment import Augment
from weightspace.graph.spec import GraphSpec
from weightspace.nn.metanetworks import METANETWORKS
from weightspace.nn.weight_model import WeightSpaceModel, flat_layout
from weightspace.tasks.base import Evaluation, Task
from weightspace.zoo.ceiling import noise_ceiling
from weightspace.zoo.reader import Zoo


def choose_archs(zoo: Zoo, arch: str | None, model: str | None = None) -> list[str]:
    """``[arch]``; every architecture for ``"all"``. By default (``None``) every architecture
    the model ``model`` can read together -- all of them for a graph metanetwork, or for a
    flat one when they share one parameter layout (e.g. networks that differ only in their
    activation) -- else the one with the most models; the choice is printed."""
    if arch == "all":
        return list(zoo.archs)
    if arch:
        if arch not in zoo.archs:
            raise KeyError(f"no architecture {arch!r} in {zoo.paths[0]} (config key data.arch); "
                           f"it has {zoo.archs}, or 'all'")
        return [arch]
    if len(zoo.archs) == 1:
        return list(zoo.archs)
    counts = {a: int((zoo.metadata()["arch"] == a).sum()) for a in zoo.archs}
    kind = METANETWORKS.get(model) if model else None
    layouts = {flat_layout(zoo.spec(a)) for a in zoo.archs}
    widths = {zoo.spec(a).num_edge_features for a in zoo.archs}
    if (kind is not None and kind.reads_graphs and len(widths) == 1) or len(layouts) == 1:
        print(f"data.arch=null: training on all {len(counts)} architectures of the zoo "
              f"({', '.join(counts)})")
        return list(zoo.archs)
    largest = max(counts, key=counts.get)
    print(f"data.arch=null: training on architecture {largest} ({counts[largest]} of "
          f"{sum(counts.values())} models); model {model} cannot read the zoo's "
          f"{len(counts)} architectures together (choose one with data.arch=ID)")
    return [largest]


def _collate(items):
    return tuple(torch.stack(c) for c in zip(*items, strict=True))


class ZooTask(Task):
    """A metanetwork task on a zoo's networks; subclasses define the per-batch objective.

    Args:
        recipe: the zoo's recipe config (``Zoo.recipe``).
        archs: the architecture ids (spec ids) the task trains on.

    Class attributes (beside :class:`~weightspace.tasks.base.Task`'s):
        equivariant: whether the model outputs ``delta [B, P]`` instead of ``[B, out_dim]``.
    """

    kind = "metanetwork"
    equivariant: bool = False

    def __init__(self, recipe: dict, archs: Sequence[str]):
        self.recipe, self.archs = dict(recipe), list(archs)
        self.specs: list[GraphSpec] = []
        self.zoo: Zoo | None = None
        self.cfg: DictConfig | None = None

    # ------------------------------------------------------------ the per-batch objective
    @classmethod
    @abstractmethod
    def create(cls, cfg: DictConfig, recipe: dict, archs: Sequence[str]) -> ZooTask:
        """The task of config group ``task`` (``cfg``) for ``archs`` of a zoo of ``recipe``."""

    def out_dim(self) -> int:
        return 0

    def fit(self, train_targets: Tensor):  # noqa: B027 -- most tasks need no statistics
        """Statistics of the training targets (e.g. for standardisation)."""

    def stats(self) -> dict:
        """What :meth:`fit` learned, as plain values."""
        return {}

    def load_stats(self, stats: dict):  # noqa: B027
        """Restore what :meth:`stats` returned."""

    def encode(self, y: Tensor) -> Tensor:
        """Zoo targets -> what :meth:`objective` compares against."""
        return y

    @abstractmethod
    def objective(self, out: Tensor, vecs: Tensor, buffers: Tensor, target: Tensor,
                  arch: int = 0) -> Tensor:
        """The loss of one batch of the model's output ``out``, whose networks are of
        architecture ``arch`` (its position among the task's ``archs``)."""

    @abstractmethod
    def record(self, out: Tensor, vecs: Tensor, buffers: Tensor, y: Tensor,
               arch: int = 0) -> Tensor:
        """Per-network results ``[B, ...]`` (detached) that :meth:`metrics` reads."""

    @abstractmethod
    def metrics(self, records: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """A split's metrics from its records and zoo targets."""

    def plot_records(self, out_dir: Path, records: np.ndarray, y: np.ndarray):  # noqa: B027
        """Figures of the test split's records (optional)."""

    # ------------------------------------------------------------ the Task contract
    @classmethod
    def from_config(cls, cfg: DictConfig) -> ZooTask:
        zoo = Zoo(cfg.data.zoo)
        archs = choose_archs(zoo, cfg.data.arch, cfg.model.get("name"))
        task = cls.create(cfg.task, zoo.recipe, archs)
        task.attach(cfg, zoo)
        return task

    @classmethod
    def from_checkpoint(cls, cfg: DictConfig, state: dict) -> ZooTask:
        specs = [GraphSpec.from_dict(d) for d in json.loads(state["specs"])]
        task = cls.create(cfg.task, state.get("recipe", {}), [s.id for s in specs])
        task.cfg, task.specs = cfg, specs
        task.load_stats(state["task"])
        return task

    def attach(self, cfg: DictConfig, zoo: Zoo):
        """Read the splits of ``zoo`` the run config ``cfg`` asks for; fit the targets."""
        self.cfg, self.zoo = cfg, zoo
        self.specs = [zoo.spec(a) for a in self.archs]
        d = cfg.data
        where = OmegaConf.to_container(d.where) if d.get("where") else None
        self.splits = {s: ArchDataset([zoo.dataset(s, target=cfg.task.target, arch=a,
                                                   fractions=tuple(d.fractions),
                                                   seed=d.split_seed, buffers=True, where=where)
                                       for a in self.archs])
                       for s in ("train", "val", "test")}
        if min(len(v) for v in self.splits.values()) == 0:
            sizes = {k: len(v) for k, v in self.splits.items()}
            raise ValueError(f"{d.zoo}: a split is empty ({sizes}); build more runs or change "
                             f"data.fractions")
        self.fit(self.splits["train"].targets)

    def setup(self, device, rank=0, world=1, seed=0):
        a, t = self.cfg.get("augment", {}), self.cfg.trainer
        if a.get("mixup", 0) and self.equivariant:
            raise ValueError(f"augment.mixup mixes targets; task {self.name!r} has none to mix")
        self.device = device
        generator = torch.Generator().manual_seed(seed + 1000 * rank)
        self.augments = [Augment(spec, a.get("symmetries", False), a.get("noise", 0.0),
                                 a.get("dropout", 0.0), a.get("mixup", 0.0),
                                 a.get("mixup_permute", False), generator)
                         for spec in self.specs]
        self.samplers = {s: ArchBatchSampler(ds.sizes, t.batch_size, shuffle=(s == "train"),
                                             seed=seed, rank=rank if s == "train" else 0,
                                             world=world if s == "train" else 1)
                         for s, ds in self.splits.items()}
        self.loaders = {s: DataLoader(ds, batch_sampler=self.samplers[s], collate_fn=_collate,
                                      num_workers=t.get("num_workers", 0))
                        for s, ds in self.splits.items()}

    def build_model(self, cfg: DictConfig) -> WeightSpaceModel:
        model = WeightSpaceModel.from_config(cfg, self.specs, self.out_dim(), self.equivariant,
                                             self.recipe)
        if self.zoo is not None:
            model.fit_normalization([torch.from_numpy(self.zoo.params(part.indices))
                                     for part in self.splits["train"].parts])
        return model

    def batches(self, epoch: int):
        self.samplers["train"].set_epoch(epoch)
        for vecs, buffers, y, arch in self.loaders["train"]:
            vecs, buffers, y = (t.to(self.device) for t in (vecs, buffers, y))
            arch = int(arch[0])
            yield (*self.augments[arch](vecs, buffers, self.encode(y)), arch)

    def loss(self, model, batch):
        vecs, buffers, target, arch = batch
        return self.objective(model(vecs, buffers, arch), vecs, buffers, target, arch)

    def evaluate(self, model, split, loader: DataLoader | None = None) -> Evaluation:
        """The metrics of ``split`` (of ``loader``'s batches when given), with the
        per-network records and targets."""
        records, ys = [], []
        device = next(model.parameters()).device
        for vecs, buffers, y, arch in loader or self.loaders[split]:
            vecs, buffers, arch = vecs.to(device), buffers.to(device), int(arch[0])
            out = model(vecs, buffers, arch).float()
            with torch.autocast(device.type, enabled=False):  # records at full precision
                records.append(self.record(out, vecs, buffers, y.to(device), arch).cpu())
            ys.append(y)
        records, ys = torch.cat(records).numpy(), torch.cat(ys).numpy()
        return Evaluation(self.metrics(records, ys), records, ys)

    def loader(self, split: str, batch_size: int) -> DataLoader:
        """The batches of ``split`` in order, without augmentation (for evaluation)."""
        ds = self.splits[split]
        return DataLoader(ds, batch_sampler=ArchBatchSampler(ds.sizes, batch_size),
                          collate_fn=_collate)

    def plot(self, out_dir, model, test):
        self.plot_records(out_dir, test.records, test.targets)

    def state(self) -> dict:
        return {"specs": json.dumps([s.to_dict() for s in self.specs]), "recipe": self.recipe,
                "task": self.stats()}

    def load_state(self, state: dict):
        self.load_stats(state["task"])

    def summary(self) -> dict:
        """The architectures, the size of each split, and -- for a zoo that measured its
        target on two test halves -- the noise ceiling of the target over the test split's
        networks (:mod:`weightspace.zoo.ceiling`)."""
        out = {"archs": self.archs, "networks": {k: len(v) for k, v in self.splits.items()}}
        target = self.cfg.task.get("target") if self.zoo is not None else None
        if target:
            test = np.concatenate([part.indices for part in self.splits["test"].parts])
            ceiling = noise_ceiling(self.zoo.metadata(), test).get(target)
            if ceiling is not None:
                out["noise_ceiling"] = ceiling
        return out

    def trained_on(self) -> str:
        """The networks the task trains on, in words: recipe and architecture ids."""
        ids = ", ".join(s.id for s in self.specs)
        name = self.recipe.get("recipe")
        return f"{name} networks (architecture {ids})" if name else f"architecture {ids}"

