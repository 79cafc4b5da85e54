"""Shared weights: tied parameters and a module called twice are read in every place they
act, round trip exactly and keep the function under their (tied) symmetries."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightspace as ws
from weightspace.errors import UnsupportedModuleError
from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function


class TiedLM(nn.Module):
    """An embedding whose matrix is also the output head (tied weights)."""

    def __init__(self):
        super().__init__()
        self.embed, self.body = nn.Embedding(20, 16), nn.Linear(16, 16)
        self.head = nn.Linear(16, 20, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens):
        return self.head(torch.relu(self.body(self.embed(tokens))))


class Untied(TiedLM):
    def __init__(self):
        super().__init__()
        self.head.weight = nn.Parameter(self.embed.weight.detach().clone())


class CalledTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.fc, self.out = nn.Linear(5, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.fc(torch.relu(self.fc(torch.relu(self.inp(x))))))


class WeightAsBias(nn.Module):
    """A norm's scale also added as a bias: one tensor read in two different ways."""

    def __init__(self):
        super().__init__()
        self.fc, self.norm, self.out = nn.Linear(5, 8), nn.LayerNorm(8), nn.Linear(8, 2)

    def forward(self, x):
        return self.out(self.norm(self.fc(x)) + self.norm.weight)


TOKENS = torch.zeros(2, 5, dtype=torch.long)


def test_tied_head_is_read_once_per_use_and_round_trips():
    model = TiedLM()
    spec = ws.GraphSpec.from_module(model, TOKENS)
    assert spec.params.names() == ["embed.weight", "body.weight", "body.bias"]
    assert spec.params.aliases == {"head.weight": "embed.weight"}
    untied = ws.GraphSpec.from_module(Untied(), TOKENS)
    # the same edges (embedding and head), the matrix held once instead of twice
    assert spec.num_edges == untied.num_edges and spec.num_params == untied.num_params - 320
    graph = ws.to_graph(model, TOKENS)
    emb = graph.edge_attr[graph.edge_type == int(ws.graph.vocab.EdgeType.EMBEDDING)]
    assert torch.equal(emb.sort(0).values,
                       graph.edge_attr[-320:].sort(0).values)  # the head's edges, same values
    back = ws.from_graph(graph, TiedLM())
    assert back.head.weight is back.embed.weight  # still tied after loading
    assert_round_trip(model, TOKENS)
    assert_symmetries_preserve_function(model, TOKENS)
    # the spec survives serialisation with its aliases, and tied and untied specs differ
    assert ws.GraphSpec.from_dict(spec.to_dict()).id == spec.id != untied.id


def test_tied_sets_share_one_permutation_and_lose_scales():
    model = TiedLM()
    spec = ws.GraphSpec.from_module(model, TOKENS)
    names = {s.name: i for i, s in enumerate(spec.blueprint.sets)}
    group = next(g for g in spec.permutation_groups if names["embed"] in g.sets)
    assert names["body"] in group.sets and not group.fixed
    assert not spec.blueprint.sets[names["embed"]].scale_ok
    assert not spec.blueprint.sets[names["body"]].scale_ok


def test_module_called_twice_reads_each_call():
    model = CalledTwice()
    x = torch.zeros(2, 5)
    spec = ws.GraphSpec.from_module(model, x)
    fc_sets = [s for s in spec.blueprint.sets if s.name.startswith("fc")]
    assert len(fc_sets) == 2  # one node set per call
    assert_round_trip(model, x)
    assert_symmetries_preserve_function(model, x)
    # the calls' input and output sets are tied: inp, both fc calls move as one group
    names = {s.name: i for i, s in enumerate(spec.blueprint.sets)}
    group = next(g for g in spec.permutation_groups if names["inp"] in g.sets)
    assert len(group.sets) == 3 and not group.fixed


def test_a_tensor_read_in_two_ways_is_refused_by_name():
    with pytest.raises(UnsupportedModuleError, match=r"cannot read 'norm' \(shared weights\).*"
                                                     r"'norm.weight' is read twice"):
        ws.GraphSpec.from_module(WeightAsBias(), torch.zeros(2, 5))
