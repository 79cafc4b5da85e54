"""Bad input is refused with an error that names the module, key or shape at fault."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightspace as ws
from tests.conftest import build
from weightspace import nets
from weightspace.errors import SpecMismatchError, UnsupportedModuleError


class WithLSTM(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.rnn = nn.LSTM(8, 8)

    def forward(self, x):
        return self.rnn(self.encoder(x))[0]


class ValueDependent(nn.Module):
    """fx cannot trace a branch on a tensor's value."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) if x.sum() > 0 else -self.fc(x)


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 4), ValueDependent())

    def forward(self, x):
        return self.body(x)


class RawMatmul(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Parameter(torch.randn(4, 3))

    def forward(self, x):
        return x @ self.proj


class Unused(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.spare = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x)


def test_unsupported_module_names_path_and_type():
    with pytest.raises(UnsupportedModuleError) as err:
        ws.to_graph(WithLSTM(), torch.zeros(2, 4))
    message = str(err.value)
    assert "'rnn'" in message and "LSTM" in message
    assert "supported:" in message and "Conv2d" in message


def test_grouped_conv_transpose_is_refused():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ConvTranspose2d(4, 2, 3, groups=2))
    with pytest.raises(UnsupportedModuleError, match=r"'1' \(ConvTranspose2d\).*groups"):
        ws.to_graph(model, torch.zeros(1, 1, 8, 8))


def test_untraceable_forward_names_the_module():
    with pytest.raises(UnsupportedModuleError, match=r"'body.1' \(ValueDependent\).*fx"):
        ws.to_graph(Outer(), torch.zeros(2, 4))


def test_unknown_operation_on_a_parameter_is_refused():
    with pytest.raises(UnsupportedModuleError, match="matmul"):
        ws.to_graph(RawMatmul(), torch.zeros(2, 4))


def test_unused_parameter_is_named():
    with pytest.raises(SpecMismatchError, match="spare.weight"):
        ws.to_graph(Unused(), torch.zeros(2, 4))


def test_an_operation_that_does_not_read_a_concatenation_refuses_it():
    class CatPlus(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 4, 3, padding=1)
            self.c = nn.Conv2d(1, 8, 3, padding=1)

        def forward(self, x):
            return torch.cat([self.a(x), self.b(x)], dim=1) + self.c(x)

    with pytest.raises(UnsupportedModuleError, match=r"concatenated along their feature axis "
                                                     r"\(torch.cat\), which this operation"):
        ws.to_graph(CatPlus(), torch.zeros(1, 1, 8, 8))


def test_no_example_inputs_for_a_cnn_asks_for_them():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten())
    with pytest.raises(ValueError, match="example_inputs"):
        ws.to_graph(model)


def test_state_dict_with_wrong_shape_names_key_and_shapes():
    model = build("mlp")
    spec = ws.GraphSpec.from_module(model)
    state = dict(model.state_dict())
    state["0.weight"] = torch.zeros(16, 4)
    with pytest.raises(SpecMismatchError, match=r"'0.weight' has shape \[16, 4\].*\[16, 5\]"):
        spec.flatten(state)
    del state["0.weight"]
    with pytest.raises(SpecMismatchError, match="missing parameter '0.weight'"):
        spec.flatten(state)


def test_vectors_of_the_wrong_size_are_refused():
    model = build("resnet_blocks")
    spec = ws.GraphSpec.from_module(model)
    vec, buf = spec.flatten(model), spec.flatten_buffers(model)
    with pytest.raises(SpecMismatchError, match=f"expects \\[{spec.num_params}\\]"):
        spec.unflatten(vec[:-1])
    with pytest.raises(SpecMismatchError, match="expects"):
        spec.graph(vec[:-1], buf)
    with pytest.raises(SpecMismatchError, match="buffers"):
        spec.graph(vec)


def test_nan_weights_are_caught_at_the_boundary():
    model = build("small_cnn")
    with torch.no_grad():
        model.features[3].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="features.3.weight"):
        ws.to_graph(model)


def test_graph_of_another_architecture_is_refused():
    graph = ws.to_graph(build("mlp"))
    with pytest.raises(SpecMismatchError, match=graph.spec_id):
        ws.from_graph(graph, like=nets.MLP(5, [16, 12], 4))


def test_edited_graph_of_the_wrong_size_is_refused():
    model = build("mlp")
    graph = ws.to_graph(model)
    graph.edge_attr = graph.edge_attr[:-1]
    with pytest.raises(SpecMismatchError, match="edge_attr"):
        ws.from_graph(graph, like=model)


def test_bad_kernel_mode_and_canvas():
    with pytest.raises(ValueError, match="kernel_edges"):
        ws.to_graph(build("mlp"), kernel_edges="pixel")
    with pytest.raises(ValueError, match="canvas"):
        ws.to_graph(build("mlp"), canvas=(0, 3))


def test_from_graph_refuses_a_network_of_other_activations_with_the_same_shapes():
    graph = ws.to_graph(nets.MLP(4, [8], 2))
    with pytest.raises(SpecMismatchError, match="activations differ"):
        ws.from_graph(graph, nets.MLP(4, [8], 2, activation="tanh"))
    with pytest.raises(TypeError, match="nn.Module"):
        ws.from_graph(graph, "MLP")
    assert isinstance(ws.from_graph(graph, nets.MLP(4, [8], 2)), nets.MLP)


def test_a_network_without_parameters_is_named():
    with pytest.raises(ValueError, match="Sequential has no parameters"):
        ws.to_graph(nn.Sequential(), torch.zeros(1, 3))
