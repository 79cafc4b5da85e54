"""ResNets with basic blocks (He et al. 2016), CIFAR-style stem."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; a 1x1 conv + BN shortcut when the
    shape changes.

    Args:
        in_channels: input channels.
        channels: output channels.
        stride: the stride of the first convolution (and of the shortcut).
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(out + shortcut)


class ResNet(nn.Module):
    """A 3x3 stem, stages of basic blocks (the first block of a stage may stride), GAP, linear.

    Args:
        blocks: basic blocks per stage.
        widths: channels per stage.
        in_channels: channels of the input images.
        classes: outputs.
        image_size: the side of the square input images.
    """

    def __init__(self, blocks: tuple[int, ...] = (2, 2, 2, 2),
                 widths: tuple[int, ...] = (64, 128, 256, 512), in_channels: int = 3,
                 classes: int = 10, image_size: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages, width = [], widths[0]
        for i, (n, w) in enumerate(zip(blocks, widths, strict=True)):
            stride = 1 if i == 0 else 2
            layers = []
            for j in range(n):
                layers.append(BasicBlock(width, w, stride if j == 0 else 1))
                width = w
            stages.append(nn.Sequential(*layers))
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, classes)
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.layers(x))
        return self.fc(x.flatten(1))

    def example_inputs(self):
        return (torch.zeros(2, self.in_channels, self.image_size, self.image_size),)


def resnet18_cifar(classes: int = 10) -> ResNet:
    """ResNet-18 for 32x32 images (11.2M parameters)."""
    return ResNet((2, 2, 2, 2), (64, 128, 256, 512), 3, classes, 32)
