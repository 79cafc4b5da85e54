"""``mnist1d_cnn``: the Small CNN Zoo recipe on MNIST-1D -- 1-D CNNs whose accuracy can be ranked.

The network: three 1-D convolutions (``kernel`` wide, stride 2) of ``channels`` channels,
global average pooling, a dense layer to 10 classes (:class:`~weightspace.nets.SmallCNN` with
``dims=1``). Per run, as in :mod:`model_zoo.recipes.digits_cnn`: learning rate, weight decay and
initialisation std log-uniform, dropout rate, activation, optimiser and the fraction of the
training signals used; checkpoints at several epochs.

The signals are generated offline by the ``mnist1d`` package (``dataset: mnist1d:N``) and
split so that the test set is large (10,000 of the default 16,000): with two test halves of
5,000 signals, accuracies that differ by a point are told apart, and the zoo's noise ceiling
(Kendall tau between the halves, :mod:`weightspace.zoo.ceiling`) is high enough for a
metanetwork's ranking to be judged.
"""

from __future__ import annotations

from model_zoo.recipes.digits_cnn import ACTIVATIONS, DigitsCNN
from weightspace.nets import SmallCNN
from weightspace.zoo.recipe import Run


class Mnist1dCNN(DigitsCNN):
    """1-D Small CNNs on MNIST-1D (module docstring).

    Args:
        config: ``configs/zoo/mnist1d_cnn.yaml``: :class:`~model_zoo.recipes.digits_cnn.
            DigitsCNN`'s keys, plus ``kernel`` (the convolutions' width).
    """

    name = "mnist1d_cnn"

    def build(self, run: Run) -> SmallCNN:
        h = run.hparams
        channels, length = self.image_shape()
        model = SmallCNN(channels, self.config["channels"], self.classes(),
                         ACTIVATIONS[h["activation"]], dropout=h["dropout"], image_size=length,
                         dims=1, kernel=int(self.config.get("kernel", 5)))
        return self.initialize(model, run)
