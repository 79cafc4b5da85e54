"""Activation matching lines up neurons that fire alike, keeps every network's function, and
its inputs are named when they are missing."""

from __future__ import annotations

import copy

import pytest
import torch

import weightspace as ws
from tests.alignment.test_weight_matching import relabelled
from tests.conftest import FAST, build, sample_inputs
from weightspace.graph.node_values import NodeValues


def _data(model):
    inputs = sample_inputs(model, batch=48, seed=1)
    return inputs[0]


@pytest.mark.parametrize("name", FAST)
def test_a_relabelled_copy_fires_like_the_original_after_matching(name):
    model = build(name)
    other = relabelled(model, seed=3)
    back = ws.align(model, other, method="activations", data=_data(model))
    x = _data(model)
    before, after = NodeValues(model)(x), NodeValues(back)(x)
    assert before.keys() == after.keys() and before
    for s in before:
        # neurons that never fire (dead ReLUs) may trade places: their values agree anyway
        torch.testing.assert_close(after[s], before[s], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["mlp_tanh", "resnet_blocks", "tiny_vit", "groupnorm_cnn"])
def test_activation_matching_keeps_the_function_of_an_independent_network(name):
    reference, other = build(name, seed=0), build(name, seed=1)
    aligned = ws.align(reference, other, method="activations", data=_data(reference))
    inputs = tuple(x.double() if x.is_floating_point() else x for x in sample_inputs(other))
    with torch.no_grad():
        y0 = copy.deepcopy(other).double().eval()(*inputs)
        y1 = copy.deepcopy(aligned).double().eval()(*inputs)
    assert float((y1 - y0).abs().max() / y0.abs().max()) <= 1e-10


def test_node_values_are_the_tensors_of_the_spec_sets():
    model = build("mlp")  # Linear(5, 16), ReLU, Linear(16, 12), ReLU, Linear(12, 3)
    spec = ws.GraphSpec.from_module(model)
    x = torch.randn(7, 5)
    values = NodeValues(model)(x)
    hidden = [i for i, s in enumerate(spec.blueprint.sets) if s.role == "hidden"]
    with torch.no_grad():  # a set's values are what the next layer reads: after the ReLU
        torch.testing.assert_close(values[hidden[0]], torch.relu(model[0](x)))
        torch.testing.assert_close(values[hidden[1]], model[3](model[2](model[1](model[0](x)))))
    cnn = build("small_cnn_1d")
    (signals,) = sample_inputs(cnn, batch=2)
    rows = NodeValues(cnn)(signals)
    cnn_sets = ws.GraphSpec.from_module(cnn).blueprint.sets
    first = next(i for i, s in enumerate(cnn_sets) if s.role == "hidden")
    with torch.no_grad():  # rows: samples x positions; columns: the set's channels
        conv = next(m for m in cnn.modules() if isinstance(m, torch.nn.Conv1d))
        out = torch.tanh(conv(signals))
    torch.testing.assert_close(rows[first], out.transpose(1, 2).reshape(-1, out.shape[1]))


def test_missing_data_is_named():
    a, b = build("mlp"), build("mlp", 1)
    with pytest.raises(ValueError, match="needs data"):
        ws.align(a, b, method="activations")
    with pytest.raises(ValueError, match="needs data"):
        ws.merge([a, b], method="fisher")
    with pytest.raises(ValueError, match="align must be"):
        ws.merge([a, b], align="magic")


def test_data_may_be_inputs_a_pair_or_batches():
    from weightspace.alignment.activation_matching import input_batches

    x, y = torch.randn(10, 5), torch.arange(10)
    assert [len(b) for b in input_batches(x, 4)] == [4, 4, 2]
    assert [len(b) for b in input_batches((x, y), 4)] == [4, 4, 2]
    assert [len(b) for b in input_batches([x[:3], x[3:]], 4)] == [3, 7]  # a list of batches
    assert [len(b) for b in input_batches([(x[:3], y[:3])], 4)] == [3]
    a, b = build("mlp"), build("mlp", 1)
    one = ws.align(a, b, method="activations", data=(x, y))
    two = ws.align(a, b, method="activations", data=[x[:5], x[5:]])
    for p, q in zip(one.parameters(), two.parameters(), strict=True):
        assert torch.equal(p, q)


def test_correlations_are_checked_against_the_spec():
    from weightspace.alignment.activation_matching import set_correlations
    from weightspace.errors import SpecMismatchError

    a, b = build("mlp"), build("mlp", 1)
    x = torch.randn(10, 5)
    corr = set_correlations(a, b, x, spec=ws.GraphSpec.from_module(a))
    assert corr and all(c.shape[0] == c.shape[1] for c in corr.values())
    with pytest.raises(SpecMismatchError, match="node sets"):
        set_correlations(a, b, x, spec=ws.GraphSpec.from_module(build("small_cnn")))
