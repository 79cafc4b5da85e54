"""The noise ceiling of a zoo: how well its own measurements rank its networks.

A network's test accuracy is measured on a finite test set, so two networks whose true
accuracies differ by less than the measurement noise are ranked by chance. A recipe that
measures a metric on two disjoint halves of its test set (columns ``test_a_acc`` and
``test_b_acc``) lets the zoo say how much rank agreement the measurement itself allows:

    ceiling(test_acc) = Kendall tau(test_a_acc, test_b_acc)   over the zoo's networks.

No predictor of ``test_acc`` can be expected to rank networks much better than one half of
the test set ranks them against the other; a metanetwork's tau is judged against this figure
(tables report ``tau / ceiling``). The ceiling is computed when a zoo is written or merged,
stored in its ``noise_ceiling`` attribute, and printed by ``weightspace zoo info``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy.stats import kendalltau


def halves(columns) -> dict[str, tuple[str, str]]:
    """``{metric: (half_a, half_b)}`` for every pair of columns ``X_a_Y`` / ``X_b_Y``
    (metric ``X_Y``), e.g. ``test_acc: (test_a_acc, test_b_acc)``."""
    names = set(columns)
    pairs = {}
    for name in sorted(names):
        head, sep, tail = name.partition("_a_")
        if sep and f"{head}_b_{tail}" in names:
            pairs[f"{head}_{tail}"] = (name, f"{head}_b_{tail}")
    return pairs


def noise_ceiling(meta: Mapping[str, np.ndarray], indices=None) -> dict[str, float]:
    """Kendall tau between the two test halves of each metric that has them, over the
    networks ``indices`` (default all). Empty when the zoo measured no halves."""
    out = {}
    for metric, (a, b) in halves(meta).items():
        x, y = np.asarray(meta[a]), np.asarray(meta[b])
        if indices is not None:
            x, y = x[indices], y[indices]
        if x.size > 1:
            out[metric] = float(kendalltau(x, y).statistic)
    return out
