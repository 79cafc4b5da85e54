"""Augmentations: per-network symmetries keep every function; noise, dropout, MixUp behave."""

from __future__ import annotations

import pytest
import torch

import weightspace as ws
from tests.conftest import build, sample_inputs
from weightspace.data import gaussian_noise, mixup, random_symmetries, weight_dropout
from weightspace.data.augment import tensor_std
from weightspace.graph import sample_symmetries


@pytest.mark.parametrize("name", ["mlp_tanh", "resnet_blocks", "tiny_vit"])
def test_each_network_gets_its_own_function_preserving_transform(name):
    models = [build(name, s).double() for s in range(4)]
    spec = ws.GraphSpec.from_module(models[0])
    vecs = torch.stack([spec.flatten(m) for m in models])
    bufs = torch.stack([spec.flatten_buffers(m) for m in models]) if len(spec.buffers) else None
    out = random_symmetries(spec, vecs, torch.Generator().manual_seed(0), buffers=bufs)
    new_vecs, new_bufs = out if bufs is not None else (out, None)
    x = tuple(v.double() if v.is_floating_point() else v for v in sample_inputs(models[0]))
    with torch.no_grad():
        for b, m in enumerate(models):
            moved = ws.from_graph(spec.graph(new_vecs[b], None if bufs is None else new_bufs[b]),
                                  like=m)
            torch.testing.assert_close(moved(*x), m(*x), rtol=1e-5, atol=1e-6)
            assert not torch.equal(new_vecs[b], vecs[b])


def test_batched_sampling_matches_its_unbatched_parts():
    spec = ws.GraphSpec.from_module(build("resnet_blocks"))
    t = sample_symmetries(spec, 5, torch.Generator().manual_seed(1))
    vecs = torch.randn(5, spec.num_params)
    out = t(vecs)
    for b in range(5):
        assert torch.equal(out[b], t[b](vecs[b]))
    assert len({tuple(t.node_perm[b].tolist()) for b in range(5)}) == 5


def test_noise_follows_each_tensors_std():
    model = build("small_cnn")
    spec = ws.GraphSpec.from_module(model)
    vecs = spec.flatten(model).repeat(200, 1)
    with torch.no_grad():
        vecs[:, spec.params.by_name["head.bias"].offset :
             spec.params.by_name["head.bias"].stop] = 0.0  # a constant tensor
    noisy = gaussian_noise(spec, vecs, eps=0.1)
    delta = noisy - vecs
    std = tensor_std(spec, vecs)[0]
    for i, slot in enumerate(spec.params.slots):
        d = delta[:, slot.offset : slot.stop]
        if std[i] == 0:
            assert (d == 0).all()
        else:
            assert abs(d.std().item() / (0.1 * std[i].item()) - 1) < 0.1
    assert not torch.equal(gaussian_noise(spec, vecs), gaussian_noise(spec, vecs))


def test_weight_dropout_zeroes_about_p():
    vecs = torch.randn(50, 1000) + 5
    out = weight_dropout(vecs, 0.2, torch.Generator().manual_seed(0))
    frac = (out == 0).float().mean().item()
    assert 0.18 < frac < 0.22
    assert torch.equal(out[out != 0], vecs[out != 0])
    with pytest.raises(ValueError, match="probability"):
        weight_dropout(vecs, 1.0)


@pytest.mark.parametrize("permute", [False, True])
def test_mixup_mixes_weights_and_targets_alike(permute):
    model = build("mlp")
    spec = ws.GraphSpec.from_module(model)
    vecs = torch.stack([spec.flatten(build("mlp", s)) for s in range(8)])
    targets = torch.arange(8).float()
    mixed, mixed_t, lam = mixup(vecs, targets, 0.4, torch.Generator().manual_seed(0), spec,
                                permute=permute)
    assert ((lam >= 0) & (lam <= 1)).all()
    partner_t = (mixed_t - lam * targets) / (1 - lam)
    partner = partner_t.round().long()
    torch.testing.assert_close(partner_t, partner.float(), rtol=0, atol=1e-4)
    if not permute:
        expected = lam.view(-1, 1) * vecs + (1 - lam.view(-1, 1)) * vecs[partner]
        torch.testing.assert_close(mixed, expected)
