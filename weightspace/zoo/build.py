"""Build a zoo from a recipe: resumable, crash-safe, in chunks of vectorised runs.

Runs ``0 .. n_runs - 1`` are sampled from ``seed`` (the same runs in every process), grouped by
the recipe's key and trained ``chunk_size`` at a time, each chunk's random draws seeded from the
build seed and its first run; each trained chunk is stored as one shard, and chunks whose runs
are all stored already are skipped. So a build killed and resumed any number of times writes
the same weights and metrics, row by row, as one that ran through (for the same ``seed``,
``chunk_size`` and ``world``). One process writes a zoo (or one rank's share of it) at a
time: a second is refused (:mod:`weightspace.zoo.lock`). With ``world > 1`` each
rank builds the runs ``run_id % world == rank`` into a zoo of its own (merge them with
``weightspace zoo merge``). ``workers=N`` runs N such ranks as local processes writing shards
of one zoo, which the parent merges when all are done.

:func:`build_from_config` is what ``scripts/build_zoo.py`` and ``weightspace zoo build`` run on
the ``build_zoo`` config.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from weightspace.configs.checks import check_config
from weightspace.zoo.lock import build_lock
from weightspace.zoo.recipe import recipe_for
from weightspace.zoo.writer import ZooWriter

LOG_EVERY = 30.0  # seconds between progress lines when the bar is off (progress=false)


def build_zoo(zoo_config: dict, n_runs: int, seed: int, out: str | Path, chunk_size: int = 32,
              rank: int = 0, world: int = 1, progress: bool = True, finalize: bool = True,
              workers: int = 1) -> Path:
    if n_runs < 1 or chunk_size < 1 or workers < 1:
        raise ValueError(f"n_runs, chunk_size and workers must be positive, got {n_runs}, "
                         f"{chunk_size}, {workers}")
    if workers > 1:
        return _build_in_workers(zoo_config, n_runs, seed, out, chunk_size, workers, progress)
    with build_lock(out, rank, world):
        recipe = recipe_for(zoo_config)
        writer = ZooWriter(out, {**zoo_config, "n_runs": n_runs, "seed": seed})
        if world == 1:  # the only writer (the lock says so): temporaries are leftovers
            writer.remove_temporaries()
        done = writer.stored_runs()
        chunks = [c for c in plan_chunks(recipe, n_runs, seed, rank, world, chunk_size)
                  if any(r.run_id not in done for r in c)]
        _train_chunks(recipe, chunks, done, seed, writer, progress)
        if finalize:
            writer.finalize()
    return Path(out)


def plan_chunks(recipe, n_runs: int, seed: int, rank: int, world: int, chunk_size: int
                ) -> list[list]:
    """The rank's runs in groups of at most ``chunk_size`` trained together: a function of
    the arguments alone (never of what is already stored), so that a resumed build trains
    every run in the same company, with the same random draws, as an uninterrupted one."""
    groups = defaultdict(list)
    for i in range(rank, n_runs, world):
        run = recipe.run(i, seed)
        groups[recipe.group_key(run)].append(run)
    return [g[i : i + chunk_size] for g in groups.values() for i in range(0, len(g), chunk_size)]


def chunk_seed(seed: int, chunk: list) -> int:
    """The seed of the random draws a chunk's training makes through torch's global generator
    (dropout masks under ``vmap(randomness="different")``): the build seed and the chunk's
    first run."""
    return int(np.random.SeedSequence([seed, chunk[0].run_id, len(chunk)]).generate_state(1)[0])


def _train_chunks(recipe, chunks, done: set[int], seed: int, writer: ZooWriter, progress: bool):
    total = sum(r.run_id not in done for c in chunks for r in c)
    bar = tqdm(total=total, unit="run", disable=not progress, desc=recipe.name,
               dynamic_ncols=True)
    start = last_line = time.perf_counter()
    stored = finished = 0
    for chunk in chunks:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(chunk_seed(seed, chunk))
            trained = recipe.train(chunk)
        for models in trained:  # runs stored before an interruption are not stored twice
            models = models.without_runs(done)
            if len(models.params):
                writer.write(models.spec, models.params, models.meta, models.buffers)
                stored += len(models.params)
        new = sum(r.run_id not in done for r in chunk)
        finished += new
        bar.update(new)
        rate = stored / (time.perf_counter() - start)
        bar.set_postfix(models_per_s=f"{rate:.1f}")
        if not progress and (time.perf_counter() - last_line > LOG_EVERY or finished == total):
            last_line = time.perf_counter()  # a line now and then, for logs and batch jobs
            print(f"{recipe.name}: {finished}/{total} runs trained ({rate:.1f} models/s)",
                  flush=True)
    bar.close()


def _worker(args):
    zoo_config, n_runs, seed, out, chunk_size, rank, workers, progress = args
    # tqdm's default lock is a multiprocessing one, which a spawned worker's exit leaves to the
    # resource tracker ("leaked semaphore" warnings); one bar per process needs a thread lock
    tqdm.set_lock(threading.RLock())
    torch.set_num_threads(max(1, torch.get_num_threads() // workers))
    build_zoo(zoo_config, n_runs, seed, out, chunk_size, rank=rank, world=workers,
              progress=progress and rank == 0, finalize=False)


def _build_in_workers(zoo_config, n_runs, seed, out, chunk_size, workers, progress) -> Path:
    """``workers`` local processes, each the rank of its share of the runs, one zoo."""
    context = mp.get_context("spawn")  # fresh interpreters: no forked torch or h5py state
    jobs = [(zoo_config, n_runs, seed, str(out), chunk_size, rank, workers, progress)
            for rank in range(workers)]
    with build_lock(out):
        writer = ZooWriter(out, {**zoo_config, "n_runs": n_runs, "seed": seed})
        writer.remove_temporaries()
        with context.Pool(workers) as pool:
            pool.map(_worker, jobs)
        return writer.finalize()


def build_from_config(cfg: DictConfig) -> Path:
    """Build (or resume) the zoo a ``build_zoo`` config describes.

    Under torchrun (``RANK``/``WORLD_SIZE`` set) each process builds its rank's share unless
    ``rank``/``world`` are given. A build with ``world > 1`` leaves its shards for the others:
    once every rank is done, the same command without ranks (or ``weightspace zoo merge``)
    merges them.
    """
    check_config(cfg)
    zoo = OmegaConf.to_container(cfg.zoo, resolve=True)
    rank, world = cfg.rank, cfg.world
    if world == 1 and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"])
    return build_zoo(zoo, cfg.n_runs, cfg.seed, cfg.out, cfg.chunk_size, rank, world,
                     cfg.progress and rank == 0, finalize=world == 1, workers=cfg.workers)
