"""Tasks: what a model is trained to do, through the one contract the training loop reads
(:class:`~weightspace.tasks.base.Task`).

``TASKS[cfg.task.name]`` finds a task by name: on a zoo (:class:`ZooTask`) ``predict``
(regression of a zoo column), ``classify`` (a label column), ``edit`` (INR edits),
``meta_prune`` (edits that make a classifier easy to prune), ``generate_zoo`` (a generative
model of the zoo's networks); on a condition
(:mod:`weightspace.hyper.tasks`) ``hyper_regularization`` and ``hyper_inr``.
"""

from weightspace.tasks.base import TASKS, Evaluation, Task
from weightspace.tasks.edit import EditINR
from weightspace.tasks.generate_zoo import GenerateZoo
from weightspace.tasks.hyper import HyperINR, HyperRegularization, HyperTask
from weightspace.tasks.metrics import classification_metrics, regression_metrics
from weightspace.tasks.predict import Classification, Regression
from weightspace.tasks.prune import MetaPrune
from weightspace.tasks.zoo_task import ZooTask

__all__ = ["TASKS", "Classification", "EditINR", "Evaluation", "GenerateZoo", "HyperINR",
           "HyperRegularization", "HyperTask", "MetaPrune", "Regression", "Task", "ZooTask",
           "classification_metrics", "regression_metrics"]
