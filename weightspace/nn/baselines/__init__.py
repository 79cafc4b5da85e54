from weightspace.nn.baselines.flat_mlp import FlatMLP
from weightspace.nn.baselines.np_network import NPNetwork, weight_chain
from weightspace.nn.baselines.statnn import StatNN, weight_statistics

__all__ = ["FlatMLP", "NPNetwork", "StatNN", "weight_chain", "weight_statistics"]
