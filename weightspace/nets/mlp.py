"""Multi-layer perceptrons, optionally with LayerNorm after each hidden layer."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU,
               "sigmoid": nn.Sigmoid, "leaky_relu": nn.LeakyReLU}


class MLP(nn.Sequential):
    """``in -> hidden[0] -> ... -> out`` with an activation (and LayerNorm) between layers.

    Args:
        in_features: input width.
        hidden: the hidden widths.
        out_features: output width.
        activation: ``"relu"``, ``"tanh"``, ``"gelu"``, ... (the names in ``ACTIVATIONS``).
        layer_norm: a LayerNorm before each activation.
        dropout: dropout after each activation.
    """

    def __init__(self, in_features: int, hidden: list[int], out_features: int,
                 activation: str = "relu", layer_norm: bool = False, dropout: float = 0.0):
        layers, width = [], in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(ACTIVATIONS[activation]())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        super().__init__(*layers)
        self.in_features = in_features

    def example_inputs(self):
        return (torch.zeros(2, self.in_features),)
