"""Model zoos: many trained networks with their metrics, crash-safe in HDF5."""

from weightspace.zoo.merge import MergeReport, merge
from weightspace.zoo.reader import Zoo
from weightspace.zoo.writer import ZooWriter

__all__ = ["MergeReport", "Zoo", "ZooWriter", "merge"]
