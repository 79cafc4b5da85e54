"""Metanetworks: permutation-equivariant networks that read (and write) network weights."""

from weightspace.nn.conv import EdgeMPNNConv
from weightspace.nn.gmn import GraphMetaNetwork, MetaNetworkOutput
from weightspace.nn.heads import scatter_to_weights

__all__ = ["EdgeMPNNConv", "GraphMetaNetwork", "MetaNetworkOutput", "scatter_to_weights"]
