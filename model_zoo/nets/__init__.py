"""The architectures of weightspace's zoos and tests. Each has an ``example_inputs()``."""

from model_zoo.nets.cnn import Conv1dNet, FlattenCNN, GroupNormCNN, SmallCNN
from model_zoo.nets.mlp import MLP
from model_zoo.nets.resnet import BasicBlock, ResNet, resnet18_cifar
from model_zoo.nets.siren import SIREN, Sine
from model_zoo.nets.transformer import PreLNBlock, TinyViT, TransformerEncoder, vit_tiny

__all__ = [
    "MLP", "SIREN", "Sine", "SmallCNN", "FlattenCNN", "Conv1dNet", "GroupNormCNN",
    "BasicBlock", "ResNet", "resnet18_cifar", "PreLNBlock", "TransformerEncoder", "TinyViT",
    "vit_tiny",
]
