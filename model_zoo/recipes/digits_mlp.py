"""``digits_mlp``: MLPs of sampled depth and width on the digits -- several architectures.

Per run: depth and width from the config's lists; activation; optimiser; learning rate,
weight decay and init std log-uniform in their ranges; a train fraction (see
:mod:`model_zoo.recipes.classifier` for training and metrics).
"""

from __future__ import annotations

from model_zoo.recipes.classifier import ClassifierRecipe
from weightspace.nets import MLP
from weightspace.zoo.recipe import Run


class DigitsMLP(ClassifierRecipe):
    """MLPs of sampled depth and width (module docstring).

    Args:
        config: ``configs/zoo/digits_mlp.yaml``: :class:`ClassifierRecipe`'s keys, plus
            ``depths`` and ``widths``.
    """

    name = "digits_mlp"

    def sample_architecture(self, rng):
        return {"depth": int(rng.choice(self.config["depths"])),
                "width": int(rng.choice(self.config["widths"]))}

    def group_key(self, run: Run):
        h = run.hparams
        return (h["depth"], h["width"], h["activation"], h["optimizer"])

    def inputs(self, x):
        return x.flatten(1)

    def build(self, run: Run) -> MLP:
        h = run.hparams
        (features,) = self.image_shape()  # inputs() flattens the images
        return self.initialize(MLP(features, [h["width"]] * h["depth"], self.classes(),
                                   activation=h["activation"]), run)
