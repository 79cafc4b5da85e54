"""The zoo-building app shared by ``scripts/build_zoo.py`` and ``weightspace zoo build``."""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def build_from_config(cfg: DictConfig) -> Path:
    """Build (or resume) the zoo ``cfg`` describes.

    Under torchrun (``RANK``/``WORLD_SIZE`` set) each process builds its rank's share unless
    ``rank``/``world`` are given. A build with ``world > 1`` leaves its shards for the others:
    once every rank is done, the same command without ranks (or ``weightspace zoo merge``)
    merges them.
    """
    from model_zoo.build import build_zoo

    zoo = OmegaConf.to_container(cfg.zoo, resolve=True)
    rank, world = cfg.rank, cfg.world
    if world == 1 and "WORLD_SIZE" in os.environ:
        rank, world = int(os.environ.get("RANK", 0)), int(os.environ["WORLD_SIZE"])
    return build_zoo(zoo, cfg.n_runs, cfg.seed, cfg.out, cfg.chunk_size, rank, world,
                     cfg.progress and rank == 0, finalize=world == 1, workers=cfg.workers)


def compose(overrides: list[str]) -> DictConfig:
    """The build config with command-line overrides (an unknown key is an error naming it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("build_zoo", overrides=overrides)
