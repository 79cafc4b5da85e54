"""``batched_forward``: B weight sets at once equal B separate forwards."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from tests.conftest import build, sample_inputs
from weightspace import GraphSpec, SpecMismatchError, nets
from weightspace.functional import batched_forward

B = 4


def weight_sets(name: str, n: int = B) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A model of architecture ``name`` and ``n`` random (parameter, buffer) rows of it."""
    model = build(name)
    spec = GraphSpec.from_module(model)
    others = [build(name, seed) for seed in range(1, n + 1)]
    return (model, torch.stack([spec.flatten(m) for m in others]),
            torch.stack([spec.flatten_buffers(m) for m in others]))


def looped(model: nn.Module, vecs, bufs, x, train=False):
    spec = GraphSpec.from_module(model)
    out = []
    for v, u in zip(vecs, bufs, strict=True):
        m = copy.deepcopy(model)
        m.load_state_dict(spec.unflatten(v, u))
        m.train(train)
        out.append(m(x))
    return torch.stack(out)


@pytest.mark.parametrize("name", ["mlp", "siren", "small_cnn", "resnet_blocks", "tiny_vit"])
def test_batched_equals_looped(name):
    model, vecs, bufs = weight_sets(name)
    (x,) = sample_inputs(model, batch=5)
    expected = looped(model, vecs, bufs, x)
    got = batched_forward(model, vecs, x, buffers=bufs if bufs.shape[1] else None)
    # sin(30 x) of weights of std 0.5 turns float32 rounding of a differently ordered sum
    # into ~1e-4 at the output; every other architecture agrees to 1e-5
    tol = 1e-3 if name == "siren" else 1e-5
    torch.testing.assert_close(got, expected, rtol=tol, atol=tol)
    # a dict of [B, *shape] tensors gives the same, and so does running two sets at a time
    spec = GraphSpec.from_module(model)
    as_dict = {s.name: vecs[:, s.offset : s.stop].view(B, *s.shape) for s in spec.params.slots}
    torch.testing.assert_close(
        batched_forward(model, as_dict, x, buffers=bufs if bufs.shape[1] else None,
                        chunk_size=2), expected, rtol=tol, atol=tol)


def test_per_set_inputs_and_missing_names_fall_back():
    model, vecs, _ = weight_sets("mlp")
    spec = GraphSpec.from_module(model)
    x = torch.randn(B, 3, 5)
    out = batched_forward(model, vecs, x, x_batched=True)
    for b in range(B):
        m = copy.deepcopy(model)
        m.load_state_dict(spec.unflatten(vecs[b]))
        torch.testing.assert_close(out[b], m(x[b]))
    # only the first layer's weight varies; everything else is the module's own
    name = spec.params.slots[0].name
    s = spec.params.slots[0]
    w = vecs[:, s.offset : s.stop].view(B, *s.shape)
    out = batched_forward(model, {name: w}, x[0])
    for b in range(B):
        m = copy.deepcopy(model)
        m.get_parameter(name).data.copy_(w[b])
        torch.testing.assert_close(out[b], m(x[0]))


def test_gradients_flow_through_vmap():
    model, vecs, _ = weight_sets("small_cnn")
    (x,) = sample_inputs(model, batch=3)
    leaf = vecs.clone().requires_grad_(True)
    batched_forward(model, leaf, x).square().sum().backward()
    spec = GraphSpec.from_module(model)
    for b in range(B):
        m = copy.deepcopy(model)
        m.load_state_dict(spec.unflatten(vecs[b]))
        m(x).square().sum().backward()
        grad = torch.cat([p.grad.reshape(-1) for p in m.parameters()])
        # the batched (grouped) convolution sums in another order: agreement to float32 noise
        torch.testing.assert_close(leaf.grad[b], grad, rtol=1e-3, atol=1e-4)


def test_train_mode_batch_norm_uses_batch_statistics_and_writes_nothing():
    model, vecs, bufs = weight_sets("resnet_blocks")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    (x,) = sample_inputs(model, batch=6)
    got = batched_forward(model, vecs, x, buffers=bufs, train=True)
    spec = GraphSpec.from_module(model)
    for b in range(B):
        m = copy.deepcopy(model)
        m.load_state_dict(spec.unflatten(vecs[b], bufs[b]))
        torch.testing.assert_close(got[b], m.train()(x), rtol=1e-4, atol=1e-5)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.training  # the mode it had is restored


def test_dropout_randomness():
    model = nets.SmallCNN(1, 16, 10, dropout=0.5).eval()
    spec = GraphSpec.from_module(model)
    vecs = spec.flatten(model).expand(B, -1)
    (x,) = sample_inputs(model)
    with pytest.raises(RuntimeError, match="randomness"):
        batched_forward(model, vecs, x, train=True)
    out = batched_forward(model, vecs, x, train=True, randomness="different")
    assert not torch.allclose(out[0], out[1])  # each weight set draws its own mask
    same = batched_forward(model, vecs, x, train=True, randomness="same")
    torch.testing.assert_close(same[0], same[1])
    ev = batched_forward(model, vecs, x)  # eval mode: no dropout, every row equal
    torch.testing.assert_close(ev[0], ev[3])


def test_bad_input_is_named():
    model, vecs, _ = weight_sets("mlp")
    x = torch.randn(2, 5)
    with pytest.raises(KeyError, match="'layers.9.weight'"):
        batched_forward(model, {"layers.9.weight": torch.zeros(B, 3, 3)}, x)
    with pytest.raises(SpecMismatchError, match="entries per row"):
        batched_forward(model, vecs[:, :-1], x)
    name = GraphSpec.from_module(model).params.slots[0].name
    with pytest.raises(SpecMismatchError, match=name):
        batched_forward(model, {name: torch.zeros(B, 2, 2)}, x)
    bad = vecs.clone()
    bad[1, 0] = float("nan")
    with pytest.raises(ValueError, match=f"{name}.*NaN"):
        batched_forward(model, bad, x)
    inf = vecs.clone()
    inf[0, -1] = -float("inf")
    with pytest.raises(ValueError, match=GraphSpec.from_module(model).params.slots[-1].name):
        batched_forward(model, inf, x)
    # huge but finite weights overflow the quick summed check; the exact check lets them pass
    huge = torch.full_like(vecs, 3e38)
    assert batched_forward(model, huge, x).shape[0] == B
    with pytest.raises(TypeError):
        batched_forward(model, [vecs], x)
