"""Concatenation along the feature axis (DenseNet, Inception, SqueezeNet's Fire, U-Net skips,
with transposed convolutions and upsampling): read exactly, each part keeping its own
permutation, function kept under the symmetries."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import weightspace as ws
from weightspace.errors import UnsupportedModuleError
from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function


class DenseLayer(nn.Module):
    """torchvision's dense layer: BN-ReLU-Conv1x1-BN-ReLU-Conv3x3 on all earlier features."""

    def __init__(self, c_in, growth):
        super().__init__()
        self.norm1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, 2 * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(2 * growth)
        self.conv2 = nn.Conv2d(2 * growth, growth, 3, padding=1, bias=False)

    def forward(self, features):
        x = torch.cat(features, 1)
        x = self.conv1(F.relu(self.norm1(x)))
        return self.conv2(F.relu(self.norm2(x)))


class DenseNet(nn.Module):
    def __init__(self, growth=4, layers=3):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.block = nn.ModuleList(DenseLayer(8 + i * growth, growth) for i in range(layers))
        c = 8 + layers * growth
        self.transition = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, 8, 1),
                                        nn.AvgPool2d(2))
        self.norm = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        features = [self.stem(x)]
        for layer in self.block:
            features.append(layer(features))
        x = self.transition(torch.cat(features, 1))
        x = F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1)
        return self.fc(torch.flatten(x, 1))


class Fire(nn.Module):
    def __init__(self, c_in, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)


class SqueezeNet(nn.Module):
    """Fire modules, and a classifier that flattens a concatenated map into a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2)
        self.fire1, self.fire2 = Fire(8, 4, 6), Fire(12, 4, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(10 * 3 * 3, 4)

    def forward(self, x):
        x = self.fire2(self.pool(self.fire1(F.relu(self.stem(x)))))
        return self.fc(F.adaptive_avg_pool2d(x, 3).flatten(1))


class Inception(nn.Module):
    """Four branches, one of them a max-pool, side by side."""

    def __init__(self, c_in=6):
        super().__init__()
        self.b1 = nn.Conv2d(c_in, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c_in, 3, 1), nn.ReLU(), nn.Conv2d(3, 5, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c_in, 2, 1), nn.ReLU(), nn.Conv2d(2, 3, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(c_in, 2, 1))
        self.stem = nn.Conv2d(3, c_in, 3, padding=1)
        self.head = nn.Conv2d(14, 3, 1)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)
        return self.head(F.relu(x)).mean((2, 3))


class UNet(nn.Module):
    """Two levels: a transposed convolution up one way, upsampling the other, skips
    concatenated, and a transposed convolution reading a concatenation."""

    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.enc2 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.bottom = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(6, 8, 3, padding=1), nn.ReLU())
        self.up2 = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.dec2 = nn.Conv2d(12, 6, 3, padding=1)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear")
        self.dec1 = nn.ConvTranspose2d(10, 5, 3, padding=1)
        self.out = nn.Conv2d(5, 2, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        d2 = F.relu(self.dec2(torch.cat([self.up2(self.bottom(e2)), e2], 1)))
        d1 = F.relu(self.dec1(torch.cat([e1, self.up1(d2)], 1)))
        return self.out(d1)


IMAGE = torch.zeros(2, 3, 8, 8)


@pytest.mark.parametrize("make", [DenseNet, SqueezeNet, Inception, UNet],
                         ids=["densenet", "fire", "inception", "unet"])
def test_concatenations_round_trip_and_keep_their_symmetries(make):
    torch.manual_seed(0)
    model = make().eval()
    for m in model.modules():  # running statistics that are not the defaults
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    assert_round_trip(model, IMAGE)
    assert_symmetries_preserve_function(model, IMAGE)


def test_every_part_of_a_concatenation_moves_on_its_own():
    model = DenseNet()
    spec = ws.GraphSpec.from_module(model, IMAGE)
    names = {s.name: i for i, s in enumerate(spec.blueprint.sets)}
    groups = {names[n]: g for g in spec.permutation_groups for n in names if names[n] in g.sets}
    stem, layer0, layer1 = (groups[names[n]] for n in ("stem", "block.0.conv2",
                                                        "block.1.conv2"))
    assert len({id(stem), id(layer0), id(layer1)}) == 3  # three independent groups
    # each later layer's norm splits into one set per part, tied to that part
    assert {"block.2.norm1.0", "block.2.norm1.8", "block.2.norm1.12"} <= set(names)
    assert names["block.2.norm1.8"] in layer0.sets
    # the transition conv reads all 20 channels: one edge per channel pair, from the parts
    conv = names["transition.2"]
    into = spec.edge_index[1] >= spec.set_offset[conv]
    into &= spec.edge_index[1] < spec.set_offset[conv] + 8
    assert int(into.sum()) == 20 * 8


def test_a_concatenation_read_by_a_grouped_conv_is_refused():
    class Grouped(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(3, 4, 1)
            self.c = nn.Conv2d(8, 8, 3, groups=2)

        def forward(self, x):
            return self.c(torch.cat([self.a(x), self.b(x)], 1))

    with pytest.raises(UnsupportedModuleError, match="with groups reads a concatenation"):
        ws.GraphSpec.from_module(Grouped(), IMAGE)


def test_transposed_convolutions_carry_their_kernels_from_input_to_output():
    model = UNet()
    graph = ws.to_graph(model, IMAGE)
    from weightspace.graph.vocab import EdgeType

    up = graph.edge_type == int(EdgeType.CONV_TRANSPOSE)
    assert int(up.sum()) == 8 * 6 + 10 * 5  # one edge per (input, output) channel pair
    spec = ws.GraphSpec.from_module(model, IMAGE)
    names = [s.name for s in spec.blueprint.sets]
    first = up.nonzero()[0, 0]  # W[0, 0] of up2: from the bottom conv's channel 0 to up2's 0
    assert int(graph.edge_index[0, first]) == spec.set_offset[names.index("bottom.1")]
    assert int(graph.edge_index[1, first]) == spec.set_offset[names.index("up2")]
    assert torch.equal(graph.edge_attr[first].view(3, 3)[:2, :2], model.up2.weight[0, 0])


def test_node_values_of_a_norm_over_a_concatenation_are_its_slices():
    from weightspace.graph.node_values import NodeValues

    torch.manual_seed(0)
    model = DenseNet().eval()
    x = torch.randn(3, 3, 8, 8)
    values = NodeValues(model, IMAGE)(x)
    spec = ws.GraphSpec.from_module(model, IMAGE)
    names = [s.name for s in spec.blueprint.sets]
    hidden = [i for i, s in enumerate(spec.blueprint.sets) if s.role == "hidden"]
    assert set(hidden) <= set(values)  # every hidden set has its values, parts included
    with torch.no_grad():  # layer 2's first norm over stem (8) + layer 0 (4) + layer 1 (4)
        stem = model.stem(x)
        f0 = model.block[0]([stem])
        f1 = model.block[1]([stem, f0])
        normed = model.block[2].norm1(torch.cat([stem, f0, f1], 1))
    # a set's values are its last tensor's: after the activation recorded on it
    part = F.relu(normed)[:, 8:12].permute(0, 2, 3, 1).reshape(-1, 4)
    torch.testing.assert_close(values[names.index("block.2.norm1.8")], part)


def test_a_tensor_concatenated_with_itself_is_refused():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 1), nn.Conv2d(8, 2, 1)

        def forward(self, x):
            h = self.a(x)
            return self.b(torch.cat([h, h], 1))

    with pytest.raises(UnsupportedModuleError, match="concatenates a feature tensor with itself"):
        ws.GraphSpec.from_module(Twice(), IMAGE)
