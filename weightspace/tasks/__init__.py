"""Tasks on weight spaces: what a metanetwork is trained to do, with its loss and metrics.

``make_task(cfg, recipe, archs)`` builds one from the ``task`` config group by ``task.name``:
``predict`` (regression of a zoo column), ``classify`` (a label column), ``edit`` (INR edits),
``meta_prune`` (edits that make a classifier easy to prune).
"""

from weightspace.tasks.base import Task
from weightspace.tasks.edit import EditINR
from weightspace.tasks.metrics import classification_metrics, regression_metrics
from weightspace.tasks.predict import Classification, Regression
from weightspace.tasks.prune import MetaPrune

TASKS = ("predict", "classify", "edit", "meta_prune")


def make_task(cfg, recipe: dict, archs: list[str]) -> Task:
    """The task that config group ``task`` names, for architectures ``archs`` of a zoo built by
    ``recipe`` (``Zoo.recipe``); nothing is instantiated from the config itself."""
    if cfg.name == "predict":
        return Regression(cfg.target)
    if cfg.name == "classify":
        return Classification(cfg.target, cfg.get("num_classes"))
    if cfg.name == "edit":
        return EditINR(recipe, archs, cfg.get("op", "dilate"))
    if cfg.name == "meta_prune":
        return MetaPrune(recipe, archs, cfg.get("speedup", 2.0), cfg.get("sparsity", 1e-3),
                         cfg.get("batch_size", 128), cfg.get("mask_fraction"),
                         train_speedups=cfg.get("train_speedups"))
    raise KeyError(f"unknown task {cfg.name!r} (config key task.name); known: {TASKS}")


__all__ = ["TASKS", "Classification", "EditINR", "MetaPrune", "Regression", "Task",
           "classification_metrics", "make_task", "regression_metrics"]
