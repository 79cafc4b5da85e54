"""Hypernetworks: weights of a target network generated from a condition (MIP, batched)."""

from weightspace.hyper.condition import check_conditions, mip_encoding
from weightspace.hyper.hypernetize import HyperModule, hypernetize
from weightspace.hyper.hypernetwork import HyperNetwork, select_parameters

__all__ = ["HyperModule", "HyperNetwork", "check_conditions", "hypernetize",
           "mip_encoding", "select_parameters"]
