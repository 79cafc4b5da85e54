"""The latent diffusion model learns a distribution and follows its condition; the weight
diffusion model decodes in the frame it was fitted to."""

from __future__ import annotations

import pytest
import torch

import weightspace as ws
from tests.conftest import build
from weightspace.nn.baselines import FlatMLP
from weightspace.nn.generative import LatentDiffusion, WeightDiffusion
from weightspace.nn.generative.diffusion import cosine_alpha_bar


def test_the_schedule_falls_from_one_to_almost_nothing():
    abar = cosine_alpha_bar(1000)
    assert abar[0] > 0.999 and abar[-1] < 1e-3
    assert torch.all(abar[1:] <= abar[:-1])


def two_clusters(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points near (+3, 0) (condition 1) and (-3, 0) (condition 0)."""
    c = (torch.rand(n, generator=g) < 0.5).float()
    z = torch.randn(n, 2, generator=g) * 0.1
    z[:, 0] += 6 * c - 3
    return z, c


def test_conditioned_samples_land_in_the_asked_cluster():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = LatentDiffusion(2, hidden=64, depth=2, timesteps=200, conditioned=True)
    opt = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(1500):
        z, c = two_clusters(128, g)
        loss = model.loss(z, c, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    right = model.sample(200, torch.ones(200), steps=50, generator=g)
    left = model.sample(200, 0.0, steps=50, generator=g)
    assert (right[:, 0] > 1.5).float().mean() > 0.9
    assert (left[:, 0] < -1.5).float().mean() > 0.9
    free = model.sample(400, None, steps=50, generator=g)  # no condition: both clusters
    assert 0.25 < (free[:, 0] > 0).float().mean() < 0.75
    first = model.sample(5, 1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, model.sample(5, 1.0, generator=torch.Generator().manual_seed(3)))


def test_bad_use_is_refused():
    plain = LatentDiffusion(4, hidden=16, depth=1, timesteps=10)
    with pytest.raises(ValueError, match="without a condition"):
        plain.sample(2, 0.5)
    with pytest.raises(ValueError, match="steps"):
        plain.sample(2, steps=11)
    spec = ws.GraphSpec.from_module(build("mlp"))
    with pytest.raises(ValueError, match="latent"):
        WeightDiffusion(spec, FlatMLP(spec.num_params, 16, 2, 8), 8, 16, plain)
    bn = ws.GraphSpec.from_module(build("resnet_blocks"))
    with pytest.raises(ValueError, match="buffers"):
        WeightDiffusion(bn, FlatMLP(bn.num_params, 16, 2, 4), 4, 16, plain)


class _Encoder(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, vecs, buffers=None, arch=0):
        return self.net(vecs)


def test_samples_are_decoded_in_the_fitted_frame():
    spec = ws.GraphSpec.from_module(build("mlp"))
    rows = torch.randn(32, spec.num_params) * 0.3 + 1.0
    model = WeightDiffusion(spec, _Encoder(FlatMLP(spec.num_params, 16, 2, 4)), 4, [16],
                            LatentDiffusion(4, 16, 1, 20))
    model.fit_frame(rows, rows[0])
    assert torch.allclose(model.mean, rows.mean(0)) and torch.equal(model.reference, rows[0])
    torch.nn.init.zeros_(model.decoder[-1].weight)
    torch.nn.init.zeros_(model.decoder[-1].bias)
    samples = model.sample(3, steps=5)  # a decoder that outputs 0 gives the frame's mean
    assert samples.shape == (3, spec.num_params)
    assert torch.allclose(samples, model.mean.expand(3, -1))
    rec, dif = model.losses(rows, rows)
    assert rec.item() == pytest.approx(((rows - model.mean) / model.std).pow(2).mean().item(),
                                       rel=1e-5)
    assert dif.item() > 0
