import pytest
import torch

import weightspace as ws
from weightspace.graph import GraphSpec, from_graph, to_graph
from weightspace.hyper import hypernetize
from weightspace.nets import GroupNormCNN, SmallCNN


def test_batched_call_equals_one_condition_at_a_time():
    torch.manual_seed(0)
    hm = hypernetize(SmallCNN(), modules=["features.0", "head"], cond_dim=1, hidden=(16,))
    x = torch.randn(6, 1, 8, 8)
    g = torch.tensor([[0.0], [0.3], [1.0]])
    batched = hm(x, g)
    assert batched.shape == (3, 6, 10)
    for b in range(3):
        with hm.using(g[b]) as model:
            torch.testing.assert_close(model(x), batched[b], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(batched[0], batched[2])


def test_gradients_reach_the_hypernetwork_and_the_other_parameters():
    torch.manual_seed(1)
    hm = hypernetize(SmallCNN(), modules=["features.3"], cond_dim=1, hidden=(16,))
    hm(torch.randn(4, 1, 8, 8), torch.rand(5, 1)).square().mean().backward()
    assert hm.hypernet.theta0.grad.abs().sum() > 0
    assert hm.model.head.weight.grad.abs().sum() > 0  # not generated: trained as usual
    assert hm.model.features[3].weight.grad is None  # generated: the template is frozen
    trainable = {n for n, p in hm.named_parameters() if p.requires_grad}
    assert "model.features.3.weight" not in trainable and "model.head.weight" in trainable


def test_using_restores_the_module_even_when_the_block_raises():
    # the GroupNorms: 1-D parameters
    hm = hypernetize(GroupNormCNN(), modules=["net.1", "net.4"], cond_dim=1, hidden=(8,))
    originals = {n: p for n, p in hm.model.named_parameters()}
    order = list(originals)
    with pytest.raises(RuntimeError, match="inside"):
        with hm.using(0.5) as model:
            assert not isinstance(model.net[1].weight, torch.nn.Parameter)
            raise RuntimeError("inside the block")
    after = dict(hm.model.named_parameters())
    assert list(after) == order  # same names, same order (the flat layout follows it)
    assert all(after[n] is originals[n] for n in order)


def test_using_takes_one_condition_and_a_generated_network_still_converts():
    torch.manual_seed(2)
    hm = hypernetize(SmallCNN(), modules=["features.6"], cond_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="one condition"):
        with hm.using(torch.rand(2, 2)):
            pass
    net = hm.hypernet.modules_for(torch.tensor([0.2, 0.9]))[0]
    back = from_graph(to_graph(net), SmallCNN())
    x = torch.randn(3, 1, 8, 8)
    torch.testing.assert_close(back(x), net(x))


def test_unknown_modules_are_named():
    with pytest.raises(KeyError, match="'classifier'"):
        hypernetize(SmallCNN(), modules=["classifier"])


def test_generate_from_a_hypermodule_gives_its_networks():
    torch.manual_seed(3)
    hm = hypernetize(SmallCNN(), modules=["features.3", "head.bias"], cond_dim=1, hidden=(8,))
    g = torch.tensor([[0.1], [0.8]])
    x = torch.randn(4, 1, 8, 8)
    nets = ws.generate(hm, g)
    with torch.no_grad():
        expected = hm(x, g)
    for net, e in zip(nets, expected, strict=True):
        assert type(net) is SmallCNN and net is not hm.model
        torch.testing.assert_close(net(x), e, rtol=1e-5, atol=1e-6)
    flat = ws.generate(hm, g, as_params=True)
    spec = GraphSpec.from_module(nets[1])
    torch.testing.assert_close(flat[1], spec.flatten(nets[1]))
