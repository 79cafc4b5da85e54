"""Optimizers by name (``trainer.optimizer``): ``adamw`` (the default), ``adam``, ``sgd``."""

from __future__ import annotations

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
