"""Trained metanetworks on disk: what a run directory's ``best.pt`` holds, and loading it back.

A checkpoint is a plain dict of tensors and JSON-like values (read with
``torch.load(..., weights_only=True)``, never unpickled): the model's ``state_dict``, the
resolved training ``config``, the ``specs`` (``GraphSpec.to_dict`` of each, as JSON text) of
the architectures it was trained on, the zoo's ``recipe`` and the ``task`` statistics (e.g. target
mean and std).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from weightspace.graph.spec import GraphSpec
from weightspace.nn.weight_model import WeightSpaceModel
from weightspace.tasks import Task, make_task


@dataclass
class TrainedMetanetwork:
    model: WeightSpaceModel
    task: Task
    config: DictConfig
    epoch: int
    recipe: dict = field(default_factory=dict)  # of the zoo it was trained on

    @property
    def specs(self) -> list[GraphSpec]:
        return self.model.specs

    def trained_on(self) -> str:
        """The networks it was trained on, in words: recipe and architecture ids."""
        ids = ", ".join(s.id for s in self.specs)
        name = self.recipe.get("recipe")
        return f"{name} networks (architecture {ids})" if name else f"architecture {ids}"


def checkpoint_payload(model: WeightSpaceModel, task: Task, cfg: DictConfig, recipe: dict,
                       epoch: int) -> dict:
    return {"model": model.state_dict(), "config": OmegaConf.to_container(cfg, resolve=True),
            "specs": json.dumps([s.to_dict() for s in model.specs]), "recipe": recipe,
            "task": task.state(), "epoch": epoch}


def load_trained(path: str | os.PathLike | TrainedMetanetwork,
                 device: str | torch.device = "cpu") -> TrainedMetanetwork:
    """A trained metanetwork from a checkpoint file or a run directory (its ``best.pt``)."""
    if isinstance(path, TrainedMetanetwork):
        return path
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = torch.load(path, map_location=device, weights_only=True)
    missing = {"model", "config", "specs", "task"} - set(state)
    if missing:
        raise ValueError(f"{path} is not a weightspace metanetwork checkpoint (missing "
                         f"{sorted(missing)})")
    cfg = OmegaConf.create(state["config"])
    specs = [GraphSpec.from_dict(d) for d in json.loads(state["specs"])]
    task = make_task(cfg.task, state.get("recipe", {}), [s.id for s in specs])
    task.load_state(state["task"])
    model = WeightSpaceModel.from_config(cfg.model, specs, task.out_dim(), task.equivariant,
                                         state.get("recipe", {}))
    model.load_state_dict(state["model"])
    return TrainedMetanetwork(model.to(device).eval(), task, cfg, int(state["epoch"]),
                              dict(state.get("recipe", {})))
