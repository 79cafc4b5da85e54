"""The diagonal Fisher equals its definition computed one example at a time, and Fisher
merging weighs each network by it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import weightspace as ws
from tests.conftest import build
from weightspace.alignment.fisher import diagonal_fisher


def test_diagonal_fisher_is_the_mean_squared_score_of_sampled_labels():
    model = build("mlp_tanh")
    spec = ws.GraphSpec.from_module(model)
    x = torch.randn(20, 5)
    fisher = diagonal_fisher(model, x, spec, batch_size=len(x), seed=3)
    # the same labels: one draw from the model's prediction per input, same generator
    with torch.no_grad():
        y = torch.multinomial(model(x).softmax(-1), 1,
                              generator=torch.Generator().manual_seed(3))[:, 0]
    expected = torch.zeros(spec.num_params, dtype=torch.float64)
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        F.log_softmax(model(xi[None]), -1)[0, yi].backward()
        grads = {n: p.grad for n, p in model.named_parameters()}
        expected += spec.params.flatten(grads, torch.float64).square()
    torch.testing.assert_close(fisher, expected / len(x))


def test_regression_outputs_use_a_gaussian_likelihood():
    model = build("siren")  # one output: not class logits
    fisher = diagonal_fisher(model, torch.rand(16, 2) * 2 - 1)
    assert fisher.shape == (ws.GraphSpec.from_module(model).num_params,)
    assert torch.all(fisher >= 0) and fisher.sum() > 0


def test_fisher_merge_weighs_networks_by_their_fisher():
    a, b = build("mlp_tanh", 0), build("mlp_tanh", 1)
    spec = ws.GraphSpec.from_module(a)
    x = torch.randn(32, 5)
    only_a = ws.merge([a, b], method="fisher", weights=[1.0, 0.0], align=False, data=x)
    torch.testing.assert_close(spec.flatten(only_a), spec.flatten(a))
    merged = ws.merge([a, b], method="fisher", align=False, data=x)
    fa, fb = diagonal_fisher(a, x, spec), diagonal_fisher(b, x, spec)
    fa, fb = fa.clamp(min=1e-6), fb.clamp(min=1e-6)
    expected = (fa * spec.flatten(a).double() + fb * spec.flatten(b).double()) / (fa + fb)
    torch.testing.assert_close(spec.flatten(merged), expected.float())
    with pytest.raises(ValueError, match="needs data"):
        ws.merge([a, b], method="fisher")
