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


def _rows(trained: TrainedMetanetwork, models) -> tuple[Tensor, Tensor | None]:
    spec = trained.spec
    if isinstance(models, Tensor):
        vecs = models if models.dim() == 2 else models.unsqueeze(0)
        if vecs.shape[1] != spec.num_params:
            raise SpecMismatchError(f"weight rows have {vecs.shape[1]} entries; the metanetwork "
                                    f"was trained on architecture {spec.id} with "
                                    f"{spec.num_params}")
        if len(spec.buffers):
            raise ValueError(f"architecture {spec.id} has buffers: pass the networks as modules")
        return vecs.float(), None
    vecs, bufs = [], []
    for i, m in enumerate(models):
        own = GraphSpec.from_module(m)
        if own.id != spec.id:
            raise SpecMismatchError(f"network {i} ({type(m).__name__}) has architecture "
                                    f"{own.id}; the metanetwork was trained on {spec.id}")
        vecs.append(spec.flatten(m))
        bufs.append(spec.flatten_buffers(m))
    return torch.stack(vecs), torch.stack(bufs)


@torch.no_grad()
def predict(checkpoint: str | os.PathLike | TrainedMetanetwork, models, batch_size: int = 256,
            device: str | torch.device = "cpu"):
    """What the metanetwork of ``checkpoint`` (a ``best.pt`` or a run directory) says about each
    of ``models`` (a list of ``nn.Module`` of the trained architecture, or ``vecs [B, P]``):

    - a property (``predict`` tasks): ``Tensor [N]`` in the target's units;
    - a class (``classify``): ``Tensor [N]`` of labels;
    - an edit (``edit``): the edited networks -- copies of ``models`` with ``theta + delta``
      (or ``Tensor [N, P]`` when ``models`` was a tensor).
    """
    trained = load_trained(checkpoint, device)
    vecs, bufs = _rows(trained, models)
    task, outs = trained.task, []
    for start in range(0, vecs.shape[0], batch_size):
        v = vecs[start : start + batch_size].to(device)
        b = None if bufs is None else bufs[start : start + batch_size].to(device)
        out = trained.model(v, b)
        if task.equivariant:
            outs.append((v + out).cpu())
        elif isinstance(task, Classification):
            outs.append(out.argmax(-1).cpu())
        else:
            outs.append(task.record(out, v, b, None).cpu())
    result = torch.cat(outs)
    if not task.equivariant or isinstance(models, Tensor):
        return result
    edited = []
    for m, row in zip(models, result, strict=True):
        new = copy.deepcopy(m)
        new.load_state_dict({**new.state_dict(), **trained.spec.params.unflatten(row)})
        edited.append(new)
    return edited
