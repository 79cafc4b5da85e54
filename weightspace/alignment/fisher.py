"""``diagonal_fisher``: how much a network's predictions depend on each of its weights.

The diagonal of the Fisher information of the network's predictive distribution,

.. math::
    F_p = \\mathbb{E}_{x \\sim \\text{data}}\\, \\mathbb{E}_{y \\sim p_\\theta(y|x)}
          \\left[ \\left( \\partial_{\\theta_p} \\log p_\\theta(y \\mid x) \\right)^2 \\right],

with one label drawn per input from the network's own prediction (the true Fisher, not the
"empirical" one of the data's labels; Matena & Raffel, "Merging Models with Fisher-Weighted
Averaging", 2022). Outputs ``[B, C]`` with ``C > 1`` are read as class logits; any other output
as the mean of a unit-variance Gaussian. Per-example gradients come from ``torch.func`` (one
vectorised backward per batch, no per-sample Python).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from weightspace.alignment.activation_matching import input_batches
from weightspace.graph.spec import GraphSpec


def _class_logits(out: Tensor) -> bool:
    """Outputs ``[B, C]`` with ``C > 1`` are class logits; anything else a Gaussian's mean."""
    return out.dim() == 2 and out.shape[1] > 1


def diagonal_fisher(model: nn.Module, data, spec: GraphSpec | None = None,
                    batch_size: int = 64, seed: int = 0) -> Tensor:
    """``[P]``: the diagonal Fisher of ``model`` (in eval mode) on the inputs of ``data``
    (``x``, ``(x, y)`` or an iterable of batches), in ``spec``'s flat layout (built from the
    model when not given), in float64. ``seed`` draws the labels."""
    spec = spec or GraphSpec.from_module(model)
    params = {n: p.detach() for n, p in model.named_parameters()}
    buffers = dict(model.named_buffers())
    training = model.training
    model.eval()

    def log_likelihood(p, x, y):
        out = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        if _class_logits(out):
            return F.log_softmax(out, -1)[0].gather(0, y.reshape(1))[0]
        return -0.5 * ((out[0] - y) ** 2).sum()

    per_example = vmap(grad(log_likelihood), in_dims=(None, 0, 0))
    generator = torch.Generator().manual_seed(seed)
    total = {n: torch.zeros_like(p, dtype=torch.float64) for n, p in params.items()}
    count = 0
    try:
        for x in input_batches(data, batch_size):
            with torch.no_grad():
                out = model(x)
            if _class_logits(out):
                y = torch.multinomial(out.float().softmax(-1), 1, generator=generator)[:, 0]
            else:
                y = out + torch.randn(out.shape, generator=generator, dtype=out.dtype)
            for n, g in per_example(params, x, y).items():
                total[n] += g.double().square().sum(0)
            count += len(x)
    finally:
        model.train(training)
    if count == 0:
        raise ValueError("data gave no batches to estimate the Fisher on")
    return spec.params.flatten({n: t / count for n, t in total.items()}, torch.float64)
