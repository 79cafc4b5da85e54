"""``generate_zoo``: learn the distribution of a zoo's networks and sample new ones.

The data are the networks of one architecture of a zoo, split by run (``data.fractions``) and
selected by ``data.where``. Once, before training, every one of them is aligned onto a common
reference (:func:`~weightspace.alignment.canonical.align_rows`; the reference comes from the
training split alone). A batch is ``(inputs, aligned, condition)``:

- ``aligned``: training networks in the common frame, what the decoder must produce;
- ``inputs``: the same networks under a fresh random permutation of their hidden neurons
  (``augment.symmetries``): what the encoder reads, so it cannot rely on a labelling;
- ``condition``: the quantile of each network's ``task.condition`` column (e.g. test accuracy)
  among the training networks, in ``[0, 1]`` (``None`` for an unconditional model).

The model is a :class:`~weightspace.nn.generative.WeightDiffusion`; the loss is its
reconstruction loss plus its diffusion loss. Every split's metrics hold both losses and, where
the zoo's recipe can evaluate networks (:meth:`~weightspace.zoo.recipe.Recipe.evaluate`), the
``task.metric`` of ``task.samples`` sampled networks (``sample_*``), of the split's
reconstructed networks (``recon_*``) and of the split's own networks (``zoo_*``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from weightspace.alignment.canonical import align_rows
from weightspace.data.augment import random_symmetries
from weightspace.graph.spec import GraphSpec
from weightspace.nn.generative import LatentDiffusion, WeightDiffusion
from weightspace.nn.weight_model import WeightSpaceModel
from weightspace.tasks.base import TASKS, Evaluation, Task
from weightspace.tasks.zoo_task import choose_archs
from weightspace.zoo.reader import Zoo
from weightspace.zoo.recipe import recipe_for

SPLITS = ("train", "val", "test")


def quantile_of(sorted_values: torch.Tensor, values) -> torch.Tensor:
    """The fraction of ``sorted_values`` below each of ``values`` (ties counted half), in
    ``[0, 1]``: a column's values as conditions the diffusion model reads."""
    v = torch.as_tensor(values, dtype=sorted_values.dtype).reshape(-1)
    below = torch.searchsorted(sorted_values, v, right=False)
    upto = torch.searchsorted(sorted_values, v, right=True)
    return ((below + upto).double() / (2 * len(sorted_values))).float()


@TASKS.register("generate_zoo")
class GenerateZoo(Task):
    """A generative model of the networks of one architecture (see the module docstring).

    Args:
        spec: the architecture.
        recipe: the zoo's recipe config.
        condition: the zoo column the model is conditioned on, or ``None``.
        metric: the zoo column measured on sampled networks.
        samples: how many networks each evaluation samples.
        rounds: rounds of :func:`~weightspace.alignment.canonical.align_rows`.
        scales: bring every network to its unit scales before aligning (ReLU networks).
    """

    name, kind, score, maximize = "generate_zoo", "generator", "objective", False
    distributed = False

    def __init__(self, spec: GraphSpec, recipe: dict, condition: str | None = None,
                 metric: str = "test_acc", samples: int = 100, rounds: int = 2,
                 scales: bool = False):
        self.spec, self.recipe, self.scales = spec, dict(recipe), scales
        self.condition, self.metric, self.samples, self.rounds = condition, metric, samples, rounds
        self.quantiles = torch.zeros(0)
        self.rows: dict[str, torch.Tensor] = {}
        self.columns: dict[str, dict[str, np.ndarray]] = {}
        self.reference: torch.Tensor | None = None

    @property
    def specs(self) -> list[GraphSpec]:
        return [self.spec]

    @classmethod
    def create(cls, cfg: DictConfig, spec: GraphSpec, recipe: dict) -> GenerateZoo:
        """The task of run config ``cfg`` for architecture ``spec`` of a zoo of ``recipe``,
        without its data (:meth:`read` reads them)."""
        if len(spec.buffers):
            raise ValueError(f"task generate_zoo generates weights alone, and architecture "
                             f"{spec.id} has buffers (BatchNorm statistics); choose another "
                             f"with data.arch=")
        task = cls(spec, recipe, cfg.task.get("condition"), cfg.task.get("metric", "test_acc"),
                   int(cfg.task.get("samples", 100)), int(cfg.model.get("align_rounds", 2)),
                   bool(cfg.model.get("align_scales", False)))
        task.cfg = cfg
        return task

    @classmethod
    def from_config(cls, cfg: DictConfig) -> GenerateZoo:
        zoo = Zoo(cfg.data.zoo)
        archs = choose_archs(zoo, cfg.data.arch, None)
        if len(archs) != 1:
            raise ValueError(f"{cfg.data.zoo}: task generate_zoo learns one architecture; "
                             f"choose one of {list(zoo.archs)} with data.arch=")
        task = cls.create(cfg, zoo.spec(archs[0]), zoo.recipe)
        task.read(cfg, zoo)
        return task

    @classmethod
    def from_checkpoint(cls, cfg: DictConfig, state: dict) -> GenerateZoo:
        spec = GraphSpec.from_dict(json.loads(state["specs"])[0])
        task = cls.create(cfg, spec, state.get("recipe", {}))
        task.load_state(state)
        return task

    def read(self, cfg: DictConfig, zoo: Zoo, reference: torch.Tensor | None = None):
        """The splits' networks and columns, aligned onto the training split's reference (or
        onto ``reference``, e.g. a trained generator's)."""
        d = cfg.data
        where = OmegaConf.to_container(d.where) if d.get("where") else None
        meta = zoo.metadata()
        for column in {self.metric, self.condition} - {None}:
            if column not in meta:
                raise KeyError(f"{d.zoo} has no column {column!r} (config keys task.metric, "
                               f"task.condition); it has {sorted(k for k in meta if k != 'arch')}")
        for split in SPLITS:
            ds = zoo.dataset(split, arch=self.spec.id, fractions=tuple(d.fractions),
                             seed=d.split_seed, where=where)
            if len(ds) == 0:
                raise ValueError(f"{d.zoo}: the {split} split is empty; build more runs or "
                                 f"change data.fractions")
            self.rows[split] = torch.from_numpy(zoo.params(ds.indices)).float()
            self.columns[split] = {k: np.asarray(meta[k])[ds.indices] for k in
                                   {self.metric, self.condition} - {None}}
        progress = bool(cfg.trainer.get("progress", True))
        todo = list(SPLITS)
        if reference is None:
            self.rows["train"], reference = align_rows(self.spec, self.rows["train"],
                                                       rounds=self.rounds, scales=self.scales,
                                                       progress=progress)
            todo.remove("train")
        self.reference = reference
        for split in todo:
            self.rows[split] = align_rows(self.spec, self.rows[split], reference,
                                          scales=self.scales)[0]
        if self.condition:
            values = self.columns["train"][self.condition].astype(np.float64)
            self.quantiles = torch.from_numpy(np.sort(values)).float()

    def maker(self):
        """The zoo's recipe (built once: its data and networks are read on first use), or
        None where it is not installed."""
        if not hasattr(self, "_maker"):
            try:
                self._maker = recipe_for(self.recipe)
            except (KeyError, ValueError):
                self._maker = None
        return self._maker

    def conditions(self, split: str) -> torch.Tensor | None:
        """``[N]``: the quantiles of the split's networks' condition column."""
        if not self.condition:
            return None
        return quantile_of(self.quantiles, self.columns[split][self.condition])

    # ------------------------------------------------------------ the Task contract
    def setup(self, device, rank=0, world=1, seed=0):
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.symmetries = bool(self.cfg.get("augment", {}).get("symmetries", False))
        self.batch_size = int(self.cfg.trainer.batch_size)
        m, epochs = self.cfg.model, int(self.cfg.trainer.epochs)
        self.passes = int(m.get("passes", 1))
        # the first epochs train the autoencoder, the rest the diffusion on its frozen latents
        self.autoencoder_epochs = max(1, round(float(m.get("autoencoder_share", 0.5)) * epochs))
        self.phase = "autoencoder"

    def build_model(self, cfg: DictConfig) -> WeightDiffusion:
        latent = int(cfg.latent)
        encoder = WeightSpaceModel.from_config(cfg.encoder, [self.spec], latent, False,
                                               self.recipe)
        diffusion = LatentDiffusion(latent, int(cfg.diffusion_hidden), int(cfg.diffusion_depth),
                                    int(cfg.timesteps), self.condition is not None,
                                    float(cfg.uncond_prob))
        model = WeightDiffusion(self.spec, encoder, latent,
                                OmegaConf.to_object(cfg.decoder_hidden)
                                if isinstance(cfg.decoder_hidden, DictConfig | list)
                                else cfg.decoder_hidden, diffusion, float(cfg.latent_noise))
        if "train" in self.rows:
            encoder.fit_normalization([self.rows["train"]])
            model.fit_frame(self.rows["train"], self.reference)
        return model

    def batches(self, epoch: int):
        self.phase = "autoencoder" if epoch <= self.autoencoder_epochs else "diffusion"
        rows, cond = self.rows["train"], self.conditions("train")
        for _ in range(self.passes):
            order = torch.randperm(len(rows), generator=self.generator)
            for chunk in order.split(self.batch_size):
                aligned = rows[chunk]
                inputs = (random_symmetries(self.spec, aligned, self.generator, scale=False)
                          if self.symmetries else aligned)
                c = None if cond is None else cond[chunk].to(self.device)
                yield inputs.to(self.device), aligned.to(self.device), c

    def loss(self, model, batch):
        inputs, aligned, condition = batch
        if self.phase == "autoencoder":
            return model.reconstruction_loss(inputs, aligned, self.generator)
        with torch.no_grad():
            z = model.encode(inputs)
        return model.diffusion.loss(z, condition, self.generator)

    def better(self, a: float, b: float) -> bool:
        """Always: the generator kept is the last epoch's (a validation loss does not rank
        generators, and its samples' accuracy is measured on the test data)."""
        return True

    def evaluate(self, model, split) -> Evaluation:
        device = next(model.parameters()).device
        g = torch.Generator().manual_seed(0)  # the same noise draws at every evaluation
        rows, cond = self.rows[split], self.conditions(split)
        totals, recon = np.zeros(2), []
        for chunk in torch.arange(len(rows)).split(256):
            x = rows[chunk].to(device)
            c = None if cond is None else cond[chunk].to(device)
            z = model.encode(x)  # once, for both losses and the reconstruction
            r = model.reconstruction_loss(x, x, g, z)
            d = model.diffusion.loss(z, c, g)
            totals += len(chunk) * np.array([float(r), float(d)])
            recon.append(model.decode(z).float().cpu())
        rec, dif = (float(v) for v in totals / len(rows))
        metrics = {"objective": rec + dif, "reconstruction": rec, "diffusion": dif}
        measured = self._measure(torch.cat(recon))
        if measured is None:
            return Evaluation(metrics)
        samples = model.sample(self.samples, None if cond is None else
                               torch.rand(self.samples, generator=g), generator=g).cpu()
        sampled = self._measure(samples)
        zoo = self.columns[split][self.metric].astype(np.float64)
        # the samples' metric is the recipe's (test accuracy on its test data) on every split:
        # it is logged, never used to pick a checkpoint (see better)
        metrics.update({f"recon_{self.metric}": float(np.nanmean(measured)),
                        f"sample_{self.metric}": float(np.nanmean(sampled)),
                        f"sample_{self.metric}_median": float(np.nanmedian(sampled)),
                        f"zoo_{self.metric}_median": float(np.median(zoo))})
        return Evaluation(metrics, sampled, zoo)

    def _measure(self, rows: torch.Tensor) -> np.ndarray | None:
        """``task.metric`` of networks ``rows`` as the zoo's recipe measures it; None where
        the recipe cannot evaluate networks (or is not installed)."""
        recipe = self.maker()
        if recipe is None:
            return None
        finite = torch.isfinite(rows).all(1)
        columns = recipe.evaluate(self.spec.id, rows.nan_to_num(0.0, 0.0, 0.0))
        if columns is None or self.metric not in columns:
            return None
        values = np.asarray(columns[self.metric], dtype=np.float64)
        values[~finite.numpy()] = np.nan  # a sample that diverged is no network
        return values

    def plot(self, out_dir: Path, model, test: Evaluation):
        if test.records is None:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        bins = np.linspace(min(np.nanmin(test.records), test.targets.min()),
                           max(np.nanmax(test.records), test.targets.max()), 30)
        ax.hist(test.targets, bins, alpha=0.6, density=True, label="zoo (test split)")
        ax.hist(test.records[np.isfinite(test.records)], bins, alpha=0.6, density=True,
                label=f"{len(test.records)} samples")
        ax.set(xlabel=self.metric, ylabel="density", title="sampled networks against the zoo")
        ax.legend()
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "samples_vs_zoo.png", dpi=120)
        plt.close(fig)

    def state(self) -> dict:
        return {"specs": json.dumps([self.spec.to_dict()]), "recipe": self.recipe,
                "task": {"condition": self.condition, "quantiles": self.quantiles.tolist()}}

    def load_state(self, state: dict):
        self.quantiles = torch.tensor(state["task"]["quantiles"], dtype=torch.float32)

    def summary(self) -> dict:
        return {"archs": [self.spec.id], "networks": {k: len(v) for k, v in self.rows.items()},
                "condition": self.condition}

    def trained_on(self) -> str:
        name = self.recipe.get("recipe")
        return f"{name} networks (architecture {self.spec.id})" if name else \
            f"architecture {self.spec.id}"
