"""The one training loop (:func:`run`) for every task, with its run directory, checkpoints
(:func:`load_trained`), optimizers by name and devices."""

from weightspace.training.checkpoint import Trained, load_trained
from weightspace.training.loop import evaluate, run
from weightspace.training.optim import OPTIMIZERS, make_optimizer

__all__ = ["OPTIMIZERS", "Trained", "evaluate", "load_trained", "make_optimizer", "run"]
