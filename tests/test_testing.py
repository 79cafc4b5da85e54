"""weightspace.testing: its asserts pass on what holds and fail, naming it, on what does not."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import build
from tests.nn.test_gmn import batch_of
from weightspace import testing
from weightspace.graph.symmetry import SymmetryTransform


def test_round_trip_and_symmetries_hold_for_a_network_we_read():
    testing.assert_round_trip(build("small_cnn"))
    testing.assert_symmetries_preserve_function(build("mlp"), draws=3)


def test_a_lossy_round_trip_is_caught(monkeypatch):
    def lossy(graph, like):
        model = testing.from_graph.__wrapped__(graph, like)
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] += 1e-6
        return model

    lossy.__wrapped__ = testing.from_graph
    monkeypatch.setattr(testing, "from_graph", lossy)
    with pytest.raises(AssertionError, match="values differ after the round trip"):
        testing.assert_round_trip(build("mlp"))


def shuffling(spec, batch_size, generator=None, **kinds):
    """Not a symmetry: every weight moves to a random place."""
    P, Q = spec.num_params, spec.buffers.size
    index = torch.stack([torch.randperm(P, generator=generator) for _ in range(batch_size)])
    N = spec.num_nodes
    return SymmetryTransform(torch.arange(N).repeat(batch_size, 1),
                             torch.ones(batch_size, N), index, torch.ones(batch_size, P),
                             torch.arange(Q).repeat(batch_size, 1))


def test_a_transform_that_changes_the_function_is_caught(monkeypatch):
    monkeypatch.setattr(testing, "sample_symmetries", shuffling)
    with pytest.raises(AssertionError, match="symmetry 0 changed the function"):
        testing.assert_symmetries_preserve_function(build("mlp"), draws=2)


def test_invariance_and_equivariance_are_told_apart():
    spec, vecs, _ = batch_of("mlp")

    def total(v, b):
        return v.sum(1, keepdim=True)

    def first_weight(v, b):
        return v[:, :1]

    testing.assert_invariant(total, spec, vecs, sign=False, scale=False)
    with pytest.raises(AssertionError, match="not invariant"):
        testing.assert_invariant(first_weight, spec, vecs, sign=False, scale=False)
    testing.assert_equivariant(lambda v, b: 2 * v, spec, vecs)
    with pytest.raises(AssertionError, match="not equivariant"):
        testing.assert_equivariant(lambda v, b: v.flip(1), spec, vecs)


def test_integer_inputs_stay_below_the_vocabulary():
    model = build("transformer_block")
    (ids,) = testing.random_inputs(model, batch=64)
    vocab = next(m for m in model.modules() if isinstance(m, nn.Embedding)).num_embeddings
    assert ids.dtype == torch.long and 0 <= int(ids.min()) and int(ids.max()) < vocab
