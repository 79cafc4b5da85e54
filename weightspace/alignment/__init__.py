"""Alignment of networks through their symmetry groups: weight matching, ``align`` and
``distance``."""

from weightspace.alignment.merge import merge
from weightspace.alignment.network import align, distance, distances, pairwise_distances
from weightspace.alignment.weight_matching import weight_matching

__all__ = ["align", "distance", "distances", "merge", "pairwise_distances", "weight_matching"]
