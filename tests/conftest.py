"""Shared fixtures: the architectures every graph test runs on."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from weightspace import nets
from weightspace.testing import random_inputs


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights and BatchNorm statistics, so that no symmetry holds by accident."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(1234)
    return model.eval()


class Versioned(torch.nn.Sequential):
    """Reads its version from the state dict's metadata while loading, as torchvision's
    MNASNet does, and refuses a state without one."""

    _version = 2

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, *args, **kwargs):
        if local_metadata.get("version") != 2:
            raise ValueError(f"no version 2 in the metadata of {prefix!r}")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, *args, **kwargs)


ARCHITECTURES = {
    "mlp": lambda: nets.MLP(5, [16, 12], 3, activation="relu"),
    "mlp_tanh": lambda: nets.MLP(5, [16, 12], 3, activation="tanh"),
    "siren": lambda: nets.SIREN(2, (32, 32), 1, w0=30.0),
    "small_cnn": lambda: nets.SmallCNN(1, 16, 10),
    "small_cnn_1d": lambda: nets.SmallCNN(1, 8, 10, nn.Tanh, image_size=40, dims=1, kernel=5),
    "flatten_cnn": lambda: nets.FlattenCNN(1, (8, 16), 10, 8),
    "resnet_blocks": lambda: nets.ResNet((1, 1), (8, 16), 3, 10, 16),
    "resnet18": nets.resnet18_cifar,
    "conv1d": lambda: nets.Conv1dNet(3, 12, 4, 32),
    "mlp_layernorm": lambda: nets.MLP(6, [16, 16], 4, activation="gelu", layer_norm=True),
    "transformer_block": lambda: nets.TransformerEncoder(20, 16, 4, 1, 6, 3),
    "tiny_vit": lambda: nets.TinyViT(16, 4, 3, 32, 2, 4, 10),
    "groupnorm_cnn": lambda: nets.GroupNormCNN(3, 16, 4, 10, 16),
}
FAST = [name for name in ARCHITECTURES if name != "resnet18"]


def build(name: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return randomize(ARCHITECTURES[name](), seed)


def sample_inputs(model: nn.Module, batch: int = 3, seed: int = 0) -> tuple:
    """Random inputs of the shapes the model's example inputs have."""
    return random_inputs(model, batch=batch, seed=seed)


@pytest.fixture(params=list(ARCHITECTURES))
def arch(request) -> str:
    return request.param
