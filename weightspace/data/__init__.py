"""Batches of parameter graphs built on the device from flat weight matrices, and
weight-space augmentations applied to whole batches."""

from weightspace.data.augment import (
    Augment,
    gaussian_noise,
    mixup,
    random_symmetries,
    weight_dropout,
)
from weightspace.data.batcher import GraphBatcher

__all__ = ["Augment", "GraphBatcher", "gaussian_noise", "mixup", "random_symmetries",
           "weight_dropout"]
