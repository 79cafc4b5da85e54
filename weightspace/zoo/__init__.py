"""Model zoos: many trained networks with their metrics, crash-safe in HDF5."""

from weightspace.zoo.reader import Zoo
from weightspace.zoo.writer import ZooWriter, merge

__all__ = ["Zoo", "ZooWriter", "merge"]
