"""Channel groups read off the spec: exact norms, permutation equivariance, and what they mean
for pruning (a dead group is the first thing group-L2 pruning removes)."""

import pytest
import torch
from torch import nn

import weightspace as ws
from weightspace.graph.symmetry import sample_symmetries
from weightspace.nets import ResNet
from weightspace.pruning import ChannelGroups

X = torch.zeros(2, 1, 8, 8)


def conv_bn_conv():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 3),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 2))


def test_group_norms_are_every_weight_a_channel_takes_with_it():
    net = conv_bn_conv()
    nn.init.normal_(net[1].weight), nn.init.normal_(net[1].bias)
    spec = ws.GraphSpec.from_module(net, (X,))
    groups = ChannelGroups(spec)
    assert groups.num_groups == 4 + 3  # hidden channels; inputs and the 2 outputs form none
    norms = groups.norms(spec.flatten(net))
    w0, b0, g, beta, w3, b3, w7 = (p.detach() for p in (
        net[0].weight, net[0].bias, net[1].weight, net[1].bias, net[3].weight, net[3].bias,
        net[7].weight))
    for k in range(4):  # filter, bias, BatchNorm scale and shift, the next layer's inputs
        expected = torch.cat([w0[k].flatten(), b0[k : k + 1], g[k : k + 1], beta[k : k + 1],
                              w3[:, k].flatten()]).norm()
        torch.testing.assert_close(norms[k], expected)
    for k in range(3):
        expected = torch.cat([w3[k].flatten(), b3[k : k + 1], w7[:, k]]).norm()
        torch.testing.assert_close(norms[4 + k], expected)
    torch.testing.assert_close(groups.lasso(spec.flatten(net)), norms.sum())


def test_residual_channels_form_one_group_across_the_add():
    net = ResNet((1, 1), (8, 16), 1, 10, 8)
    spec = ws.GraphSpec.from_module(net)
    groups = ChannelGroups(spec)
    hidden = [g for g in spec.permutation_groups if not g.fixed]
    assert groups.num_groups == sum(g.size for g in hidden) == 8 + 8 + 16 + 16
    # every parameter except the head's bias belongs to some group
    assert set(groups.param_index.tolist()) == set(range(spec.num_params)) - {
        spec.params.slots[-1].offset + i for i in range(10)}


def test_norms_are_permutation_equivariant():
    net = ResNet((1, 1), (8, 16), 1, 10, 8)
    spec = ws.GraphSpec.from_module(net)
    groups = ChannelGroups(spec)
    vecs = torch.randn(6, spec.num_params, dtype=torch.float64)
    t = sample_symmetries(spec, 6, torch.Generator().manual_seed(0), sign=False, scale=False)
    before, after = groups.norms(vecs), groups.norms(t(vecs))
    # the same multiset of norms, in a new order that is not the old one
    torch.testing.assert_close(before.sort(-1).values, after.sort(-1).values)
    assert not torch.allclose(before, after)


def test_a_dead_channel_group_is_pruned_first():
    net = conv_bn_conv().eval()
    with torch.no_grad():
        net[0].weight[2] = 0
        net[0].bias[2] = 0
        net[1].weight[2] = 0
        net[1].bias[2] = 0
        net[3].weight[:, 2] = 0
    spec = ws.GraphSpec.from_module(net, (X,))
    assert ChannelGroups(spec).norms(spec.flatten(net))[2] == pytest.approx(0, abs=1e-9)
    pruned, report = ws.prune(net, X, 1.05)
    assert report.widths_after["0"] == 3
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(pruned(x), net(x))  # the dead channel carried nothing


def test_keep_mask_switches_off_the_lowest_ranked_channels():
    net = conv_bn_conv()
    nn.init.normal_(net[1].weight), nn.init.normal_(net[1].bias)
    spec = ws.GraphSpec.from_module(net, (X,))
    groups = ChannelGroups(spec)
    vecs = torch.stack([spec.flatten(net), spec.flatten(net).flip(0)])
    imp = groups.relative_importance(vecs)
    for layer in range(groups.num_layers):  # squared norms over their layer's mean
        torch.testing.assert_close(imp[:, groups.layer_index == layer].mean(1),
                                   torch.ones(2, dtype=imp.dtype))
    mask = groups.keep_mask(vecs, 2 / 7)
    for b in range(2):
        off = imp[b].topk(2, largest=False).indices
        in_off = torch.isin(groups.group_index, off)
        dropped = set(groups.param_index[in_off].tolist())
        assert set(torch.nonzero(mask[b] == 0).flatten().tolist()) == dropped
    assert torch.equal(groups.keep_mask(vecs, 0.0), torch.ones_like(vecs))
