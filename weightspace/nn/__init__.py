"""Metanetworks: permutation-equivariant networks that read (and write) network weights."""

from weightspace.nn.conv import EdgeMPNNConv
from weightspace.nn.gmn import GraphMetaNetwork, MetaNetworkOutput
from weightspace.nn.heads import scatter_to_weights
from weightspace.nn.weight_model import MODELS, WeightSpaceModel

__all__ = ["MODELS", "EdgeMPNNConv", "GraphMetaNetwork", "MetaNetworkOutput", "WeightSpaceModel",
           "scatter_to_weights"]
