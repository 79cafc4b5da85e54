"""``mnist1d_inr``: one SIREN (1 -> 32 -> 32 -> 1) fitted to each MNIST-1D signal.

The 40 samples of a signal sit at coordinates ``linspace(-1, 1, 40)``; the label of an INR is
its signal's digit. Signals are generated offline by the ``mnist1d`` package
(``dataset: mnist1d:N``, cached) and sampled, fitted and stored exactly as in
:mod:`model_zoo.recipes.digits_inr` (one shuffle of the signals per build seed, ``copies``
fits per signal, full-batch Adam on the mean squared error, checkpoints at given steps).
"""

from __future__ import annotations

import torch

from model_zoo.recipes.digits_inr import DigitsINR
from weightspace.datasets import load_mnist1d, mnist1d_size


class Mnist1dINR(DigitsINR):
    """One SIREN per MNIST-1D signal (module docstring).

    Args:
        config: ``configs/zoo/mnist1d_inr.yaml``: :class:`~model_zoo.recipes.digits_inr.
            DigitsINR`'s keys, plus ``dataset`` (``mnist1d:N``), ``data_seed`` and
            ``data_dir``.
    """

    name = "mnist1d_inr"

    def signals(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The source's signals ``[n, 40]`` in their generated order (``image`` indexes them)
        and their digits."""
        if not hasattr(self, "_signals"):
            c = self.config
            x, y = load_mnist1d(mnist1d_size(c.get("dataset", "mnist1d")),
                                c.get("data_seed", 0), c.get("data_dir"))
            self._signals = (x.flatten(1), y)
        return self._signals

    def coords(self) -> torch.Tensor:
        return torch.linspace(-1, 1, self.signals()[0].shape[1]).unsqueeze(1)
