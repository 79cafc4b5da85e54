"""Structural pruning: smaller networks as ordinary modules (Torch-Pruning's DepGraph).

The primitives: :func:`prune_to_speedup` (the pruning itself), :class:`ChannelGroups` (the
channel groups of a parameter graph), accuracy and BatchNorm recalibration. The verb users call,
``weightspace.prune``, lives in :mod:`weightspace.api`; it adds a metanetwork's edit first.
"""

from weightspace.pruning.evaluation import (
    accuracy,
    apply_finetune,
    finetune_epochs,
    recalibrate_batchnorm,
)
from weightspace.pruning.groups import ChannelGroups
from weightspace.pruning.report import PruneReport
from weightspace.pruning.structural import IMPORTANCES, count_macs, layer_widths, prune_to_speedup

__all__ = ["IMPORTANCES", "ChannelGroups", "PruneReport", "accuracy", "apply_finetune",
           "count_macs", "finetune_epochs", "layer_widths", "prune_to_speedup",
           "recalibrate_batchnorm"]
