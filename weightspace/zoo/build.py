"""Build a zoo from a recipe: resumable, crash-safe, in chunks of vectorised runs.

Runs ``0 .. n_runs - 1`` are sampled from ``seed`` (the same runs in every process); runs
already in the zoo are skipped; the rest are grouped by the recipe's key and trained
``chunk_size`` at a time; each trained chunk is stored as one shard. With ``world > 1`` each
rank builds the runs ``run_id % world == rank`` into a zoo of its own (merge them with
``weightspace zoo merge``). ``workers=N`` runs N such ranks as local processes writing shards
of one zoo, which the parent merges when all are done.

:func:`build_from_config` is what ``scripts/build_zoo.py`` and ``weightspace zoo build`` run on
the ``build_zoo`` config.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import defaultdict
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from weightspace.zoo.recipe import recipe_for
from weightspace.zoo.writer import ZooWriter


def build_zoo(zoo_config: dict, n_runs: int, seed: int, out: str | Path, chunk_size: int = 32,
              rank: int = 0, world: int = 1, progress: bool = True, finalize: bool = True,
              workers: int = 1) -> Path:
    if n_runs < 1 or chunk_size < 1 or workers < 1:
        raise ValueError(f"n_runs, chunk_size and workers must be positive, got {n_runs}, "
                         f"{chunk_size}, {workers}")
    if workers > 1:
        return _build_in_workers(zoo_config, n_runs, seed, out, chunk_size, workers, progress)
    recipe = recipe_for(zoo_config)
    writer = ZooWriter(out, {**zoo_config, "n_runs": n_runs, "seed": seed})
    done = writer.stored_runs()
    todo = [recipe.run(i, seed) for i in range(n_runs) if i % world == rank and i not in done]
    groups = defaultdict(list)
    for run in todo:
        groups[recipe.group_key(run)].append(run)
    chunks = [g[i : i + chunk_size] for g in groups.values() for i in range(0, len(g),
                                                                            chunk_size)]
    bar = tqdm(total=len(todo), unit="run", disable=not progress, desc=recipe.name,
               dynamic_ncols=True)
    start, stored = time.perf_counter(), 0
    for chunk in chunks:
        for trained in recipe.train(chunk):
            writer.write(trained.spec, trained.params, trained.meta, trained.buffers)
            stored += len(trained.params)
        bar.update(len(chunk))
        bar.set_postfix(models_per_s=f"{stored / (time.perf_counter() - start):.1f}")
    bar.close()
    if finalize:
        writer.finalize()
    return Path(out)


def _worker(args):
    zoo_config, n_runs, seed, out, chunk_size, rank, workers, progress = args
    torch.set_num_threads(max(1, torch.get_num_threads() // workers))
    build_zoo(zoo_config, n_runs, seed, out, chunk_size, rank=rank, world=workers,
              progress=progress and rank == 0, finalize=False)


def _build_in_workers(zoo_config, n_runs, seed, out, chunk_size, workers, progress) -> Path:
    """``workers`` local processes, each the rank of its share of the runs, one zoo."""
    context = mp.get_context("spawn")  # fresh interpreters: no forked torch or h5py state
    jobs = [(zoo_config, n_runs, seed, str(out), chunk_size, rank, workers, progress)
            for rank in range(workers)]
    with context.Pool(workers) as pool:
        pool.map(_worker, jobs)
    return ZooWriter(out, {**zoo_config, "n_runs": n_runs, "seed": seed}).finalize()


def build_from_config(cfg: DictConfig) -> Path:
    """Build (or resume) the zoo a ``build_zoo`` config describes.

    Under torchrun (``RANK``/``WORLD_SIZE`` set) each process builds its rank's share unless
    ``rank``/``world`` are given. A build with ``world > 1`` leaves its shards for the others:
    once every rank is done, the same command without ranks (or ``weightspace zoo merge``)
    merges them.
    """
    zoo = OmegaConf.to_container(cfg.zoo, resolve=True)
    rank, world = cfg.rank, cfg.world
    if world == 1 and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"])
    return build_zoo(zoo, cfg.n_runs, cfg.seed, cfg.out, cfg.chunk_size, rank, world,
                     cfg.progress and rank == 0, finalize=world == 1, workers=cfg.workers)
