"""``weightspace.prune``: hand in a trained network, get back a smaller one and a report."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from weightspace.pruning.structural import count_macs, layer_widths, prune_to_speedup
from weightspace.runs import minibatches


@dataclass
class PruneReport:
    macs_before: float
    macs_after: float
    params_before: int
    params_after: int
    widths_before: dict[str, int]
    widths_after: dict[str, int]
    accuracy_before: float | None = None
    accuracy_edited: float | None = None  # after the edit (and finetune_edited), unpruned
    accuracy_pruned: float | None = None  # right after pruning, before any fine-tuning
    accuracy_after: float | None = None  # the returned network's
    importance: str = "group_l2"
    notes: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        """Achieved MAC speed-up, ``MACs before / MACs after``."""
        return self.macs_before / self.macs_after

    def __str__(self) -> str:
        lines = [f"speed-up {self.speedup:.2f}x: MACs {self.macs_before:,.0f} -> "
                 f"{self.macs_after:,.0f}, parameters {self.params_before:,} -> "
                 f"{self.params_after:,} ({self.importance})"]
        for name, before in self.widths_before.items():
            lines.append(f"  {name}: {before} -> {self.widths_after.get(name, 0)}")
        for label, acc in (("accuracy before", self.accuracy_before),
                           ("accuracy after the metanetwork's edit", self.accuracy_edited),
                           ("accuracy right after pruning", self.accuracy_pruned),
                           ("accuracy after", self.accuracy_after)):
            if acc is not None:
                lines.append(f"{label}: {acc:.4f}")
        return "\n".join(lines + self.notes)


def accuracy(model: nn.Module, data) -> float:
    """Top-1 accuracy on ``data``: a pair ``(x, y)`` of tensors or an iterable of batches."""
    model.eval()
    batches = [data] if isinstance(data, tuple | list) and len(data) == 2 \
        and isinstance(data[0], torch.Tensor) else data
    device = next(model.parameters()).device
    correct = total = 0
    with torch.no_grad():
        for x, y in batches:
            pred = model(x.to(device)).argmax(-1)
            correct += int((pred == y.to(device)).sum())
            total += len(y)
    if total == 0:
        raise ValueError("no examples in data")
    return correct / total


def recalibrate_batchnorm(model: nn.Module, data, batch_size: int = 256) -> nn.Module:
    """Re-estimate every BatchNorm's running statistics on ``data`` (``(x, y)`` or ``x``): the
    average of the statistics of its batches of ``batch_size``, in forward passes without
    gradients; other layers (dropout) stay in eval mode. Pruning leaves these statistics stale:
    removing a layer's input channels changes the distribution its BatchNorm normalises."""
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return model
    x = data[0] if isinstance(data, tuple | list) else data
    momenta = [m.momentum for m in norms]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
        m.train()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                model(x[start : start + batch_size])
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
    return model


def finetune_epochs(model: nn.Module, data, epochs: int = 1, lr: float = 1e-3,
                    batch_size: int = 64, seed: int = 0,
                    after_backward: Callable[[nn.Module], None] | None = None) -> nn.Module:
    """A small fine-tune budget: ``epochs`` of Adam on ``(x, y)`` in minibatches.
    ``after_backward(model)`` runs between each backward and step (e.g. a sparsity
    regulariser that adds to the gradients)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in minibatches(tuple(data), batch_size, gen):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            if after_backward is not None:
                after_backward(model)
            opt.step()
    return model.eval()


def metanetwork_edit(model: nn.Module, example_inputs, metanetwork) -> nn.Module:
    """A copy of ``model`` with the weights ``theta + delta`` that ``metanetwork`` (a checkpoint
    path, run directory, or loaded :class:`~weightspace.checkpoint.TrainedMetanetwork`) outputs
    for it; buffers (BatchNorm statistics) are kept."""
    from weightspace.checkpoint import load_trained
    from weightspace.inference import predict

    device = next(model.parameters()).device
    trained = load_trained(metanetwork, device)
    if not trained.task.equivariant:
        raise ValueError(f"the metanetwork was trained for task {trained.task.name!r}, which "
                         f"predicts rather than edits weights; prune needs one trained with "
                         f"task=meta_prune")
    return predict(trained, [model], device=device, example_inputs=example_inputs)[0].eval()


def _finetune(model: nn.Module, finetune: Callable | dict, finetune_data, name: str):
    """``finetune(model)``, or ``finetune_epochs`` with the dict's epochs and lr."""
    if callable(finetune):
        return finetune(model)
    if isinstance(finetune, dict):
        if finetune_data is None:
            raise ValueError(f"{name}={{...}} trains on finetune_data=(x, y); none given")
        return finetune_epochs(model, finetune_data, **finetune)
    raise TypeError(f"{name} must be a callable or a dict (epochs, lr), got "
                    f"{type(finetune).__name__}")


def prune(model: nn.Module, example_inputs, speedup: float = 2.0, metanetwork=None,
          importance: str = "group_l2", finetune: Callable | dict | None = None,
          ignored_layers=None, data=None, finetune_data=None, calibrate=None,
          finetune_edited: Callable | dict | None = None) -> tuple[nn.Module, PruneReport]:
    """A structurally pruned copy of ``model`` with ``speedup`` times fewer MACs, and a report.

    - ``metanetwork``: a ``task=meta_prune`` checkpoint (path, run directory or loaded): its
      equivariant edit ``theta + delta`` is applied first (:func:`metanetwork_edit`), then the
      edited network is pruned the same way. One trained on other architectures raises a
      :class:`~weightspace.errors.SpecMismatchError` naming both.
    - ``importance``: ``group_l2`` (DepGraph group-norm, global), ``group_l1``, ``l1`` (per-layer
      filter magnitude), ``random``; see :mod:`weightspace.pruning.structural`.
    - ``finetune``: a callable ``model -> model``, or ``{"epochs": .., "lr": ..}`` for Adam on
      ``finetune_data`` (``(x, y)``).
    - ``finetune_edited``: the same for the edited network before it is pruned (needs a
      metanetwork), as Liu et al. do. With a fixed number of epochs, spending them all after
      pruning did better on the digits zoos (``benchmarks/RESULTS.md`` § Pruning).
    - ``data``: ``(x, y)`` or batches to report accuracy before, right after pruning, and after.
    - ``ignored_layers``: modules (or paths) whose output channels stay.
    - ``calibrate``: images (or ``(x, y)``; labels unused) on which the pruned network's
      BatchNorm statistics are re-estimated right after pruning (and the edited network's,
      with a metanetwork).

    The input ``model`` is not modified. The result converts to a parameter graph and back
    like any network the graph layer reads.
    """
    inputs = tuple(example_inputs) if isinstance(example_inputs, list | tuple) \
        else (example_inputs,)
    macs_before, params_before = count_macs(model, inputs)
    report = PruneReport(macs_before, 0.0, params_before, 0, layer_widths(model), {},
                         importance=importance)
    if finetune_edited is not None and metanetwork is None:
        raise ValueError("finetune_edited trains the metanetwork's edit before pruning; pass "
                         "metanetwork=..., or use finetune= for training after pruning")
    source = model
    if metanetwork is not None:
        source = metanetwork_edit(model, inputs, metanetwork)
        report.notes.append("weights edited by the metanetwork before pruning")
        if calibrate is not None:  # the edit was trained with batch statistics
            recalibrate_batchnorm(source, calibrate)
        if finetune_edited is not None:
            source = _finetune(source, finetune_edited, finetune_data, "finetune_edited").eval()
            report.notes.append("the edited network fine-tuned before pruning")
    pruned = prune_to_speedup(source, inputs, speedup, importance, ignored_layers)
    if calibrate is not None:
        recalibrate_batchnorm(pruned, calibrate)
    if data is not None:
        report.accuracy_before = accuracy(model, data)
        if metanetwork is not None:
            report.accuracy_edited = accuracy(source, data)
        report.accuracy_pruned = accuracy(pruned, data)
    if finetune is not None:
        pruned = _finetune(pruned, finetune, finetune_data, "finetune")
    report.macs_after, report.params_after = count_macs(pruned, inputs)
    report.widths_after = layer_widths(pruned)
    if data is not None:
        report.accuracy_after = accuracy(pruned, data)
    return pruned.eval(), report
