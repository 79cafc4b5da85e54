from weightspace.nn.baselines.flat_mlp import FlatMLP
from weightspace.nn.baselines.statnn import StatNN, weight_statistics

__all__ = ["FlatMLP", "StatNN", "weight_statistics"]
