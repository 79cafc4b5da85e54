"""A zoo brought into one frame: permuted (and, behind ReLUs, rescaled) copies of one network
land on one row, and every row keeps its function."""

from __future__ import annotations

import copy

import pytest
import torch

import weightspace as ws
from tests.conftest import build, sample_inputs
from weightspace.alignment.canonical import align_rows
from weightspace.alignment.scale_matching import unit_scales
from weightspace.graph.symmetry import sample_symmetries


def outputs(model, row, inputs):
    spec = ws.GraphSpec.from_module(model)
    m = copy.deepcopy(model).double().eval()
    m.load_state_dict(spec.unflatten(row.double()))
    with torch.no_grad():
        return m(*(x.double() for x in inputs))


@pytest.mark.parametrize("name,scale", [("mlp", True), ("mlp_tanh", False),
                                        ("small_cnn", True)])
def test_copies_of_one_network_land_on_one_row(name, scale):
    model = build(name)
    spec = ws.GraphSpec.from_module(model)
    vec = spec.flatten(model).double()
    t = sample_symmetries(spec, 6, torch.Generator().manual_seed(0), scale=scale)
    copies = t(vec.expand(6, -1))
    assert not torch.allclose(copies[0], copies[1])
    others = torch.stack([spec.flatten(build(name, seed)).double() for seed in (1, 2)])
    aligned, reference = align_rows(spec, torch.cat([copies, others]), scales=scale)
    assert torch.allclose(aligned[:6], aligned[0].expand(6, -1), atol=1e-6)
    inputs = sample_inputs(model)
    for row, before in zip(aligned, torch.cat([copies, others]), strict=True):
        assert torch.allclose(outputs(model, row, inputs), outputs(model, before, inputs),
                              rtol=1e-6, atol=1e-6)
    again, _ = align_rows(spec, torch.cat([copies, others]), reference, scales=scale)
    assert torch.allclose(again, aligned, atol=1e-6)  # a given reference is kept


def test_unit_scales_give_every_relu_neuron_unit_incoming_weights():
    model = build("mlp")  # 5 -> 16 -> 12 -> 3, ReLU
    spec = ws.GraphSpec.from_module(model)
    vec = spec.flatten(model).double()
    out = unit_scales(spec, vec)(vec)
    state = spec.unflatten(out)
    for layer in ("0", "2"):
        rows = torch.cat([state[f"{layer}.weight"], state[f"{layer}.bias"][:, None]], 1)
        assert torch.allclose(rows.double().norm(dim=1), torch.ones(len(rows), dtype=torch.float64),
                              atol=1e-6)
    assert torch.allclose(unit_scales(spec, out)(out), out, atol=1e-12)  # already canonical
    inputs = sample_inputs(model)
    assert torch.allclose(outputs(model, out, inputs), outputs(model, vec, inputs))
    tanh = build("mlp_tanh")
    spec_t = ws.GraphSpec.from_module(tanh)
    v = spec_t.flatten(tanh)
    assert torch.equal(unit_scales(spec_t, v)(v.double()), v.double())  # no scale symmetry


def test_bad_rows_are_refused():
    spec = ws.GraphSpec.from_module(build("mlp"))
    with pytest.raises(ValueError, match=r"rows must be \[N, "):
        align_rows(spec, torch.zeros(3, 7))
    bn = ws.GraphSpec.from_module(build("resnet_blocks"))
    with pytest.raises(ValueError, match="buffers"):
        align_rows(bn, torch.zeros(2, bn.num_params))
