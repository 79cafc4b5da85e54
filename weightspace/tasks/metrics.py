"""Metrics of property prediction: Kendall's tau, R^2, MSE; accuracy for classification."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau


def regression_metrics(pred, true) -> dict[str, float]:
    """``kendall_tau`` (rank agreement), ``r2`` = 1 - SSE/SST, ``mse``."""
    pred, true = np.asarray(pred, np.float64).ravel(), np.asarray(true, np.float64).ravel()
    sse = float(((pred - true) ** 2).sum())
    sst = float(((true - true.mean()) ** 2).sum())
    tau = kendalltau(pred, true).statistic if len(true) > 1 else float("nan")
    return {"kendall_tau": float(tau), "r2": 1 - sse / sst if sst > 0 else float("nan"),
            "mse": sse / max(1, len(true))}


def classification_metrics(logits, labels) -> dict[str, float]:
    logits, labels = np.asarray(logits), np.asarray(labels)
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}
