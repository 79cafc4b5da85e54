"""Structural pruning: smaller networks as ordinary modules (Torch-Pruning's DepGraph)."""

from weightspace.pruning.api import (
    PruneReport,
    accuracy,
    finetune_epochs,
    prune,
    recalibrate_batchnorm,
)
from weightspace.pruning.structural import IMPORTANCES, count_macs, layer_widths, prune_to_speedup

__all__ = ["IMPORTANCES", "PruneReport", "accuracy", "count_macs", "finetune_epochs",
           "layer_widths", "prune", "prune_to_speedup", "recalibrate_batchnorm"]
