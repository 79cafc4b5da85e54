"""message_pna and EdgeMPNNConv's aggregation: exact gradients (gradcheck in float64), and the
same values and gradients as the messages written out with autograd and aggregated by PyG's
scatter-based MultiAggregation."""

from __future__ import annotations

import torch
from torch_geometric.nn.aggr import MultiAggregation

from weightspace.nn.conv.degree_blocks import DegreeBlocks
from weightspace.nn.conv.edge_mpnn_conv import EdgeMPNNConv, MessageBlocks
from weightspace.nn.conv.message_pna import message_pna


def random_graph(num_nodes=30, num_edges=120, seed=0):
    """Mixed in- and out-degrees, nodes 25.. without edges, a node with one edge."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, 24, (2, num_edges), generator=g)
    return torch.cat([edge_index, torch.tensor([[24], [0]])], 1), num_nodes


def test_message_pna_gradients_are_exact():
    edge_index, num_nodes = random_graph(num_nodes=12, num_edges=40)
    edge_index = edge_index.clamp(max=11)
    hidden, num_edges = 3, edge_index.shape[1]
    blocks = DegreeBlocks.of(edge_index[1], num_nodes)
    source = edge_index[0][blocks.order]
    torch.manual_seed(0)
    shapes = [(num_edges, hidden), (num_nodes, hidden), (num_nodes, hidden), (hidden, hidden),
              (2 * hidden, hidden), (2 * hidden,), (hidden, hidden), (hidden,)]
    inputs = [torch.randn(s, dtype=torch.float64, requires_grad=True) for s in shapes]

    def fn(*tensors):
        return tuple(t.double() for t in message_pna(*tensors, blocks, source))

    assert torch.autograd.gradcheck(fn, inputs)


def reference_aggregate(conv: EdgeMPNNConv, hn, en, edge_index):
    """The messages one per row in edge order, aggregated by PyG (the definition)."""
    src, dst = torch.cat([edge_index, edge_index.flip(0)], 1)
    e = torch.cat([en, en + conv.reverse])
    pre = conv.message_mlp[0](torch.cat([hn[dst], hn[src], e], -1))
    gamma, beta = conv.film(e).chunk(2, -1)
    messages = gamma * conv.message_mlp[2](conv.message_mlp[1](pre)) + beta
    aggr = MultiAggregation(["mean", "max", "min", "std"], mode="cat")
    return aggr(messages, dst, dim_size=hn.shape[0])


def test_aggregation_equals_pyg_values_and_gradients():
    edge_index, num_nodes = random_graph()
    torch.manual_seed(1)
    conv = EdgeMPNNConv(8).double()
    with torch.no_grad():  # FiLM away from its identity start
        conv.film.weight.normal_(0, 0.3)
    hn = torch.randn(num_nodes, 8, dtype=torch.float64, requires_grad=True)
    en = torch.randn(edge_index.shape[1], 8, dtype=torch.float64, requires_grad=True)
    ours = conv.aggregate(hn, en, MessageBlocks.of(edge_index, num_nodes))
    pyg = reference_aggregate(conv, hn, en, edge_index)
    torch.testing.assert_close(ours, pyg)
    assert ours[27].abs().sum() == 0  # no messages: zeros, as PyG gives
    weights = torch.randn_like(ours)
    inputs = [hn, en, *conv.parameters()]
    g_ours = torch.autograd.grad(ours, inputs, weights, allow_unused=True)
    g_pyg = torch.autograd.grad(pyg, inputs, weights, allow_unused=True)
    for a, b in zip(g_ours, g_pyg, strict=True):
        if b is None:  # the node and edge MLPs
            assert a is None or not a.any()
        else:
            torch.testing.assert_close(a, b)


def test_bf16_autocast_keeps_the_aggregation_close():
    edge_index, num_nodes = random_graph(seed=2)
    torch.manual_seed(2)
    conv = EdgeMPNNConv(16)
    hn, en = torch.randn(num_nodes, 16), torch.randn(edge_index.shape[1], 16)
    blocks = MessageBlocks.of(edge_index, num_nodes)
    full = conv.aggregate(hn, en, blocks)
    with torch.autocast("cpu", torch.bfloat16):
        half = conv.aggregate(hn, en, blocks)
    assert half.dtype == torch.float32
    assert (half - full).norm() / full.norm() < 0.02


def test_blocks_hold_consecutive_messages_of_one_node_and_one_degree():
    torch.manual_seed(1)
    dst = torch.randint(0, 20, (120,))
    blocks = DegreeBlocks.of(dst, 25)
    grouped = dst[blocks.order]
    degree = torch.bincount(dst, minlength=25)
    seen = []
    for nodes, targets in blocks.split(grouped):
        assert (targets == nodes.unsqueeze(1)).all()  # row k of a block: node k, repeated
        assert (degree[nodes] == targets.shape[1]).all()
        seen.append(nodes)
    assert sorted(torch.cat(seen).tolist()) == sorted(set(dst.tolist()))
    assert torch.equal(blocks.order[blocks.inverse], torch.arange(len(dst)))
    assert torch.equal(blocks.to_nodes(torch.ones(len(blocks.nodes)), fill=-1.0) == 1,
                       degree > 0)
