"""Networks from a trained zoo generator (``task=generate_zoo``): sampled, made into modules,
written as a zoo, and judged against the zoo they were learned from."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import Tensor, nn

from weightspace.generation.memorisation import memorisation_report
from weightspace.graph.convert import load_flat
from weightspace.tasks.generate_zoo import GenerateZoo, quantile_of
from weightspace.training.checkpoint import Trained, load_trained
from weightspace.zoo.reader import Zoo
from weightspace.zoo.writer import ZooWriter


def load_generator(checkpoint: str | os.PathLike | Trained, device="cpu") -> Trained:
    """A trained zoo generator from its run directory or ``best.pt``."""
    return load_trained(checkpoint, device, kind="generator")


def conditions_of(trained: Trained, n: int, condition=None,
                  generator: torch.Generator | None = None) -> Tensor | None:
    """``[n]`` quantiles for values of the generator's condition column (one value or
    ``n``). Without a value, a conditioned generator gets quantiles drawn uniformly, so that
    its samples follow the zoo's distribution (its unconditional mode, trained on the few
    steps whose condition was dropped, makes worse networks: benchmarks/RESULTS.md)."""
    task: GenerateZoo = trained.task
    if condition is None:
        return None if task.condition is None else torch.rand(n, generator=generator)
    if task.condition is None:
        raise ValueError("this generator was trained without a condition (task.condition="
                         "null): sample it with condition=None")
    values = torch.as_tensor(condition, dtype=torch.float32).reshape(-1)
    if values.numel() not in (1, n):
        raise ValueError(f"condition must be one value or {n}, got {values.numel()}")
    return quantile_of(task.quantiles, values).expand(n)


def sample_rows(trained: Trained, n: int, condition=None, *, steps: int | None = None,
                guidance: float = 0.0, seed: int | None = None) -> Tensor:
    """``[n, P]``: ``n`` sampled networks' weights in the architecture's flat layout;
    ``condition``: values of the generator's condition column (e.g. a test accuracy)."""
    if n < 1:
        raise ValueError(f"n must be a positive number of networks, got {n}")
    g = None if seed is None else torch.Generator().manual_seed(seed)
    return trained.model.sample(n, conditions_of(trained, n, condition, g), steps, guidance,
                                g).float().cpu()


def as_modules(trained: Trained, rows: Tensor) -> list[nn.Module]:
    """One module per row, built as the zoo's recipe builds the architecture."""
    task: GenerateZoo = trained.task
    template = task.maker().network_of(task.spec.id)
    return [load_flat(copy.deepcopy(template), task.spec, row).eval() for row in rows]


def write_samples(trained: Trained, rows: Tensor, out: str | os.PathLike,
                  condition=None, seed: int = 0) -> Path:
    """Write sampled networks as a zoo (run ids 0..n-1, epoch 0) with the metrics the
    recipe measures on them, so every zoo tool reads them."""
    task: GenerateZoo = trained.task
    n = len(rows)
    meta: dict[str, np.ndarray] = {"run_id": np.arange(n), "seed": np.full(n, seed),
                                   "epoch": np.zeros(n, dtype=np.int64),
                                   "step": np.zeros(n, dtype=np.int64)}
    if condition is not None:
        meta["condition"] = np.broadcast_to(np.asarray(condition, dtype=np.float64), (n,)).copy()
    measured = task.maker().evaluate(task.spec.id, rows)
    meta.update(measured or {})
    writer = ZooWriter(out, {**task.recipe, "generated_by": "weightspace generate"})
    writer.write(task.spec, rows, meta)
    return writer.finalize()


def condition_sweep(trained: Trained, bins: int = 5, per_bin: int = 20, seed: int = 0
                    ) -> dict:
    """Samples asked for each of ``bins`` quantile bins of the condition column: the
    value asked for, the mean measured metric per bin, and the rank correlation between
    bin and metric (Spearman)."""
    task: GenerateZoo = trained.task
    recipe = task.maker()
    g = torch.Generator().manual_seed(seed)
    asked, means = [], []
    for b in range(bins):
        q = (b + 0.5) / bins
        rows = trained.model.sample(per_bin, torch.full((per_bin,), q), generator=g).cpu()
        metric = recipe.evaluate(task.spec.id, rows)[task.metric]
        asked.append(float(np.quantile(task.quantiles.numpy(), q)))
        means.append(float(np.nanmean(metric)))
    rho = spearmanr(np.arange(bins), means).statistic if bins > 1 else float("nan")
    return {"asked": asked, "mean": means, "spearman": float(rho)}


def judge(checkpoint: str | os.PathLike | Trained, n: int = 100, zoo: str | None = None,
          seed: int = 0, device: str = "cpu") -> dict:
    """The memorisation report of ``n`` samples of a generator against the training split of
    its zoo (``zoo``: another path to it), and its condition sweep when it has a condition.
    A conditioned generator's samples get conditions drawn uniformly over the quantiles, so
    that they follow the zoo's distribution."""
    trained = load_generator(checkpoint, device)
    cfg = trained.config
    if zoo is not None:
        cfg.data.zoo = zoo
    task = GenerateZoo.create(cfg, trained.task.spec, trained.task.recipe)  # with the data
    with Zoo(cfg.data.zoo) as z:
        if task.spec.id not in z.archs:
            raise ValueError(f"{cfg.data.zoo} holds no networks of architecture "
                             f"{task.spec.id}, which the generator was trained on")
        # the zoo's networks in the generator's frame: aligned onto its stored reference
        task.read(cfg, z, trained.model.reference.cpu())
    recipe = task.maker()
    arch = task.spec.id
    train = task.rows["train"]
    samples = sample_rows(trained, n, seed=seed)
    report = memorisation_report(
        task.spec, train, samples, lambda r: recipe.evaluate(arch, r)[task.metric],
        lambda r: recipe.predictions(arch, r), metric=task.metric,
        train_metric=task.columns["train"][task.metric].astype(np.float64), seed=seed)
    out = {"report": report.to_dict(), "table": report.table(),
           "zoo_median": float(np.median(task.columns["train"][task.metric]))}
    if task.condition is not None:
        out["conditioning"] = condition_sweep(trained, seed=seed)
    return out
