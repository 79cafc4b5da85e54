"""Batches of parameter graphs built on the device from flat weight matrices, and
weight-space augmentations applied to whole batches."""

from weightspace.data.augment import gaussian_noise, mixup, random_symmetries, weight_dropout
from weightspace.data.batcher import GraphBatcher

__all__ = ["GraphBatcher", "gaussian_noise", "mixup", "random_symmetries", "weight_dropout"]
