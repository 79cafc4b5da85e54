"""Batches of parameter graphs built on the device from flat weight matrices."""

from weightspace.data.batcher import GraphBatcher

__all__ = ["GraphBatcher"]
