"""Structural pruning: smaller networks as ordinary modules (Torch-Pruning's DepGraph)."""

from weightspace.pruning.api import (
    PruneReport,
    accuracy,
    finetune_epochs,
    metanetwork_edit,
    prune,
    recalibrate_batchnorm,
)
from weightspace.pruning.groups import ChannelGroups
from weightspace.pruning.structural import IMPORTANCES, count_macs, layer_widths, prune_to_speedup

__all__ = ["IMPORTANCES", "ChannelGroups", "PruneReport", "accuracy", "count_macs",
           "finetune_epochs", "layer_widths", "metanetwork_edit", "prune", "prune_to_speedup",
           "recalibrate_batchnorm"]
