"""The direct path for stacks of dense layers gives what ``vmap(functional_call)`` gives."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.conftest import randomize
from weightspace import GraphSpec, nets
from weightspace.functional import batched_forward, batched_sequential

B = 5


def through_vmap(monkeypatch, *args, **kwargs):
    """``batched_forward`` with the direct path switched off."""
    with monkeypatch.context() as m:
        m.setattr(batched_sequential, "plan", lambda module, train: None)
        return batched_forward(*args, **kwargs)


STACKS = {
    "mlp": (lambda: nets.MLP(5, [16, 12], 3, activation="relu"), (7, 5)),
    "mlp_layernorm": (lambda: nets.MLP(6, [16, 16], 4, activation="gelu", layer_norm=True),
                      (3, 2, 6)),
    "flatten_images": (lambda: nn.Sequential(nn.Flatten(), nets.MLP(16, [8], 4)), (3, 1, 4, 4)),
    "no_bias_plain_norm": (lambda: nn.Sequential(
        nn.Linear(4, 6, bias=False), nn.LayerNorm(6, elementwise_affine=False), nn.Tanh(),
        nn.Dropout(0.3), nn.Linear(6, 2)), (4, 4)),
    "norm_before_weights": (lambda: nn.Sequential(
        nn.Flatten(0, -1), nn.LayerNorm(12), nn.SiLU(), nn.Linear(12, 3)), (3, 4)),
}


@pytest.mark.parametrize("name", list(STACKS))
def test_direct_path_equals_vmap(name, monkeypatch):
    make, shape = STACKS[name]
    model = randomize(make())
    assert batched_sequential.plan(model, train=False) is not None
    spec = GraphSpec.from_module(model)
    g = torch.Generator().manual_seed(1)
    vecs = torch.randn(B, spec.num_params, generator=g)
    x = torch.randn(shape, generator=g)
    leaf = vecs.clone().requires_grad_(True)
    got = batched_forward(model, leaf, x)
    expected_leaf = vecs.clone().requires_grad_(True)
    expected = through_vmap(monkeypatch, model, expected_leaf, x)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    # gradients reach the flat matrix the same way (summed in another order: float32 noise)
    got.square().sum().backward()
    expected.square().sum().backward()
    torch.testing.assert_close(leaf.grad, expected_leaf.grad, rtol=1e-3, atol=1e-4)
    # per-set inputs, chunks, and names left to the module's own tensors
    xb = torch.randn(B, *shape, generator=g)
    torch.testing.assert_close(batched_forward(model, vecs, xb, x_batched=True, chunk_size=2),
                               through_vmap(monkeypatch, model, vecs, xb, x_batched=True),
                               rtol=1e-5, atol=1e-5)
    first = spec.params.slots[0]
    some = {first.name: vecs[:, first.offset : first.stop].view(B, *first.shape)}
    torch.testing.assert_close(batched_forward(model, some, x),
                               through_vmap(monkeypatch, model, some, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(STACKS))
def test_rows_layout_equals_columns(name):
    """The layout taken for chunks of many inputs computes the same values and gradients."""
    make, shape = STACKS[name]
    model = randomize(make())
    layers = batched_sequential.plan(model, train=False)
    spec = GraphSpec.from_module(model)
    g = torch.Generator().manual_seed(2)
    vecs = torch.randn(B, spec.num_params, generator=g)
    x = torch.randn(shape, generator=g)
    outs, grads = [], []
    for columns, chunk in ((True, None), (False, None), (False, 2)):
        leaf = vecs.clone().requires_grad_(True)
        p = dict(zip([s.name for s in spec.params.slots],
                     [t.view(B, *s.shape) for s, t in zip(
                         spec.params.slots, leaf.split([s.numel for s in spec.params.slots], 1),
                         strict=True)], strict=True))
        out = batched_sequential.run(layers, p, x, False, chunk, columns)
        out.square().sum().backward()
        outs.append(out.detach())
        grads.append(leaf.grad)
    for out, grad in zip(outs[1:], grads[1:], strict=True):
        torch.testing.assert_close(out, outs[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grad, grads[0], rtol=1e-4, atol=1e-5)


def test_auto_chunks_fit_the_cache(monkeypatch):
    model = nets.MLP(2, [64, 64], 1)
    layers = batched_sequential.plan(model, train=False)
    monkeypatch.setattr(batched_sequential, "CACHE_BYTES", 2**20)
    # one weight set's widest activation: n inputs x 64 features x 4 bytes
    assert batched_sequential.auto_chunk(layers, torch.zeros(64, 2), False, 64) == (None, True)
    assert batched_sequential.auto_chunk(layers, torch.zeros(64, 2), False, 256) == (64, True)
    assert batched_sequential.auto_chunk(layers, torch.zeros(1024, 2), False, 64) == (4, False)
    assert batched_sequential.auto_chunk(layers, torch.zeros(8192, 2), False, 64) == (1, False)
    assert batched_sequential.auto_chunk(layers, torch.zeros(5, 1024, 2), True, 5) == (4, False)
    spec = GraphSpec.from_module(model)
    vecs = torch.randn(6, spec.num_params)
    x = torch.randn(2048, 2)
    torch.testing.assert_close(batched_forward(model, vecs, x),
                               batched_forward(model, vecs, x, chunk_size=None),
                               rtol=1e-4, atol=1e-4)  # products summed in another order
    with pytest.raises(ValueError, match="chunk_size"):
        batched_forward(model, vecs, x, chunk_size=0)


def test_other_modules_take_the_vmap_path():
    assert batched_sequential.plan(nets.SIREN(), train=False) is None  # its own forward
    assert batched_sequential.plan(nets.SmallCNN(), train=False) is None  # not a Sequential
    with_conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 1))
    assert batched_sequential.plan(with_conv, train=False) is None
    with_norm = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))  # buffers
    assert batched_sequential.plan(with_norm, train=False) is None
    softmax = nn.Sequential(nn.Linear(3, 4), nn.Softmax(-1))  # not elementwise
    assert batched_sequential.plan(softmax, train=False) is None
    dropout = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5))
    assert batched_sequential.plan(dropout, train=False) is not None  # the identity in eval
    assert batched_sequential.plan(dropout, train=True) is None  # masks to draw: vmap's job


def test_train_mode_dropout_still_draws_masks():
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    vecs = GraphSpec.from_module(model).flatten(model).expand(B, -1)
    x = torch.randn(4, 3)
    out = batched_forward(model, vecs, x, train=True, randomness="different")
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(batched_forward(model, vecs, x)[0], model.eval()(x))


def test_hooks_still_see_every_call():
    model = nets.MLP(5, [16, 12], 3)
    seen = []
    handle = model[0].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    assert batched_sequential.plan(model, train=False) is None
    vecs = GraphSpec.from_module(model).flatten(model).expand(B, -1)
    batched_forward(model, vecs, torch.randn(2, 5))
    assert seen == [torch.Size([2, 16])]  # per weight set, inside the vmap
    handle.remove()
    assert batched_sequential.plan(model, train=False) is not None
