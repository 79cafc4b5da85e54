"""WeightSpaceModel: the metanetworks behind their input adapter keep the symmetries, with the
per-tensor scales fitted; edits come out in each tensor's own units."""

from __future__ import annotations

import pytest
import torch

from tests.nn.test_gmn import batch_of
from weightspace.graph import sample_symmetries
from weightspace.nn import WeightSpaceModel


@pytest.mark.parametrize("model,name", [("gmn", "small_cnn"), ("gmn", "resnet_blocks"),
                                        ("gmn", "siren"), ("np", "small_cnn"),
                                        ("statnn", "tiny_vit")])
def test_invariant_predictions_and_equivariant_edits(model, name):
    spec, vecs, bufs = batch_of(name)
    t = sample_symmetries(spec, vecs.shape[0], torch.Generator().manual_seed(3), sign=False,
                          scale=False)
    moved, moved_bufs = t(vecs), None if bufs is None else t.buffers(bufs)
    torch.manual_seed(0)
    inv = WeightSpaceModel(model, spec, out_dim=3, hidden=16, layers=2).eval()
    inv.fit_normalization([vecs * 3])  # scales other than 1, as after fitting on a zoo
    with torch.no_grad():
        torch.testing.assert_close(inv(moved, moved_bufs), inv(vecs, bufs), rtol=1e-4,
                                   atol=1e-5)
    if model == "statnn":
        with pytest.raises(ValueError, match="cannot output edits"):
            WeightSpaceModel(model, spec, equivariant=True)
        return
    eq = WeightSpaceModel(model, spec, equivariant=True, hidden=16, layers=2).eval()
    eq.fit_normalization([vecs * 3])
    with torch.no_grad():
        delta = eq(vecs, bufs)
        torch.testing.assert_close(eq(moved, moved_bufs), t(delta), rtol=1e-4, atol=1e-6)


def test_edits_come_in_each_tensors_units():
    spec, vecs, _ = batch_of("siren")
    model = WeightSpaceModel("mlp", spec, equivariant=True, hidden=8, layers=2, edit_scale=1.0)
    model.fit_normalization([vecs])
    with torch.no_grad():
        model.net.mlp[-1].weight.zero_()
        model.net.mlp[-1].bias.fill_(1.0)  # the raw output is 1 everywhere
        delta = model(vecs)[0]
    for slot in spec.params.slots:
        expected = vecs[:, slot.offset : slot.stop].std()
        torch.testing.assert_close(delta[slot.offset : slot.stop],
                                   expected.expand(slot.numel))
    with pytest.raises(ValueError, match="of 1 architectures, got 2"):
        model.fit_normalization([vecs, vecs])


def test_a_scale_edit_is_relative_to_each_weight():
    """``edit="scale"``: delta = s * theta * out, so out = -1/s turns every weight off."""
    spec, vecs, _ = batch_of("siren")
    model = WeightSpaceModel("mlp", spec, equivariant=True, hidden=8, layers=2, edit_scale=0.5,
                             edit="scale")
    model.fit_normalization([vecs])
    with torch.no_grad():
        model.net.mlp[-1].weight.zero_()
        model.net.mlp[-1].bias.fill_(-2.0)
        delta = model(vecs)
    torch.testing.assert_close(vecs + delta, torch.zeros_like(vecs))
    with pytest.raises(KeyError, match="unknown edit 'gate'"):
        WeightSpaceModel("mlp", spec, equivariant=True, edit="gate")


def test_a_registered_metanetwork_is_built_by_name_and_unknown_names_are_refused():
    from torch import nn

    from weightspace.nn import METANETWORKS, Metanetwork

    class Mean(nn.Module):  # a user's invariant metanetwork on flat vectors
        def __init__(self, out):
            super().__init__()
            self.head = nn.Linear(1, out)

        def forward(self, vecs):
            return self.head(vecs.mean(1, keepdim=True))

    spec, vecs, _ = batch_of("siren")
    METANETWORKS.register("test_mean", Metanetwork(lambda spec, out, *_: Mean(out),
                                                   equivariant_ok=False))
    try:
        model = WeightSpaceModel("test_mean", spec, out_dim=2)
        assert model(vecs).shape == (vecs.shape[0], 2)
        with pytest.raises(ValueError, match="'test_mean' is invariant"):
            WeightSpaceModel("test_mean", spec, equivariant=True)
        with pytest.raises(ValueError, match="reads no probe features"):
            WeightSpaceModel("test_mean", spec, probes=4)
    finally:
        METANETWORKS._entries.pop("test_mean")
    with pytest.raises(KeyError, match=r"unknown model 'gnm' \(config key model.name\)"):
        WeightSpaceModel("gnm", spec)


@pytest.mark.parametrize("name", ["small_cnn_1d", "resnet_blocks", "tiny_vit"])
def test_per_layer_readout_with_statistics_stays_invariant(name):
    from weightspace.testing import assert_invariant

    spec, vecs, bufs = batch_of(name)
    torch.manual_seed(0)
    model = WeightSpaceModel("gmn", spec, out_dim=2, hidden=16, layers=2, nonlinear=True,
                             readout="layers", stats=True, outputs=True).eval()
    model.fit_normalization([vecs * 3])
    assert model.net.readout.layers == int(spec.layer.max()) + 1
    assert model.net.readout.outputs == 10  # each class's state, in order
    assert_invariant(model, spec, vecs, bufs, sign=False, scale=False)
    # the statistics reach the output: another network with the same graph states differs
    with torch.no_grad():
        base = model(vecs, bufs)
        model.stats_mean.add_(1.0)
        assert not torch.allclose(model(vecs, bufs), base)


def test_gmn_option_mistakes_are_named():
    spec, _, _ = batch_of("small_cnn")
    with pytest.raises(ValueError, match="model.readout is 'graph'"):
        WeightSpaceModel("gmn", spec, readout="nodes")
    with pytest.raises(ValueError, match="set model.readout=layers"):
        WeightSpaceModel("gmn", spec, stats=True)
    with pytest.raises(ValueError, match=r"model 'np' takes none of the options \['readout'\]"):
        WeightSpaceModel("np", spec, readout="layers")
