"""SIREN (Sitzmann et al. 2020): an MLP with sine activations, an implicit neural representation.

``f(p) = W_L phi_{L-1}(... phi_1(p))`` with ``phi_i(h) = sin(w0 (W_i h + b_i))``; the first
layer's weights are drawn from ``U(-1/n, 1/n)`` and later ones from
``U(-sqrt(6/n)/w0, sqrt(6/n)/w0)`` (``n`` the fan-in), which keeps activations well spread.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Sine(nn.Module):
    """``sin(w0 * x)``.

    Args:
        w0: the frequency factor.
    """

    def __init__(self, w0: float = 30.0):
        super().__init__()
        self.w0 = w0

    def forward(self, x):
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


class SIREN(nn.Module):
    """Coordinates (2-D by default) -> values; 2 -> 32 -> 32 -> 1 with w0 = 30 by default.

    Args:
        in_features: coordinate dimensions.
        hidden: the hidden widths.
        out_features: output values per coordinate.
        w0: the frequency factor of the sine layers.
    """

    def __init__(self, in_features: int = 2, hidden: tuple[int, ...] = (32, 32),
                 out_features: int = 1, w0: float = 30.0):
        super().__init__()
        widths = [in_features, *hidden]
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.sine = Sine(w0)
        self.out = nn.Linear(widths[-1], out_features)
        self.in_features, self.w0 = in_features, w0
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            for i, layer in enumerate([*self.hidden, self.out]):
                n = layer.in_features
                bound = 1 / n if i == 0 else math.sqrt(6 / n) / self.w0
                layer.weight.uniform_(-bound, bound)
                layer.bias.uniform_(-bound, bound)

    def forward(self, coords):
        h = coords
        for layer in self.hidden:
            h = self.sine(layer(h))
        return self.out(h)

    def example_inputs(self):
        return (torch.zeros(4, self.in_features),)
