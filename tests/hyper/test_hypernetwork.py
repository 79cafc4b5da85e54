import pytest
import torch
from torch.func import functional_call

from weightspace.functional import batched_forward
from weightspace.graph import GraphSpec
from weightspace.hyper import HyperNetwork, check_conditions, mip_encoding
from weightspace.nets import MLP, SIREN, GroupNormCNN, SmallCNN

GAMMAS = torch.tensor([[0.05], [0.1], [0.25], [0.5], [1.0]])


def norms(h: HyperNetwork, base: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (h(GAMMAS) - base).norm(dim=1)


@pytest.mark.parametrize("chunk", [None, 50])
def test_mip_output_norm_does_not_scale_with_the_condition(chunk):
    torch.manual_seed(0)
    target = SmallCNN()
    mip = HyperNetwork(target, 1, mip=True, chunk=chunk)
    plain = HyperNetwork(target, 1, mip=False, chunk=chunk)
    n_mip, n_plain = norms(mip, 0), norms(plain, 0)
    # proportional: exactly linear in gamma at initialisation (ReLU trunk, zero biases)
    torch.testing.assert_close(n_plain / n_plain[-1], GAMMAS[:, 0], rtol=1e-4, atol=1e-6)
    assert float(n_mip.max() / n_mip.min()) < 1.5  # a 20x range of gamma barely moves it
    # the proportional one matches the target's own scale at gamma = 1; MIP starts next to
    # theta_0 (delta_init = 0.1 of it) for every gamma, not 20x smaller at 0.05
    own = GraphSpec.from_module(target).flatten(target)
    assert 0.8 < float(n_plain[-1] / own.norm()) < 1.25
    delta = norms(mip, own)
    assert float(delta.max() / delta.min()) < 2.0
    assert 0.05 < float(delta.mean() / own.norm()) < 0.2


def test_mip_encoding_has_constant_norm_and_runs_under_vmap():
    g = torch.rand(7, 3)
    e = mip_encoding(g)
    torch.testing.assert_close(e.norm(dim=1), torch.full((7,), 3**0.5))
    torch.testing.assert_close(torch.vmap(mip_encoding)(g), e)


def test_output_is_in_the_spec_layout_and_starts_from_the_target():
    torch.manual_seed(1)
    target = GroupNormCNN()  # 1-D norm parameters among the generated tensors
    h = HyperNetwork(target, 2, hidden=(16,))
    spec = GraphSpec.from_module(target)
    out = h(torch.rand(4, 2))
    assert out.shape == (4, spec.num_params)
    torch.testing.assert_close(h.theta0.detach(), spec.flatten(target))


def test_batched_equals_looped_and_gradients_flow_through_vmap():
    torch.manual_seed(2)
    target = MLP(64, [32, 32], 10)
    h = HyperNetwork(target, 1, hidden=(32,))
    x = torch.randn(16, 64)
    g = torch.rand(5, 1)
    flat = h(g)
    batched = batched_forward(target, flat, x)
    spec = GraphSpec.from_module(target)
    looped = torch.stack([functional_call(target, spec.params.unflatten(row), (x,))
                          for row in flat])
    torch.testing.assert_close(batched, looped, rtol=1e-5, atol=1e-6)
    batched.square().mean().backward()
    grads_batched = [p.grad.clone() for p in h.parameters()]
    h.zero_grad()
    looped = torch.stack([functional_call(target, spec.params.unflatten(row), (x,))
                          for row in h(g)])
    looped.square().mean().backward()
    assert all(gb.abs().sum() > 0 for gb in grads_batched)
    for gb, p in zip(grads_batched, h.parameters(), strict=True):
        torch.testing.assert_close(gb, p.grad, rtol=1e-4, atol=1e-7)


def test_only_chosen_modules_are_generated():
    torch.manual_seed(3)
    target = SmallCNN()
    h = HyperNetwork(target, 1, modules=["features.3", "head.bias"])
    assert h.generated == ["features.3.weight", "features.3.bias", "head.bias"]
    spec = GraphSpec.from_module(target)
    own = spec.flatten(target)
    with torch.no_grad():
        h.heads.linear.bias.add_(1.0)  # every generated entry moves by 1
        out = h(torch.rand(3, 1))
    moved = (out - own).abs() > 1e-3
    expected = torch.zeros(spec.num_params, dtype=torch.bool)
    for name in h.generated:
        s = spec.params.by_name[name]
        expected[s.offset : s.stop] = True
    assert torch.equal(moved.all(0), expected) and torch.equal(moved.any(0), expected)


def test_generated_modules_load_into_the_target_class_and_run():
    torch.manual_seed(4)
    target = SIREN()
    h = HyperNetwork(target, 10, hidden=(32,), chunk=64)
    nets = h.modules_for(torch.eye(10)[:3])
    coords = torch.rand(9, 2)
    assert len(nets) == 3 and all(type(n) is SIREN for n in nets)
    with torch.no_grad():
        flat = h(torch.eye(10)[:3])
        expected = batched_forward(target, flat, coords)
    for net, e in zip(nets, expected, strict=True):
        torch.testing.assert_close(net(coords), e, rtol=1e-4, atol=1e-4)  # w0 = 30 amplifies
    assert not torch.equal(nets[0](coords), nets[1](coords))


@pytest.mark.parametrize("bad, message", [
    (torch.tensor([[1.5]]), r"\[0, 1\]"),
    (torch.tensor([[-0.1]]), r"\[0, 1\]"),
    (torch.tensor([[0.2, 0.3]]), r"1 value\(s\) each"),
    (torch.tensor([[float("nan")]]), "NaN"),
    (torch.zeros(0, 1), "no conditions"),
])
def test_bad_conditions_are_refused_with_a_clear_message(bad, message):
    h = HyperNetwork(MLP(4, [8], 2), 1, hidden=(8,))
    with pytest.raises(ValueError, match=message):
        h(bad)


def test_condition_shapes_accepted():
    assert check_conditions(0.5, 1).shape == (1, 1)
    assert check_conditions(torch.rand(6), 1).shape == (6, 1)
    assert check_conditions(torch.rand(3), 3).shape == (1, 3)
    with pytest.raises(ValueError, match="3 value"):
        check_conditions(torch.rand(4), 3)


def test_unknown_module_names_are_refused():
    with pytest.raises(KeyError, match="'features.9'.*modules with parameters"):
        HyperNetwork(SmallCNN(), 1, modules=["features.9"])
    with pytest.raises(ValueError, match="no parameters"):
        HyperNetwork(SmallCNN(), 1, modules=["pool"])


def test_follows_the_device_and_keeps_state():
    h = HyperNetwork(MLP(4, [8], 2), 1, hidden=(8,))
    h2 = HyperNetwork(MLP(4, [8], 2), 1, hidden=(8,))
    h2.load_state_dict(h.state_dict())
    g = torch.rand(3, 1)
    torch.testing.assert_close(h(g), h2(g))
    if torch.cuda.is_available():
        hc = h.to("cuda")
        assert hc.target[0].weight.is_cuda
        torch.testing.assert_close(hc(g).cpu(), h2(g))


def test_generated_copies_keep_the_targets_module_versions():
    from tests.conftest import Versioned

    target = Versioned(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    nets = HyperNetwork(target, 1, hidden=(8,)).modules_for(torch.tensor([[0.0], [1.0]]))
    assert len(nets) == 2 and all(isinstance(n, Versioned) for n in nets)
