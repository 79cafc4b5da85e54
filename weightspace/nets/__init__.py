"""The architectures of weightspace's zoos and tests. Each has an ``example_inputs()``."""

from weightspace.nets.cnn import Conv1dNet, FlattenCNN, GroupNormCNN, SmallCNN
from weightspace.nets.mlp import MLP
from weightspace.nets.resnet import BasicBlock, ResNet, resnet18_cifar
from weightspace.nets.siren import SIREN, Sine
from weightspace.nets.transformer import PreLNBlock, TinyViT, TransformerEncoder, vit_tiny

__all__ = [
    "MLP", "SIREN", "Sine", "SmallCNN", "FlattenCNN", "Conv1dNet", "GroupNormCNN",
    "BasicBlock", "ResNet", "resnet18_cifar", "PreLNBlock", "TransformerEncoder", "TinyViT",
    "vit_tiny",
]
