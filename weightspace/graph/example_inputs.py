"""What a network is traced with when the caller gives no inputs."""

from __future__ import annotations

import torch
from torch import nn


def as_tuple(example_inputs) -> tuple:
    """``example_inputs`` (none, a tensor, or a sequence) as a tuple."""
    if example_inputs is None:
        return ()
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def default_example_inputs(model: nn.Module) -> tuple:
    """Inputs to trace ``model`` with when the caller gives none.

    A model may say what it takes through an ``example_inputs`` attribute (a tensor, a tuple,
    or a callable returning either); otherwise a network whose first layer is a ``Linear`` or
    an ``Embedding`` gets a batch of one. Anything else must be given its inputs explicitly.
    """
    given = getattr(model, "example_inputs", None)
    if given is not None:
        return as_tuple(given() if callable(given) else given)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return (torch.zeros(1, m.in_features),)
        if isinstance(m, nn.Embedding):
            return (torch.zeros(1, 1, dtype=torch.long),)
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.MultiheadAttention)):
            break
    raise ValueError(
        f"cannot guess the input shape of {type(model).__name__}: pass example_inputs "
        f"(e.g. torch.zeros(1, 3, 32, 32)) or give the model an `example_inputs` attribute"
    )
