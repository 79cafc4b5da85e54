"""Probe features: each node holds what its neuron computes on the probe inputs, moves with the
node under symmetries, and the GMN that reads them stays invariant."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

import weightspace as ws
from tests.conftest import build
from tests.nn.test_gmn import batch_of
from weightspace.configs import compose
from weightspace.graph import sample_symmetries
from weightspace.nn import WeightSpaceModel
from weightspace.nn.probes import ProbeFeatures, squash
from weightspace.zoo.recipe import recipe_for


def test_values_are_the_neurons_outputs_on_the_probes():
    net = build("mlp")  # 5 -> 16 -> 12 -> 3, ReLU
    spec = ws.GraphSpec.from_module(net)
    probes = ProbeFeatures(net, spec, 7)
    feats = probes(spec.flatten(net)[None])[0]  # [N, 7]
    u = probes.probes  # [7, 5]
    first = net[0]  # the first Linear of the Sequential
    sizes = [s.size for s in spec.blueprint.sets]
    assert sizes == [5, 16, 12, 3]
    torch.testing.assert_close(feats[:5], squash(u.T))
    torch.testing.assert_close(feats[5:21], squash(first(u).T))
    torch.testing.assert_close(feats[-3:], squash(net(u).T))


def test_channels_are_averaged_over_positions():
    net = build("small_cnn")
    spec = ws.GraphSpec.from_module(net)
    probes = ProbeFeatures(net, spec, 4)
    feats = probes(spec.flatten(net)[None])[0]
    u = probes.probes  # [4, 1, 8, 8]
    torch.testing.assert_close(feats[0], squash(u.mean((1, 2, 3))))
    conv = net.features[0](u)  # [4, 16, 4, 4]
    torch.testing.assert_close(feats[1:17], squash(conv.mean((2, 3)).T))
    torch.testing.assert_close(feats[-10:], squash(net(u).T))


@pytest.mark.filterwarnings("ignore:There is a performance drop")  # attention under vmap
@pytest.mark.parametrize("name,covered", [("siren", 1.0), ("small_cnn", 1.0),
                                          ("resnet_blocks", 1.0), ("tiny_vit", 0.4)])
def test_probe_values_move_with_their_nodes(name, covered):
    spec, vecs, bufs = batch_of(name)
    probes = ProbeFeatures(build(name), spec, 6)
    t = sample_symmetries(spec, vecs.shape[0], torch.Generator().manual_seed(2), sign=False,
                          scale=False)
    feats = probes(vecs, bufs)
    moved = probes(t(vecs), None if bufs is None else t.buffers(bufs))
    expected = torch.gather(feats, 1, t.node_perm.unsqueeze(-1).expand_as(feats))
    torch.testing.assert_close(moved, expected, rtol=1e-4, atol=1e-5)
    # nodes with values: all but the ViT's attention heads, tokens and residual sums
    assert (feats.abs().sum(-1) > 0).float().mean() >= covered


@pytest.mark.parametrize("name", ["siren", "resnet_blocks"])
@pytest.mark.parametrize("outputs", [False, True])
def test_gmn_with_probes_stays_invariant(name, outputs):
    spec, vecs, bufs = batch_of(name)
    t = sample_symmetries(spec, vecs.shape[0], torch.Generator().manual_seed(3), sign=False,
                          scale=False)
    torch.manual_seed(0)
    options = {"readout": "layers", "outputs": True} if outputs else {}
    model = WeightSpaceModel("gmn", spec, out_dim=3, hidden=16, layers=2, probes=5,
                             networks=[build(name)], **options).eval()
    model.fit_normalization([vecs * 3])
    with torch.no_grad():
        out = model(vecs, bufs)
        moved = model(t(vecs), None if bufs is None else t.buffers(bufs))
        without = WeightSpaceModel("gmn", spec, out_dim=3, hidden=16, layers=2).eval()
    torch.testing.assert_close(moved, out, rtol=1e-4, atol=1e-5)
    assert without.net.node_encoder.probe is None and model.net.node_encoder.probe is not None


def test_mistakes_are_named():
    spec, vecs, _ = batch_of("siren")
    with pytest.raises(ValueError, match="not of architecture"):
        ProbeFeatures(build("mlp"), spec, 4)
    with pytest.raises(ValueError, match="one module per architecture"):
        WeightSpaceModel("gmn", spec, probes=4)
    with pytest.raises(ValueError, match="model .np. reads no probe features"):
        WeightSpaceModel("np", spec, probes=4, networks=[build("siren")])
    token_net = build("transformer_block")
    with pytest.raises(ValueError, match="floating-point inputs"):
        ProbeFeatures(token_net, ws.GraphSpec.from_module(token_net), 4)


def test_probe_data_val_reads_the_recipes_validation_inputs():
    recipe = OmegaConf.to_container(compose("build_zoo", ["zoo=digits_cnn"]).zoo)
    network = recipe_for(recipe).build(recipe_for(recipe).run(0, 0))
    spec = ws.GraphSpec.from_module(network)
    cfg = OmegaConf.create({"name": "gmn", "hidden": 8, "layers": 1, "probes": 5,
                            "probe_data": "val"})
    model = WeightSpaceModel.from_config(cfg, spec, recipe=recipe)
    inputs = model._probes[0].probes
    val = recipe_for(recipe).data()["val"][0]
    assert inputs.shape == (5, *val.shape[1:])
    assert all((val == x).flatten(1).all(1).any() for x in inputs)  # rows of the val split


def test_an_inr_zoo_is_probed_at_its_signals_coordinates():
    """An INR's inputs are coordinates: ``probe_data=val`` evaluates it at K of the points its
    signal is sampled at, so its output's probe values are the signal it renders there."""
    inr = OmegaConf.to_container(compose("build_zoo", ["zoo=digits_inr"]).zoo)
    maker = recipe_for(inr)
    run = maker.run(0, 0)
    siren = maker.fit_alone(run, steps=5)
    spec = ws.GraphSpec.from_module(siren)
    cfg = OmegaConf.create({"name": "gmn", "hidden": 8, "layers": 1, "probes": 64,
                            "probe_data": "val"})
    model = WeightSpaceModel.from_config(cfg, spec, recipe=inr)
    coords = maker.coords()
    assert torch.equal(model._probes[0].probes, coords)  # all 64 pixels, in order
    values = model._probes[0](spec.flatten(siren).unsqueeze(0))
    with torch.no_grad():
        rendered = siren(coords)[:, 0]
    torch.testing.assert_close(values[0, -1], squash(rendered).to(values))  # the output node
    assert torch.equal(maker.probe_inputs(3), coords[[0, 32, 63]])
    with pytest.raises(ValueError, match="64 coordinates"):
        WeightSpaceModel.from_config(OmegaConf.merge(cfg, {"probes": 65}), spec, recipe=inr)


def test_statnn_reads_the_outputs_on_the_probes_and_stays_invariant():
    spec, vecs, _ = batch_of("mlp")
    net = build("mlp")
    torch.manual_seed(0)
    model = WeightSpaceModel("statnn", spec, out_dim=2, hidden=16, layers=2, probes=3,
                             networks=[net]).eval()
    model.fit_normalization([vecs])
    out = model(vecs)
    t = sample_symmetries(spec, vecs.shape[0], torch.Generator().manual_seed(1), sign=False,
                          scale=False)
    torch.testing.assert_close(model(t(vecs)), out, rtol=1e-4, atol=1e-5)
    # the extra features are the network's outputs on the three probe inputs
    extra = model._output_probes(vecs[:1], None, 0)
    net.load_state_dict(spec.unflatten(vecs[0]))
    with torch.no_grad():
        expected = squash(net(model._probes[0].probes)).T.flatten()
    torch.testing.assert_close(extra[0], expected.to(extra))
