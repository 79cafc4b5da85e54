"""Tasks on weight spaces: what a metanetwork is trained to do, with its loss and metrics.

``make_task(cfg, recipe, archs)`` builds one from the ``task`` config group by ``task.name``:
``predict`` (regression of a zoo column), ``classify`` (a label column), ``edit`` (INR edits).
"""

from weightspace.tasks.base import Task
from weightspace.tasks.edit import EditINR
from weightspace.tasks.metrics import classification_metrics, regression_metrics
from weightspace.tasks.predict import Classification, Regression

TASKS = ("predict", "classify", "edit")


def make_task(cfg, recipe: dict, archs: list[str]) -> Task:
    """The task that config group ``task`` names, for architectures ``archs`` of a zoo built by
    ``recipe`` (``Zoo.recipe``); nothing is instantiated from the config itself."""
    if cfg.name == "predict":
        return Regression(cfg.target)
    if cfg.name == "classify":
        return Classification(cfg.target, cfg.get("num_classes"))
    if cfg.name == "edit":
        return EditINR(recipe, archs, cfg.get("op", "dilate"))
    raise KeyError(f"unknown task {cfg.name!r} (config key task.name); known: {TASKS}")


__all__ = ["TASKS", "Classification", "EditINR", "Regression", "Task", "classification_metrics",
           "make_task", "regression_metrics"]
