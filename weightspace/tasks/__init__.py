"""Tasks on weight spaces: losses, metrics and training loops."""

from weightspace.tasks.metrics import classification_metrics, regression_metrics

__all__ = ["classification_metrics", "regression_metrics"]
