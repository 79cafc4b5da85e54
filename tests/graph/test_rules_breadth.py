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


class SqueezeExcite(nn.Module):
    """torchvision's SqueezeExcitation pattern: x * sigmoid(fc2(relu(fc1(pool(x)))))."""

    def __init__(self, channels: int, squeeze: int, gate=nn.Sigmoid):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.act, self.gate = nn.ReLU(), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class MobileBlock(nn.Module):
    """Conv, Hardswish, squeeze-and-excitation with a Hardsigmoid gate, conv, pool, head."""

    def __init__(self):
        super().__init__()
        self.conv1, self.act = nn.Conv2d(3, 8, 3, padding=1), nn.Hardswish()
        self.se = SqueezeExcite(8, 4, nn.Hardsigmoid)
        self.conv2 = nn.Conv2d(8, 6, 3, padding=1)
        self.head = nn.Linear(6, 5)

    def forward(self, x):
        x = self.conv2(self.se(self.act(self.conv1(x))))
        return self.head(x.mean((2, 3)))


def test_squeeze_and_excitation_gates_tie_their_channels():
    from weightspace.graph.vocab import NodeType

    model = MobileBlock()
    inputs = torch.zeros(2, 3, 8, 8)
    assert_round_trip(model, inputs)
    assert_symmetries_preserve_function(model, inputs)
    spec = ws.GraphSpec.from_module(model, inputs)
    gate = next(i for i, s in enumerate(spec.blueprint.sets) if s.node_type == NodeType.GATE)
    group = next(g for g in spec.permutation_groups if gate in g.sets)
    names = {spec.blueprint.sets[s].name for s in group.sets}
    assert {"conv1", "se.fc2"} <= names  # the gated channels and the gate's move together
    assert not group.fixed and group.size == 8
    torch.manual_seed(1)
    other = MobileBlock()
    for method in ("weights", "activations"):  # both check that the function is kept
        ws.align(model, other, method=method, data=torch.rand(16, 3, 8, 8), example_inputs=inputs)
    with pytest.raises(UnsupportedModuleError, match="with itself"):
        ws.GraphSpec.from_module(Square(), torch.zeros(2, 5))


class Square(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        h = self.fc(x)
        return h * h
