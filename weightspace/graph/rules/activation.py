"""Activations: recorded on the node set they act on."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weightspace.graph.rules.registry import register_function, register_method, register_module
from weightspace.graph.values import Feat, LazyInput
from weightspace.graph.vocab import Activation

_ACTIVATION_MODULES = {
    nn.ReLU: Activation.RELU, nn.GELU: Activation.GELU, nn.SiLU: Activation.SILU,
    nn.Tanh: Activation.TANH, nn.Sigmoid: Activation.SIGMOID,
    nn.LeakyReLU: Activation.LEAKY_RELU, nn.ELU: Activation.ELU,
    nn.Softplus: Activation.SOFTPLUS,
}
_ACTIVATION_FUNCTIONS = {
    F.relu: Activation.RELU, torch.relu: Activation.RELU, F.gelu: Activation.GELU,
    F.silu: Activation.SILU, torch.tanh: Activation.TANH, F.tanh: Activation.TANH,
    torch.sigmoid: Activation.SIGMOID, F.sigmoid: Activation.SIGMOID,
    F.leaky_relu: Activation.LEAKY_RELU, F.elu: Activation.ELU, F.softplus: Activation.SOFTPLUS,
    torch.sin: Activation.SINE,
}
_ACTIVATION_METHODS = {
    "relu": Activation.RELU, "tanh": Activation.TANH, "sigmoid": Activation.SIGMOID,
    "sin": Activation.SINE,
}


def _activate(r, x, act: Activation):
    if isinstance(x, LazyInput):
        return x  # preprocessing of the input, before any layer
    if not isinstance(x, Feat):
        r.refuse(f"activation {act.name.lower()} applied to a non-feature value")
    return r.use(x, "activation", act)


for _type, _act in _ACTIVATION_MODULES.items():
    register_module(_type)(lambda r, m, path, x, *a, _act=_act, **k: _activate(r, x, _act))
for _fn, _act in _ACTIVATION_FUNCTIONS.items():
    register_function(_fn)(lambda r, x, *a, _act=_act, **k: _activate(r, x, _act))
for _name, _act in _ACTIVATION_METHODS.items():
    register_method(_name)(lambda r, x, *a, _act=_act, **k: _activate(r, x, _act))


# ---------------------------------------------------------------------- structure
