"""Activations of mobile networks and subclasses of supported modules are read exactly, with
their symmetries; what stays unsupported is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import weightspace as ws
from weightspace.errors import UnsupportedModuleError
from weightspace.graph.vocab import Activation
from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function


class Functional(nn.Module):
    """A dense block whose activation is a function call."""

    def __init__(self, act):
        super().__init__()
        self.a, self.b, self.act = nn.Linear(5, 8), nn.Linear(8, 3), act

    def forward(self, x):
        return self.b(self.act(self.a(x)))


MODULES = {
    Activation.RELU6: nn.ReLU6(), Activation.HARDTANH: nn.Hardtanh(-2.0, 2.0),
    Activation.HARDSWISH: nn.Hardswish(), Activation.HARDSIGMOID: nn.Hardsigmoid(),
    Activation.MISH: nn.Mish(), Activation.GELU_TANH: nn.GELU(approximate="tanh"),
    Activation.GELU: nn.GELU(),
}
FUNCTIONS = {
    Activation.RELU6: F.relu6, Activation.HARDSWISH: F.hardswish, Activation.MISH: F.mish,
    Activation.HARDTANH: lambda x: F.hardtanh(x, -0.5, 0.5),
    Activation.GELU_TANH: lambda x: F.gelu(x, approximate="tanh"),
}


def hidden_activation(model) -> int:
    spec = ws.GraphSpec.from_module(model, torch.zeros(2, 5))
    return next(s.activation for s in spec.blueprint.sets if s.role == "hidden")


@pytest.mark.parametrize("code", list(MODULES), ids=lambda c: c.name)
def test_activation_modules_are_read_with_their_symmetries(code):
    model = nn.Sequential(nn.Linear(5, 8), MODULES[code], nn.Linear(8, 3))
    assert hidden_activation(model) == code
    assert_round_trip(model, torch.zeros(2, 5))
    assert_symmetries_preserve_function(model, torch.zeros(2, 5))
    spec = ws.GraphSpec.from_module(model, torch.zeros(2, 5))
    hidden = next(s for s in spec.blueprint.sets if s.role == "hidden")
    assert hidden.sign_ok == (code == Activation.HARDTANH)  # symmetric clipping is odd
    assert not hidden.scale_ok  # none of these is positively homogeneous


@pytest.mark.parametrize("code", list(FUNCTIONS), ids=lambda c: c.name)
def test_activation_functions_are_read(code):
    model = Functional(FUNCTIONS[code])  # one class: the function held decides the spec
    assert hidden_activation(model) == code
    assert_round_trip(model, torch.zeros(2, 5))


def test_asymmetric_clipping_is_refused_by_name():
    model = nn.Sequential(nn.Linear(5, 8), nn.Hardtanh(-1.0, 3.0), nn.Linear(8, 3))
    with pytest.raises(UnsupportedModuleError, match=r"clipping to \[-1, 3\]"):
        ws.GraphSpec.from_module(model, torch.zeros(2, 5))


class PlainSubclass(nn.LayerNorm):
    """A subclass that keeps LayerNorm's forward (as timm's LayerNorm variants often do)."""


class OwnForward(nn.Linear):
    """A subclass with a forward of its own that calls an unsupported operation."""

    def forward(self, x):
        return torch.cumsum(super().forward(x), dim=-1)


def test_subclasses_that_keep_the_forward_are_read():
    model = nn.Sequential(nn.Linear(5, 8), PlainSubclass(8), nn.ReLU(), nn.Linear(8, 3))
    assert_round_trip(model, torch.zeros(2, 5))
    assert_symmetries_preserve_function(model, torch.zeros(2, 5))


def test_a_subclass_with_its_own_forward_is_named_in_the_refusal():
    model = nn.Sequential(OwnForward(5, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(UnsupportedModuleError, match="OwnForward subclasses Linear"):
        ws.GraphSpec.from_module(model, torch.zeros(2, 5))
