"""``digits_mlp``: MLPs of sampled depth and width on the digits -- several architectures.

Per run: depth and width from the config's lists; activation; optimiser; learning rate,
weight decay and init std log-uniform in their ranges; a train fraction (see
:mod:`model_zoo.recipes.classifier` for training and metrics).
"""

from __future__ import annotations

from model_zoo.nets import MLP
from model_zoo.recipes.base import Run, log_uniform
from model_zoo.recipes.classifier import ClassifierRecipe


class DigitsMLP(ClassifierRecipe):
    name = "digits_mlp"

    def sample(self, rng):
        c = self.config
        return {
            "depth": int(rng.choice(c["depths"])),
            "width": int(rng.choice(c["widths"])),
            "activation": str(rng.choice(c["activations"])),
            "optimizer": str(rng.choice(c["optimizers"])),
            "lr": log_uniform(rng, *c["lr"]),
            "weight_decay": log_uniform(rng, *c["weight_decay"]),
            "init_std": log_uniform(rng, *c["init_std"]),
            "train_fraction": float(rng.choice(c["train_fractions"])),
        }

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
