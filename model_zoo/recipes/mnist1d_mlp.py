"""``mnist1d_mlp``: MLPs of sampled depth and width on MNIST-1D's 40-sample signals.

The recipe of :mod:`model_zoo.recipes.digits_mlp` on the signals of ``dataset: mnist1d:N``
(generated offline, split with a large test set: see :mod:`model_zoo.recipes.mnist1d_cnn`).
"""

from __future__ import annotations

from model_zoo.recipes.digits_mlp import DigitsMLP


class Mnist1dMLP(DigitsMLP):
    """MLPs on MNIST-1D (module docstring).

    Args:
        config: ``configs/zoo/mnist1d_mlp.yaml``: :class:`~model_zoo.recipes.digits_mlp.
            DigitsMLP`'s keys.
    """

    name = "mnist1d_mlp"
