"""The Hydra configs, and composing one with command-line overrides.

The YAML files live in this package, so they ship inside the wheel and a regular install finds
them from any directory; the repository's top-level ``configs`` links here (for ``scripts/``
and for reading). ``train.yaml`` (metanetwork and hypernetwork training) and ``build_zoo.yaml``
(zoo builds) with their groups. The command line, the demo and the scripts compose from here.
"""

from __future__ import annotations

from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from omegaconf import DictConfig

CONFIG_DIR = Path(__file__).resolve().parent


def compose(name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """Config ``name`` (``"train"`` or ``"build_zoo"``) with ``overrides``, e.g.
    ``["model=gmn", "trainer.epochs=3"]``; an unknown key is an error naming it."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(name, overrides=list(overrides))
