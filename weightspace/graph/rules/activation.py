"""Activations: recorded on the node set they act on."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from weightspace.graph.rules.registry import (
    elementwise,
    register_function,
    register_method,
    register_module,
)
from weightspace.graph.values import Cat, Feat, LazyInput, Mixed
from weightspace.graph.vocab import Activation

_ACTIVATION_MODULES = {
    nn.ReLU: Activation.RELU, nn.SiLU: Activation.SILU,
    nn.Tanh: Activation.TANH, nn.Sigmoid: Activation.SIGMOID,
    nn.LeakyReLU: Activation.LEAKY_RELU, nn.ELU: Activation.ELU,
    nn.Softplus: Activation.SOFTPLUS, nn.Hardswish: Activation.HARDSWISH,
    nn.Hardsigmoid: Activation.HARDSIGMOID, nn.Mish: Activation.MISH,
}
_ACTIVATION_FUNCTIONS = {
    F.relu: Activation.RELU, torch.relu: Activation.RELU,
    F.silu: Activation.SILU, torch.tanh: Activation.TANH, F.tanh: Activation.TANH,
    torch.sigmoid: Activation.SIGMOID, F.sigmoid: Activation.SIGMOID,
    F.leaky_relu: Activation.LEAKY_RELU, F.elu: Activation.ELU, F.softplus: Activation.SOFTPLUS,
    torch.sin: Activation.SINE, F.relu6: Activation.RELU6, F.hardswish: Activation.HARDSWISH,
    F.hardsigmoid: Activation.HARDSIGMOID, F.mish: Activation.MISH,
}
_ACTIVATION_METHODS = {
    "relu": Activation.RELU, "tanh": Activation.TANH, "sigmoid": Activation.SIGMOID,
    "sin": Activation.SINE,
}


def _activate(r, x, act: Activation):
    if isinstance(x, LazyInput):
        return x  # preprocessing of the input, before any layer
    if not isinstance(x, (Feat, Cat, Mixed)):
        r.refuse(f"activation {act.name.lower()} applied to a non-feature value")
    return r.use(x, "activation", act)


def _gelu(approximate: str) -> Activation:
    return Activation.GELU_TANH if approximate == "tanh" else Activation.GELU


def _clip(r, low: float, high: float) -> Activation:
    """Hardtanh's clipping as an activation: ReLU6, or symmetric (odd: sign flips hold)."""
    if (low, high) == (0.0, 6.0):
        return Activation.RELU6
    if low == -high:
        return Activation.HARDTANH
    r.refuse(f"clipping to [{low:g}, {high:g}]: only [0, 6] (ReLU6) and symmetric ranges "
             f"[-a, a] are read")


@register_module(nn.GELU)
@elementwise
def _gelu_module(r, m, path, x, *a, **k):
    return _activate(r, x, _gelu(m.approximate))


@register_function(F.gelu)
@elementwise
def _gelu_function(r, x, *a, approximate: str = "none", **k):
    return _activate(r, x, _gelu(approximate))


@register_module(nn.Hardtanh, nn.ReLU6)
@elementwise
def _hardtanh_module(r, m, path, x, *a, **k):
    return _activate(r, x, _clip(r, float(m.min_val), float(m.max_val)))


@register_function(F.hardtanh)
@elementwise
def _hardtanh_function(r, x, min_val: float = -1.0, max_val: float = 1.0, *a, **k):
    return _activate(r, x, _clip(r, float(min_val), float(max_val)))


for _type, _act in _ACTIVATION_MODULES.items():
    register_module(_type)(elementwise(
        lambda r, m, path, x, *a, _act=_act, **k: _activate(r, x, _act)))
for _fn, _act in _ACTIVATION_FUNCTIONS.items():
    register_function(_fn)(elementwise(lambda r, x, *a, _act=_act, **k: _activate(r, x, _act)))
for _name, _act in _ACTIVATION_METHODS.items():
    register_method(_name)(elementwise(lambda r, x, *a, _act=_act, **k: _activate(r, x, _act)))


# ---------------------------------------------------------------------- structure
