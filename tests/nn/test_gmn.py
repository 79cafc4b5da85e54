"""GraphMetaNetwork is invariant (graph head) and equivariant (weight heads) under symmetries."""

from __future__ import annotations

import pytest
import torch

import weightspace as ws
from tests.conftest import build
from weightspace.data import GraphBatcher
from weightspace.graph import sample_symmetries
from weightspace.nn import GraphMetaNetwork, scatter_to_weights
from weightspace.testing import assert_equivariant, assert_invariant


def batch_of(name, n=3):
    models = [build(name, s) for s in range(n)]
    spec = ws.GraphSpec.from_module(models[0])
    vecs = torch.stack([spec.flatten(m) for m in models])
    bufs = torch.stack([spec.flatten_buffers(m) for m in models]) if len(spec.buffers) else None
    return spec, vecs, bufs


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "resnet_blocks", "tiny_vit"])
def test_invariant_and_equivariant_under_random_permutations(name):
    torch.manual_seed(0)
    spec, vecs, bufs = batch_of(name)
    gmn = GraphMetaNetwork(spec.num_edge_features, hidden=32, layers=3, graph_out=2,
                           equivariant=True).eval()
    batcher = GraphBatcher(spec)
    assert_invariant(lambda v, b: gmn(batcher(v, b)).graph, spec, vecs, bufs, sign=False,
                     scale=False)
    assert_equivariant(lambda v, b: gmn.weight_delta(spec, gmn(batcher(v, b))), spec, vecs,
                       bufs, sign=False, scale=False)


def test_different_networks_give_different_outputs():
    spec, vecs, bufs = batch_of("small_cnn")
    gmn = GraphMetaNetwork(spec.num_edge_features, hidden=16, layers=2).eval()
    with torch.no_grad():
        out = gmn(GraphBatcher(spec)(vecs)).graph
    assert out.shape == (3, 1)
    assert out.std() > 0


def test_gradients_reach_every_parameter():
    spec, vecs, _ = batch_of("mlp")
    gmn = GraphMetaNetwork(spec.num_edge_features, hidden=16, layers=2, equivariant=True)
    out = gmn(GraphBatcher(spec)(vecs))
    (out.graph.sum() + gmn.weight_delta(spec, out).sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gmn.parameters())


def test_scatter_is_the_inverse_of_the_gather():
    spec, vecs, bufs = batch_of("resnet_blocks")
    batch = GraphBatcher(spec)(vecs, bufs)
    assert torch.equal(scatter_to_weights(spec, batch.x, batch.edge_attr), vecs)


def test_mismatched_canvas_is_refused():
    spec, vecs, _ = batch_of("small_cnn")
    gmn = GraphMetaNetwork(edge_features=1, hidden=8, layers=1)
    with pytest.raises(ValueError, match="canvas"):
        gmn(GraphBatcher(spec)(vecs))


def test_fourier_features_keep_the_symmetry():
    spec, vecs, _ = batch_of("mlp")
    gmn = GraphMetaNetwork(spec.num_edge_features, hidden=16, layers=2, fourier=4).eval()
    t = sample_symmetries(spec, 3, torch.Generator().manual_seed(0), sign=False, scale=False)
    batcher = GraphBatcher(spec)
    with torch.no_grad():
        torch.testing.assert_close(gmn(batcher(t(vecs))).graph, gmn(batcher(vecs)).graph,
                                   rtol=1e-4, atol=1e-5)
    w = torch.tensor([0.0, 0.25])
    f = gmn.node_encoder.fourier(w)
    assert f.shape == (2 * 9,) and f[0] == 0.0 and f[9] == 0.25


def test_bf16_mixed_keeps_float32_outputs_close_to_float32_and_the_symmetry():
    spec, vecs, _ = batch_of("small_cnn", n=4)
    torch.manual_seed(0)
    gmn = GraphMetaNetwork(spec.num_edge_features, hidden=16, layers=2, graph_out=2,
                           equivariant=True, readout_layers=0).eval()
    batcher = GraphBatcher(spec)
    with torch.no_grad():
        full = gmn(batcher(vecs))
        gmn.precision = "bf16-mixed"
        mixed = gmn(batcher(vecs))
        moved = gmn(batcher(sample_symmetries(spec, 4, torch.Generator().manual_seed(0),
                                              sign=False, scale=False)(vecs)))
    assert mixed.graph.dtype == mixed.edge.dtype == torch.float32  # heads run in float32
    torch.testing.assert_close(mixed.graph, full.graph, rtol=0.05, atol=0.05)
    torch.testing.assert_close(moved.graph, mixed.graph, rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="precision"):
        GraphMetaNetwork(spec.num_edge_features, precision="16")
