"""random_symmetry changes the weights, never the function; graphs permute with the network."""

from __future__ import annotations

import pytest
import torch

import weightspace as ws
from tests.conftest import FAST, build
from weightspace.graph import sample_symmetry
from weightspace.graph.blocks import NODE_BIAS
from weightspace.testing import assert_symmetries_preserve_function


def transformed_model(model, spec, t):
    vec, buf = spec.flatten(model), spec.flatten_buffers(model)
    return ws.from_graph(spec.graph(t(vec), t.buffers(buf)), like=model)


@pytest.mark.parametrize("name", FAST)
def test_symmetry_preserves_function(name):
    assert_symmetries_preserve_function(build(name), draws=12)


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "flatten_cnn", "resnet_blocks"])
def test_permutations_alone_preserve_function(name):
    assert_symmetries_preserve_function(build(name), draws=12, sign=False, scale=False)


def test_resnet18_symmetry_preserves_function():
    assert_symmetries_preserve_function(build("resnet18"), draws=3)


def expected_graph(g0, t):
    """The graph of the transformed network, built from the original by relabelling nodes."""
    new_of_old = torch.empty_like(t.node_perm)
    new_of_old[t.node_perm] = torch.arange(len(t.node_perm))
    x = g0.x[t.node_perm].clone()
    x[:, NODE_BIAS] = x[:, NODE_BIAS] * t.node_scale.to(x.dtype)
    src, dst = new_of_old[g0.edge_index[0]], new_of_old[g0.edge_index[1]]
    ratio = (t.node_scale[dst] / t.node_scale[src]).to(g0.edge_attr.dtype).unsqueeze(1)
    constant = g0.edge_type.new_zeros(g0.num_edges, dtype=torch.bool)
    for name in ("RESIDUAL", "BIAS_ADD", "ATTN_QK", "ATTN_KV"):
        constant |= g0.edge_type == getattr(ws.graph.EdgeType, name)
    attr = torch.where(constant.unsqueeze(1), g0.edge_attr, g0.edge_attr * ratio)
    return x, torch.stack([src, dst]), attr


def canonical(edge_index, edge_type, edge_pos, attr, n):
    key = ((edge_index[0] * n + edge_index[1]) * 32 + edge_type) * 64 + edge_pos
    order = torch.argsort(key)
    return key[order], attr[order]


@pytest.mark.parametrize("name", FAST + ["resnet18"])
def test_graph_of_transformed_network_is_the_permuted_graph(name):
    model = build(name)
    spec = ws.GraphSpec.from_module(model)
    g0 = ws.to_graph(model)
    for seed in range(2 if name == "resnet18" else 5):
        t = sample_symmetry(spec, torch.Generator().manual_seed(seed))
        g1 = ws.to_graph(transformed_model(model, spec, t))
        x, edge_index, attr = expected_graph(g0, t)
        torch.testing.assert_close(g1.x, x, rtol=1e-6, atol=0)
        k1, a1 = canonical(g1.edge_index, g1.edge_type, g1.edge_pos, g1.edge_attr, g1.num_nodes)
        k0, a0 = canonical(edge_index, g0.edge_type, g0.edge_pos, attr, g0.num_nodes)
        assert torch.equal(k1, k0)
        torch.testing.assert_close(a1, a0, rtol=1e-6, atol=0)


def test_pure_permutation_moves_graph_exactly():
    model = build("resnet_blocks")
    spec = ws.GraphSpec.from_module(model)
    t = sample_symmetry(spec, torch.Generator().manual_seed(3), sign=False, scale=False)
    g0, g1 = ws.to_graph(model), ws.to_graph(transformed_model(model, spec, t))
    x, edge_index, attr = expected_graph(g0, t)
    assert torch.equal(g1.x, x)
    k1, a1 = canonical(g1.edge_index, g1.edge_type, g1.edge_pos, g1.edge_attr, g1.num_nodes)
    k0, a0 = canonical(edge_index, g0.edge_type, g0.edge_pos, attr, g0.num_nodes)
    assert torch.equal(k1, k0) and torch.equal(a1, a0)


def test_which_symmetries_each_activation_allows():
    relu, tanh = build("mlp"), build("mlp_tanh")
    s_relu = ws.GraphSpec.from_module(relu).blueprint.sets
    s_tanh = ws.GraphSpec.from_module(tanh).blueprint.sets
    hidden = [1, 2]
    assert all(s_relu[i].scale_ok and not s_relu[i].sign_ok for i in hidden)
    assert all(s_tanh[i].sign_ok and not s_tanh[i].scale_ok for i in hidden)
    siren = ws.GraphSpec.from_module(build("siren")).blueprint.sets
    assert [s.sign_ok for s in siren] == [False, True, True, False]  # sin(30 x) is odd
    gelu = ws.GraphSpec.from_module(build("mlp_layernorm")).blueprint.sets
    assert not any(s.sign_ok or s.scale_ok for s in gelu if s.node_type == 1 and s.role ==
                   "hidden")


def test_symmetry_kinds_can_be_switched_off():
    model = build("mlp_tanh")
    spec = ws.GraphSpec.from_module(model)
    vec = spec.flatten(model)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(ws.random_symmetry(spec, vec, g, permute=False, sign=False), vec)
    flipped = ws.random_symmetry(spec, vec, g, permute=False, scale=False)
    assert torch.equal(flipped.abs(), vec.abs()) and not torch.equal(flipped, vec)


def test_residual_ties_and_fixed_sets():
    spec = ws.GraphSpec.from_module(build("resnet_blocks"))
    sets = spec.blueprint.sets
    groups = spec.permutation_groups
    # Stem conv, its BN, the first block's BN2 and both adds share one permutation.
    stem = next(g for g in groups if 1 in g.sets)
    assert len(stem.sets) >= 4 and not stem.fixed
    for g in groups:
        if any(sets[s].role in ("input", "output") for s in g.sets):
            assert g.fixed


def test_group_constraints():
    # GroupNorm(4 groups) on both sides of a conv with groups=2: channels may move only inside
    # their GroupNorm group, and groups stay in place (the finest common refinement).
    spec = ws.GraphSpec.from_module(build("groupnorm_cnn"))
    gn = [g for g in spec.permutation_groups if g.blocks == 4]
    assert len(gn) == 2 and all(g.block_group == "fixed" for g in gn)
    # A depthwise conv ties its input and output channels one to one.
    spec = ws.GraphSpec.from_module(build("conv1d"))
    depthwise = [g for g in spec.permutation_groups if g.block_group == "net.4.groups"]
    assert len(depthwise) == 2 and all(g.blocks == 12 for g in depthwise)


def test_batched_vectors_transform_alike():
    model = build("small_cnn")
    spec = ws.GraphSpec.from_module(model)
    vecs = torch.stack([spec.flatten(build("small_cnn", s)) for s in range(3)])
    t = sample_symmetry(spec, torch.Generator().manual_seed(0))
    out = t(vecs)
    for i in range(3):
        assert torch.equal(out[i], t(vecs[i]))


@pytest.mark.parametrize("name", ["resnet_blocks", "tiny_vit", "mlp_tanh"])
def test_moving_one_group_touches_only_its_entries(name):
    """``entry_moves`` over the nodes of one group gives what the full transform gives."""
    from weightspace.graph.entry_moves import entry_moves
    from weightspace.graph.symmetry import node_transform

    model = build(name)
    spec = ws.GraphSpec.from_module(model)
    full = sample_symmetry(spec, torch.Generator().manual_seed(2), scale=False)
    group = next(g for g in spec.permutation_groups if not g.fixed and g.size > 1)
    nodes = torch.cat([spec.set_offset[s] + torch.arange(group.size) for s in group.sets])
    perm, scale = torch.arange(spec.num_nodes), torch.ones(spec.num_nodes, dtype=torch.float64)
    perm[nodes], scale[nodes] = full.node_perm[nodes], full.node_scale[nodes]
    whole = node_transform(spec, perm[None], scale[None])[0]
    vec = spec.flatten(model).double()
    buffers = spec.flatten_buffers(model) if len(spec.buffers) else None
    moved, moved_buffers = entry_moves(spec, perm[None], scale[None], nodes).apply(vec, buffers)
    assert torch.equal(moved, whole(vec))
    if buffers is not None:
        assert torch.equal(moved_buffers, whole.buffers(buffers))
    assert not torch.equal(moved, vec)
