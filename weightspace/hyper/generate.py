"""``weightspace.generate``: networks (or their weights) from a hypernetwork and conditions."""

from __future__ import annotations

import os

import torch
from torch import Tensor, nn

from weightspace.hyper.hypernetize import HyperModule
from weightspace.hyper.hypernetwork import HyperNetwork


def generate(hypernet, conditions, *, as_params: bool = False,
             device: str | torch.device | None = None) -> list[nn.Module] | Tensor:
    """The target network generated for each condition.

    ``hypernet`` is a :class:`~weightspace.hyper.HyperNetwork`, a
    :class:`~weightspace.hyper.HyperModule` (from ``hypernetize``), or the run directory /
    ``best.pt`` of a hypernetwork trained with the Hydra app. ``conditions`` is ``[B, cond_dim]``
    in ``[0, 1]`` (a float for one scalar condition). Returns ``B`` ordinary modules of the
    target's class, or with ``as_params=True`` the ``[B, P]`` weights in its flat layout
    (:class:`~weightspace.graph.GraphSpec` order) for
    :func:`~weightspace.functional.batched_forward`.
    """
    if isinstance(hypernet, str | os.PathLike):
        from weightspace.hyper.train import load_hypernetwork

        hypernet, _ = load_hypernetwork(hypernet, device or "cpu")
    elif not isinstance(hypernet, HyperNetwork | HyperModule):
        raise TypeError(f"generate() takes a HyperNetwork, a HyperModule or a checkpoint path, "
                        f"got {type(hypernet).__name__}")
    elif device is not None:
        hypernet = hypernet.to(device)
    if as_params:
        with torch.no_grad():
            return hypernet.params(conditions) if isinstance(hypernet, HyperModule) \
                else hypernet(conditions)
    return hypernet.modules_for(conditions)
