"""What pruning needs around the pruning itself: accuracy, BatchNorm recalibration, and a small
fine-tune budget."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from weightspace.batchnorm import recalibrate_batchnorm  # noqa: F401 (re-exported)
from weightspace.data.minibatches import minibatches


def accuracy(model: nn.Module, data) -> float:
    """Top-1 accuracy on ``data``: a pair ``(x, y)`` of tensors or an iterable of batches."""
    model.eval()
    batches = [data] if isinstance(data, tuple | list) and len(data) == 2 \
        and isinstance(data[0], torch.Tensor) else data
    device = next(model.parameters()).device
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            pred = model(x.to(device)).argmax(-1)
            correct += int((pred == y.to(device)).sum())
            total += len(y)
    if total == 0:
        raise ValueError("no examples in data")
    return correct / total


def finetune_epochs(model: nn.Module, data, epochs: int = 1, lr: float = 1e-3,
                    batch_size: int = 64, seed: int = 0,
                    after_backward: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """A small fine-tune budget: ``epochs`` of Adam on ``(x, y)`` in minibatches.
    ``after_backward(model)`` runs between each backward and step (e.g. a sparsity
    regulariser that adds to the gradients)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in minibatches(tuple(data), batch_size, gen):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            if after_backward is not None:
                after_backward(model)
            opt.step()
    return model.eval()


def apply_finetune(model: nn.Module, finetune: Callable | dict, finetune_data, name: str):
    """``finetune(model)`` for a callable, or :func:`finetune_epochs` on ``finetune_data`` with a
    dict's ``epochs`` and ``lr``; ``name`` is the argument's name for errors."""
    if callable(finetune):
        return finetune(model)
    if isinstance(finetune, dict):
        if finetune_data is None:
            raise ValueError(f"{name}={{...}} trains on finetune_data=(x, y); none given")
        return finetune_epochs(model, finetune_data, **finetune)
    raise TypeError(f"{name} must be a callable or a dict (epochs, lr), got "
                    f"{type(finetune).__name__}")
