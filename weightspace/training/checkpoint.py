"""Trained models on disk: what a run directory's ``best.pt`` holds, and loading it back.

A checkpoint is a plain dict of tensors and JSON-like values (read with
``torch.load(..., weights_only=True)``, never unpickled): the model's ``state_dict``
(``model``), its ``kind`` (``"metanetwork"``, ``"hypernetwork"`` or ``"generator"``), the
resolved training
``config``, the ``epoch``, and what the task stores (:meth:`~weightspace.tasks.Task.state`: for
a zoo task the ``specs`` as JSON text, the zoo's ``recipe`` and the target statistics). The
task and the model are rebuilt by name from the config; nothing in the file is instantiated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from weightspace.safe_load import load_tensors
from weightspace.tasks import TASKS, Task


@dataclass
class Trained:
    """A trained model with its task and config, as :func:`load_trained` returns it.

    Args:
        model: the model, in eval mode.
        task: its task, restored without the training data.
        config: the run's resolved config.
        epoch: the epoch the checkpoint was written after.
    """

    model: nn.Module
    task: Task
    config: DictConfig
    epoch: int

    @property
    def specs(self):
        """The architectures a metanetwork was trained on (its task's specs)."""
        return self.task.specs

    @property
    def recipe(self) -> dict:
        """The recipe config of the zoo a metanetwork was trained on."""
        return self.task.recipe

    def trained_on(self) -> str:
        """The networks a metanetwork was trained on, in words."""
        return self.task.trained_on()


def checkpoint_payload(model: nn.Module, task: Task, cfg: DictConfig, epoch: int) -> dict:
    """What ``best.pt`` holds (``checkpoint.pt`` adds the optimizer and the history)."""
    return {"model": model.state_dict(), "kind": task.kind, "epoch": epoch,
            "config": OmegaConf.to_container(cfg, resolve=True), **task.state()}


def load_trained(path: str | os.PathLike | Trained, device: str | torch.device = "cpu",
                 kind: str | tuple[str, ...] | None = None) -> Trained:
    """A trained model from a checkpoint file or a run directory (its ``best.pt``).

    ``kind`` (``"metanetwork"``, ``"hypernetwork"``, ``"generator"``, or a tuple of them)
    refuses a checkpoint of another kind with an error naming the file.
    """
    if isinstance(path, Trained):
        return path
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    state = load_tensors(path, map_location=device)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a weightspace checkpoint (it holds a "
                         f"{type(state).__name__})")
    found = state.get("kind", "metanetwork" if "specs" in state else None)
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds is not None and found not in kinds:
        raise ValueError(f"{path} is not a weightspace {' or '.join(kinds)} checkpoint (it "
                         f"holds {found or 'something else'})")
    missing = {"model", "config"} - set(state)
    if missing:
        raise ValueError(f"{path} is not a weightspace checkpoint (missing {sorted(missing)})")
    cfg = OmegaConf.create(state["config"])
    task = TASKS[cfg.task.name].from_checkpoint(cfg, state)
    with torch.random.fork_rng(devices=[]):  # built as in training; the caller's RNG untouched
        torch.manual_seed(int(cfg.trainer.seed))
        model = task.build_model(cfg.model)
    model.load_state_dict(state["model"])
    return Trained(model.to(device).eval(), task, cfg, int(state["epoch"]))
