"""Optimizers by name (``trainer.optimizer``): ``adamw`` (the default), ``adam``, ``sgd``; and
the learning-rate schedule (``trainer.schedule``): ``constant`` (the default) or ``cosine``."""

from __future__ import annotations

import math

import torch

from weightspace.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer", "trainer.optimizer")
OPTIMIZERS.register("adamw", lambda params, lr, decay, trainer: torch.optim.AdamW(
    params, lr=lr, weight_decay=decay))
OPTIMIZERS.register("adam", lambda params, lr, decay, trainer: torch.optim.Adam(
    params, lr=lr, weight_decay=decay))
OPTIMIZERS.register("sgd", lambda params, lr, decay, trainer: torch.optim.SGD(
    params, lr=lr, momentum=float(trainer.get("momentum", 0.9)), weight_decay=decay))


def make_optimizer(params, trainer) -> torch.optim.Optimizer:
    """``trainer.optimizer`` at ``trainer.lr`` with ``trainer.weight_decay`` (and
    ``trainer.momentum`` for sgd)."""
    make = OPTIMIZERS[trainer.get("optimizer", "adamw")]
    return make(params, float(trainer.lr), float(trainer.get("weight_decay", 0.0)), trainer)


SCHEDULES = ("constant", "cosine")


def make_scheduler(optimizer: torch.optim.Optimizer,
                   trainer) -> torch.optim.lr_scheduler.LRScheduler | None:
    """``trainer.schedule``, stepped once per epoch: ``constant`` (None) or ``cosine``, the
    rate of epoch ``t`` of ``T`` being ``lr (1 + cos(pi (t - 1) / T)) / 2`` (the full rate
    in the first epoch, falling towards 0 in the last)."""
    schedule = trainer.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise ValueError(f"trainer.schedule={schedule}: use one of {', '.join(SCHEDULES)}")
    if schedule == "constant":
        return None
    epochs = int(trainer.epochs)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: (1 + math.cos(math.pi * done / epochs)) / 2)
