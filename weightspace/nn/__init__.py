"""Metanetworks: permutation-equivariant networks that read (and write) network weights."""

from weightspace.nn.conv import EdgeMPNNConv
from weightspace.nn.gmn import GraphMetaNetwork, MetaNetworkOutput
from weightspace.nn.heads import scatter_to_weights
from weightspace.nn.metanetworks import METANETWORKS, Metanetwork
from weightspace.nn.weight_model import WeightSpaceModel

__all__ = ["METANETWORKS", "EdgeMPNNConv", "GraphMetaNetwork", "MetaNetworkOutput", "Metanetwork",
           "WeightSpaceModel", "scatter_to_weights"]
