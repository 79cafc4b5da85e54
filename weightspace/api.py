"""What users call: ``predict``, ``generate`` and ``prune``.

- :func:`predict`: a trained metanetwork applied to networks a user has in hand;
- :func:`generate`: networks (or their weights) from a hypernetwork and conditions;
- :func:`prune`: a structurally pruned copy of a network and a report, optionally after a
  meta-pruning metanetwork's edit.

Each takes checkpoints as run directories, ``best.pt`` files or loaded objects.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable

import torch
from torch import Tensor, nn

from weightspace.errors import SpecMismatchError
from weightspace.graph.convert import load_flat
from weightspace.graph.spec import GraphSpec
from weightspace.hyper.hypernetize import HyperModule
from weightspace.hyper.hypernetwork import HyperNetwork
from weightspace.pruning.evaluation import accuracy, apply_finetune, recalibrate_batchnorm
from weightspace.pruning.report import PruneReport
from weightspace.pruning.structural import count_macs, layer_widths, prune_search
from weightspace.tasks import Classification
from weightspace.training.checkpoint import Trained, load_trained


def _rows(trained: Trained, models, arch: str | None, example_inputs=None
          ) -> list[tuple[int, Tensor, Tensor | None]]:
    """``(architecture position, vecs, buffers)`` for each network, in order."""
    ids = [s.id for s in trained.specs]
    if isinstance(models, Tensor):
        if arch is None and len(ids) > 1:
            raise ValueError(f"the metanetwork knows architectures {ids}: say which one the "
                             f"rows are with arch=")
        a = ids.index(arch) if arch in ids else 0
        if arch is not None and arch not in ids:
            raise SpecMismatchError(f"the metanetwork was trained on {ids}, not {arch}")
        spec = trained.specs[a]
        vecs = models if models.dim() == 2 else models.unsqueeze(0)
        if vecs.shape[1] != spec.num_params:
            raise SpecMismatchError(f"weight rows have {vecs.shape[1]} entries; the metanetwork "
                                    f"was trained on architecture {spec.id} with "
                                    f"{spec.num_params}")
        if len(spec.buffers):
            raise ValueError(f"architecture {spec.id} has buffers: pass the networks as modules")
        return [(a, row, None) for row in vecs.float()]
    rows = []
    for i, m in enumerate(models):
        own = GraphSpec.from_module(m, example_inputs)
        if own.id not in ids:
            raise SpecMismatchError(f"network {i} ({type(m).__name__}, architecture {own.id}) "
                                    f"is not what the metanetwork was trained on: "
                                    f"{trained.trained_on()}")
        rows.append((ids.index(own.id), own.flatten(m), own.flatten_buffers(m)))
    return rows


@torch.no_grad()
def predict(checkpoint: str | os.PathLike | Trained, models, batch_size: int = 256,
            device: str | torch.device = "cpu", arch: str | None = None, example_inputs=None):
    """What the metanetwork of ``checkpoint`` (a ``best.pt`` or a run directory) says about each
    of ``models`` (a list of ``nn.Module`` of the trained architecture, or ``vecs [B, P]``):

    - a property (``predict`` tasks): ``Tensor [N]`` in the target's units;
    - a class (``classify``): ``Tensor [N]`` of labels;
    - an edit (``edit``): the edited networks -- copies of ``models`` with ``theta + delta``
      (or ``Tensor [N, P]`` when ``models`` was a tensor).

    A metanetwork trained on several architectures takes networks of any of them (tensor rows:
    name the architecture with ``arch=``). ``example_inputs`` trace modules that cannot say
    what they take (see :func:`~weightspace.graph.example_inputs.default_example_inputs`).
    """
    trained = load_trained(checkpoint, device, kind="metanetwork")
    rows = _rows(trained, models, arch, example_inputs)
    task, results = trained.task, [None] * len(rows)
    for a in sorted({r[0] for r in rows}):
        positions = [i for i, r in enumerate(rows) if r[0] == a]
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            v = torch.stack([rows[i][1] for i in chunk]).to(device)
            b = None if rows[chunk[0]][2] is None else torch.stack(
                [rows[i][2] for i in chunk]).to(device)
            out = trained.model(v, b, a)
            if task.equivariant:
                out = v + out
            elif isinstance(task, Classification):
                out = out.argmax(-1)
            else:
                out = task.record(out, v, b, None, a)
            for i, value in zip(chunk, out.cpu(), strict=True):
                results[i] = value
    result = torch.stack(results)
    if not task.equivariant or isinstance(models, Tensor):
        return result
    edited = []
    for m, (a, _, _), row in zip(models, rows, result, strict=True):
        spec = trained.specs[a]  # the edit moves the weights; the buffers stay the network's
        buffers = spec.flatten_buffers(m) if len(spec.buffers) else None
        edited.append(load_flat(copy.deepcopy(m), spec, row, buffers))
    return edited


def generate(hypernet, conditions=None, *, n: int | None = None, as_params: bool = False,
             device: str | torch.device | None = None, seed: int | None = None,
             steps: int | None = None, guidance: float = 0.0) -> list[nn.Module] | Tensor:
    """Networks from a hypernetwork (one per condition) or from a zoo generator.

    ``hypernet`` is a :class:`~weightspace.hyper.HyperNetwork`, a
    :class:`~weightspace.hyper.HyperModule` (from ``hypernetize``), or the run directory /
    ``best.pt`` of a hypernetwork trained with the Hydra app. ``conditions`` is ``[B, cond_dim]``
    in ``[0, 1]`` (a float for one scalar condition). Returns ``B`` ordinary modules of the
    target's class, or with ``as_params=True`` the ``[B, P]`` weights in its flat layout
    (:class:`~weightspace.graph.GraphSpec` order) for
    :func:`~weightspace.functional.batched_forward`.

    For a generator trained with ``task=generate_zoo`` (its run directory, ``best.pt`` or
    loaded checkpoint), ``n`` networks are sampled: ``conditions`` is values of the column it
    was conditioned on (e.g. a test accuracy of 0.9), one or ``n``, or ``None`` (conditions
    drawn to follow the zoo's distribution); ``seed``
    makes the draw repeatable, ``steps`` and ``guidance`` set the sampler
    (:mod:`weightspace.generation`).
    """
    if isinstance(hypernet, str | os.PathLike | Trained):
        trained = load_trained(hypernet, device or "cpu", kind=("hypernetwork", "generator"))
        if trained.task.kind == "generator":
            from weightspace.generation import as_modules, sample_rows

            rows = sample_rows(trained, n or 1, conditions, steps=steps, guidance=guidance,
                               seed=seed)
            return rows if as_params else as_modules(trained, rows)
        hypernet = trained.model
    if not isinstance(hypernet, HyperNetwork | HyperModule):
        raise TypeError(f"generate() takes a HyperNetwork, a HyperModule or a checkpoint path, "
                        f"got {type(hypernet).__name__}")
    if conditions is None:
        raise ValueError("a hypernetwork makes one network per condition: pass conditions")
    if device is not None:
        hypernet = hypernet.to(device)
    if as_params:
        with torch.no_grad():
            return hypernet.params(conditions) if isinstance(hypernet, HyperModule) \
                else hypernet(conditions)
    return hypernet.modules_for(conditions)


def metanetwork_edit(model: nn.Module, example_inputs, metanetwork) -> nn.Module:
    """A copy of ``model`` with the weights ``theta + delta`` that ``metanetwork`` (a checkpoint
    path, run directory, or loaded :class:`~weightspace.training.Trained`) outputs
    for it; buffers (BatchNorm statistics) are kept."""
    device = next(model.parameters()).device
    trained = load_trained(metanetwork, device, kind="metanetwork")
    if not trained.task.equivariant:
        raise ValueError(f"the metanetwork was trained for task {trained.task.name!r}, which "
                         f"predicts rather than edits weights; prune needs one trained with "
                         f"task=meta_prune")
    return predict(trained, [model], device=device, example_inputs=example_inputs)[0].eval()


def prune(model: nn.Module, example_inputs, speedup: float = 2.0, metanetwork=None,
          importance: str = "group_l2", finetune: Callable | dict | None = None,
          ignored_layers=None, data=None, finetune_data=None, calibrate=None,
          finetune_edited: Callable | dict | None = None, ratio: float | None = None
          ) -> tuple[nn.Module, PruneReport]:
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
    - ``ratio``: the pruning ratio of an earlier call's report (``report.ratio``): prune at it
      once instead of searching for the ratio that reaches ``speedup``.
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
            source = apply_finetune(source, finetune_edited, finetune_data,
                                    "finetune_edited").eval()
            report.notes.append("the edited network fine-tuned before pruning")
    pruned, report.ratio, report.passes = prune_search(source, inputs, speedup, importance,
                                                       ignored_layers, ratio=ratio)
    if calibrate is not None:
        recalibrate_batchnorm(pruned, calibrate)
    if data is not None:
        report.accuracy_before = accuracy(model, data)
        if metanetwork is not None:
            report.accuracy_edited = accuracy(source, data)
        report.accuracy_pruned = accuracy(pruned, data)
    if finetune is not None:
        pruned = apply_finetune(pruned, finetune, finetune_data, "finetune")
    report.macs_after, report.params_after = count_macs(pruned, inputs)
    report.widths_after = layer_widths(pruned)
    if data is not None:
        report.accuracy_after = accuracy(pruned, data)
    return pruned.eval(), report
