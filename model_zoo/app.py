"""The zoo-building app shared by ``scripts/build_zoo.py`` and ``weightspace zoo build``."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def build_from_config(cfg: DictConfig) -> Path:
    from model_zoo.build import build_zoo

    zoo = OmegaConf.to_container(cfg.zoo, resolve=True)
    return build_zoo(zoo, cfg.n_runs, cfg.seed, cfg.out, cfg.chunk_size, cfg.rank, cfg.world,
                     cfg.progress, workers=cfg.workers)


def compose(overrides: list[str]) -> DictConfig:
    """The build config with command-line overrides (an unknown key is an error naming it)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("build_zoo", overrides=overrides)
