"""``digits_resnet``: a small ResNet with BatchNorm and residual adds on the digits.

Basic blocks (two 3x3 conv + BatchNorm, a 1x1 conv + BatchNorm shortcut where the shape
changes), global average pooling, a dense layer. Per run: optimiser, learning rate and weight
decay log-uniform, train fraction (see ``ClassifierRecipe.sample``); PyTorch's default
initialisation drawn with the run's seed.
BatchNorm statistics are trained per network and stored in the zoo's buffer matrix. These are
the networks the pruning metanetwork learns on.
"""

from __future__ import annotations

import torch

from model_zoo.recipes.classifier import ClassifierRecipe
from weightspace.nets import ResNet
from weightspace.zoo.recipe import Run


class DigitsResNet(ClassifierRecipe):
    """ResNets with BatchNorm (module docstring).

    Args:
        config: ``configs/zoo/digits_resnet.yaml``: :class:`ClassifierRecipe`'s keys, plus
            ``blocks`` and ``widths``.
    """

    name = "digits_resnet"

    def group_key(self, run: Run):
        return run.hparams["optimizer"]

    def build(self, run: Run) -> ResNet:
        c = self.config
        channels, side, _ = self.image_shape()
        with torch.random.fork_rng():
            torch.manual_seed(run.seed)
            return ResNet(tuple(c["blocks"]), tuple(c["widths"]), channels, self.classes(), side)
