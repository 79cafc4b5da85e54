"""``weightspace.predict``: a trained metanetwork applied to networks a user has in hand."""

from __future__ import annotations

import copy
import os

import torch
from torch import Tensor

from weightspace.checkpoint import TrainedMetanetwork, load_trained
from weightspace.errors import SpecMismatchError
from weightspace.graph.spec import GraphSpec
from weightspace.tasks import Classification


def _rows(trained: TrainedMetanetwork, models, arch: str | None, example_inputs=None
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
def predict(checkpoint: str | os.PathLike | TrainedMetanetwork, models, batch_size: int = 256,
            device: str | torch.device = "cpu", arch: str | None = None, example_inputs=None):
    """What the metanetwork of ``checkpoint`` (a ``best.pt`` or a run directory) says about each
    of ``models`` (a list of ``nn.Module`` of the trained architecture, or ``vecs [B, P]``):

    - a property (``predict`` tasks): ``Tensor [N]`` in the target's units;
    - a class (``classify``): ``Tensor [N]`` of labels;
    - an edit (``edit``): the edited networks -- copies of ``models`` with ``theta + delta``
      (or ``Tensor [N, P]`` when ``models`` was a tensor).

    A metanetwork trained on several architectures takes networks of any of them (tensor rows:
    name the architecture with ``arch=``). ``example_inputs`` trace modules that cannot say
    what they take (see :func:`~weightspace.graph.spec.default_example_inputs`).
    """
    trained = load_trained(checkpoint, device)
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
        new = copy.deepcopy(m)
        new.load_state_dict({**new.state_dict(), **trained.specs[a].params.unflatten(row)})
        edited.append(new)
    return edited
