"""Baselines: StatNN's features and invariance; the flat MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import weightspace as ws
from tests.conftest import build
from weightspace.graph import sample_symmetries
from weightspace.nn.baselines import FlatMLP, NPNetwork, StatNN, weight_chain, weight_statistics
from weightspace.tasks import regression_metrics


def test_statistics_are_the_tensors_statistics():
    model = build("small_cnn")
    spec = ws.GraphSpec.from_module(model)
    f = weight_statistics(spec, spec.flatten(model).unsqueeze(0))[0]
    w = model.features[0].weight.detach().reshape(-1)
    assert torch.allclose(f[:7], torch.stack([w.mean(), w.var(unbiased=False), w.min(),
                                              w.quantile(0.25), w.quantile(0.5), w.quantile(0.75),
                                              w.max()]))
    assert f.numel() == 7 * len(spec.params.slots)


@pytest.mark.parametrize("name", ["resnet_blocks", "small_cnn", "tiny_vit"])
def test_statnn_is_invariant_to_permutations(name):
    models = [build(name, s) for s in range(4)]
    spec = ws.GraphSpec.from_module(models[0])
    vecs = torch.stack([spec.flatten(m) for m in models])
    net = StatNN(spec, hidden=16)
    net.fit_normalization(vecs)
    t = sample_symmetries(spec, 4, torch.Generator().manual_seed(0), sign=False, scale=False)
    torch.testing.assert_close(net(t(vecs)), net(vecs), rtol=1e-5, atol=1e-6)


def test_flat_mlp_shapes():
    net = FlatMLP(10, hidden=8)
    x = torch.randn(5, 10)
    net.fit_normalization(x)
    assert net(x).shape == (5, 1)


def test_regression_metrics():
    m = regression_metrics([1, 2, 3, 4], [1, 2, 3, 4])
    assert m["kendall_tau"] == 1.0 and m["r2"] == 1.0 and m["mse"] == 0.0
    m = regression_metrics([4, 3, 2, 1], [1, 2, 3, 4])
    assert m["kendall_tau"] == -1.0 and np.isclose(m["mse"], 5.0)


@pytest.mark.parametrize("name", ["mlp", "mlp_tanh", "siren", "small_cnn"])
def test_np_network_invariant_and_equivariant_under_permutations(name):
    models = [build(name, s) for s in range(3)]
    spec = ws.GraphSpec.from_module(models[0])
    vecs = torch.stack([spec.flatten(m) for m in models])
    t = sample_symmetries(spec, 3, torch.Generator().manual_seed(0), sign=False, scale=False)
    assert not torch.allclose(t(vecs), vecs)
    torch.manual_seed(0)
    inv = NPNetwork(spec, hidden=8, layers=2, out=2)
    inv.fit_normalization(vecs)
    torch.testing.assert_close(inv(t(vecs)), inv(vecs), rtol=1e-4, atol=1e-5)
    eq = NPNetwork(spec, hidden=8, layers=2, equivariant=True)
    delta = eq(vecs)
    assert delta.shape == vecs.shape and delta.abs().sum() > 0
    torch.testing.assert_close(eq(t(vecs)), t(delta), rtol=1e-4, atol=1e-5)


def test_np_network_layers_are_the_chain():
    spec = ws.GraphSpec.from_module(build("small_cnn"))
    chain = weight_chain(spec)
    assert [(c.n_out, c.n_in, c.entries) for c in chain] == [(16, 1, 9), (16, 16, 9),
                                                              (16, 16, 9), (10, 16, 1)]


@pytest.mark.parametrize("name", ["resnet_blocks", "tiny_vit", "mlp_layernorm", "conv1d"])
def test_np_network_refuses_what_is_not_a_chain(name):
    spec = ws.GraphSpec.from_module(build(name))
    with pytest.raises(ValueError, match="NPNetwork handles"):
        NPNetwork(spec)


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "small_cnn_1d"])
def test_published_nfn_np_layers_are_invariant_on_our_weight_rows(name):
    pytest.importorskip("nfn", reason="the published NFN layers are a benchmark extra")
    from tests.nn.test_gmn import batch_of
    from weightspace.nn import WeightSpaceModel
    from weightspace.testing import assert_invariant

    spec, vecs, bufs = batch_of(name)
    torch.manual_seed(0)
    model = WeightSpaceModel("nfn_np", spec, out_dim=2, hidden=8, layers=2).eval()
    model.fit_normalization([vecs * 3])
    assert model(vecs, bufs).shape == (3, 2)
    assert_invariant(model, spec, vecs, bufs, sign=False, scale=False)
    with pytest.raises(ValueError, match="invariant"):
        WeightSpaceModel("nfn_np", spec, equivariant=True)
