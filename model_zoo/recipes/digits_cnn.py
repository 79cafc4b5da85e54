"""``digits_cnn``: the Small CNN Zoo recipe (Unterthiner et al. 2020) on the digits.

The network: three 3x3 convolutions of 16 channels with stride 2, global average pooling, a
dense layer to 10 classes. Per run, as in that paper: learning rate log-uniform, L2 weight
decay log-uniform, initialisation std log-uniform (normal init, zero biases), dropout rate,
activation (relu/tanh), optimiser (adam/sgd/rmsprop), and the fraction of the training set
used ({0.1, 0.25, 0.5, 1.0}).

Dropout is drawn from the config's list of rates rather than a continuous range: runs train
together only when their networks are the same module, and a dropout rate is part of the
module; a short list keeps the vectorised groups large.
"""

from __future__ import annotations

from torch import nn

from model_zoo.recipes.classifier import ClassifierRecipe
from weightspace.nets import SmallCNN
from weightspace.zoo.recipe import Run

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class DigitsCNN(ClassifierRecipe):
    """The Small CNN Zoo recipe (module docstring).

    Args:
        config: ``configs/zoo/digits_cnn.yaml``: :class:`ClassifierRecipe`'s keys, plus
            ``channels`` and ``dropouts`` (the dropout rates drawn from).
    """

    name = "digits_cnn"

    def sample_architecture(self, rng):
        return {"dropout": float(rng.choice(self.config["dropouts"]))}

    def group_key(self, run: Run):
        h = run.hparams
        return (h["activation"], h["optimizer"], h["dropout"])

    def build(self, run: Run) -> SmallCNN:
        h = run.hparams
        c, side, _ = self.image_shape()
        model = SmallCNN(c, self.config["channels"], self.classes(),
                         ACTIVATIONS[h["activation"]], dropout=h["dropout"], image_size=side)
        return self.initialize(model, run)
