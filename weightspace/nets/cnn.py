"""Small convolutional networks: the Small CNN Zoo network and its relatives."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """The Small CNN Zoo network (Unterthiner et al. 2020), on images or on sequences.

    Three convolutions of ``channels`` channels with stride 2 (``kernel`` wide, 3 by
    default), each followed by the activation, global average pooling, and a dense layer to
    ``classes`` outputs. ``dims=1`` makes it a 1-D CNN on sequences (e.g. MNIST-1D).

    Args:
        in_channels: channels of the inputs.
        channels: channels of each convolution.
        classes: outputs.
        activation: the activation module class.
        dropout: dropout after each activation.
        image_size: the side of the square input images (the length of the sequences).
        dims: 2 for images, 1 for sequences.
        kernel: the width of each kernel (odd).
    """

    def __init__(self, in_channels: int = 1, channels: int = 16, classes: int = 10,
                 activation: type[nn.Module] = nn.ReLU, dropout: float = 0.0,
                 image_size: int = 8, dims: int = 2, kernel: int = 3):
        super().__init__()
        if dims not in (1, 2) or kernel % 2 == 0:
            raise ValueError(f"SmallCNN takes dims 1 or 2 and an odd kernel, got {dims}, "
                             f"{kernel}")
        conv = nn.Conv1d if dims == 1 else nn.Conv2d
        layers, width = [], in_channels
        for _ in range(3):
            # Dropout is always there (rate 0 is the identity), so that parameter names do not
            # depend on the rate and every network of a zoo shares one layout.
            layers += [conv(width, channels, kernel, stride=2, padding=kernel // 2),
                       activation(), nn.Dropout(dropout)]
            width = channels
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(channels, classes)
        self.in_channels, self.image_size, self.dims = in_channels, image_size, dims

    def forward(self, x):
        return self.head(torch.flatten(self.pool(self.features(x)), 1))

    def example_inputs(self):
        return (torch.zeros(2, self.in_channels, *[self.image_size] * self.dims),)


class FlattenCNN(nn.Module):
    """Convolutions and max pooling, then a flatten into a dense layer (spatial positions kept).

    Args:
        in_channels: channels of the input images.
        channels: channels of the two convolutions.
        classes: outputs.
        image_size: the side of the square input images.
    """

    def __init__(self, in_channels: int = 1, channels: tuple[int, int] = (8, 16),
                 classes: int = 10, image_size: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, padding=1)
        self.conv2 = nn.Conv2d(channels[0], channels[1], 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        side = image_size // 4
        self.fc = nn.Linear(channels[1] * side * side, 32)
        self.out = nn.Linear(32, classes)
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        return self.out(torch.relu(self.fc(x)))

    def example_inputs(self):
        return (torch.zeros(2, self.in_channels, self.image_size, self.image_size),)


class Conv1dNet(nn.Module):
    """1-D convolutions (one strided, one dilated, one depthwise) on sequences.

    Args:
        in_channels: channels of the input sequences.
        channels: channels of each convolution.
        classes: outputs.
        length: the length of the input sequences.
    """

    def __init__(self, in_channels: int = 3, channels: int = 12, classes: int = 4,
                 length: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, channels, 5, stride=2, padding=2), nn.Tanh(),
            nn.Conv1d(channels, channels, 3, dilation=2, padding=2), nn.Tanh(),
            nn.Conv1d(channels, channels, 3, groups=channels, padding=1), nn.Tanh(),
            nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(channels, classes),
        )
        self.in_channels, self.length = in_channels, length

    def forward(self, x):
        return self.net(x)

    def example_inputs(self):
        return (torch.zeros(2, self.in_channels, self.length),)


class GroupNormCNN(nn.Module):
    """Convolutions with GroupNorm (channels move only within and with their groups).

    Args:
        in_channels: channels of the input images.
        channels: channels of each convolution.
        groups: GroupNorm groups.
        classes: outputs.
        image_size: the side of the square input images.
    """

    def __init__(self, in_channels: int = 3, channels: int = 16, groups: int = 4,
                 classes: int = 10, image_size: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=2),
            nn.GroupNorm(groups, channels), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, classes),
        )
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, x):
        return self.net(x)

    def example_inputs(self):
        return (torch.zeros(2, self.in_channels, self.image_size, self.image_size),)
