"""``batched_forward``: run one architecture under B weight sets at once.

For weight sets ``theta_1 .. theta_B`` of a module ``f`` and an input ``x``, returns
``[f(x; theta_1), ..., f(x; theta_B)]`` stacked on a leading axis, computed as
``vmap(functional_call)`` -- one traced forward over stacked tensors instead of B Python-level
forwards -- or, for a plain ``nn.Sequential`` of dense layers and elementwise modules, directly
as one batched matmul per layer (:mod:`weightspace.functional.batched_sequential`).
``params`` is either a flat matrix ``[B, P]`` in the module's
:class:`~weightspace.graph.GraphSpec` layout (the rows of a zoo, or a hypernetwork's output) or
a dict ``name -> [B, *shape]``; names it leaves out fall
back to the module's own tensors (shared by all B), and names the module does not have are
refused.

Buffers (BatchNorm statistics) are the module's own unless ``buffers`` gives them per weight
set (``[B, Q]`` in the spec's buffer layout, or a dict). The module runs in eval mode unless
``train=True``; dropout then needs ``randomness="different"`` (or ``"same"``), as in
:func:`torch.vmap`. Batch statistics in train mode are computed per weight set, but the running
statistics are not updated (they would be written B times into one tensor). Gradients flow to
``params`` (and ``x``) through the vmap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call

import weightspace.functional.batched_sequential as batched_sequential
from weightspace.errors import SpecMismatchError
from weightspace.graph.layout import buffer_layout, parameter_layout


def _as_dict(module: nn.Module, values, what: str, layout_of) -> dict[str, Tensor]:
    if isinstance(values, Tensor):
        if values.dim() != 2:
            raise SpecMismatchError(f"flat {what} must be a [B, N] matrix, got shape "
                                    f"{list(values.shape)}")
        layout = layout_of(module)
        if values.shape[1] != len(layout):
            raise SpecMismatchError(f"flat {what} have {values.shape[1]} entries per row, the "
                                    f"module's layout has {len(layout)}")
        # views into the matrix (no copy for a matching dtype; gradients reach ``values``), in
        # each tensor's own dtype: buffer rows are float64, counters are integers. The slots
        # tile the row in order, so one split makes them all (its backward is one concatenation,
        # not one zero-filled [B, N] gradient per slice)
        parts = values.split([s.numel for s in layout.slots], dim=1)
        return {s.name: part.view(-1, *s.shape).to(getattr(torch, s.dtype))
                for s, part in zip(layout.slots, parts, strict=True)}
    if isinstance(values, Mapping):
        return dict(values)
    raise TypeError(f"{what} must be a [B, N] tensor or a dict name -> [B, *shape], got "
                    f"{type(values).__name__}")


def _check_names(batched: dict[str, Tensor], own: dict[str, Tensor], what: str):
    unknown = sorted(set(batched) - set(own))
    if unknown:
        raise KeyError(f"the module has no {what} named {', '.join(map(repr, unknown))}")
    sizes = {v.shape[0] for v in batched.values()}
    if len(sizes) > 1:
        raise ValueError(f"batched {what} disagree on the number of weight sets: {sorted(sizes)}")
    for name, v in batched.items():
        if v.shape[1:] != own[name].shape:
            raise SpecMismatchError(f"{what} {name!r}: got [B, {', '.join(map(str, v.shape[1:]))}]"
                                    f", the module's is {list(own[name].shape)}")


def _check_finite(params: dict[str, Tensor], flat: Tensor | None = None):
    """A ``ValueError`` naming the first tensor that holds NaN or inf. One reduction and one
    device sync for all tensors (NaN and inf survive a sum) -- over the flat matrix itself when
    the parameters came as one; the per-tensor search runs only when that sum is not finite
    (which a sum overflowing to inf also triggers, and the search then clears)."""
    floats = [(n, t.detach()) for n, t in params.items() if t.is_floating_point()]
    if not floats:
        return
    if flat is not None and flat.is_floating_point():
        total = flat.detach().sum()
    else:
        total = torch.stack([t.sum().float() for _, t in floats]).sum()
    if torch.isfinite(total):
        return
    for name, t in floats:
        if not torch.isfinite(t).all():
            raise ValueError(f"parameter {name!r} holds NaN or inf values")


@contextlib.contextmanager
def _mode(module: nn.Module, train: bool):
    """``module.train(train)`` for the duration, the previous flags restored after."""
    flags = {m: m.training for m in module.modules()}
    if all(flag == train for flag in flags.values()):  # the common case: nothing to switch
        yield
        return
    module.train(train)
    try:
        yield
    finally:
        for m, flag in flags.items():
            m.training = flag


RUNNING_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _running_stat_names(module: nn.Module) -> set[str]:
    return {f"{path}.{name}" if path else name
            for path, m in module.named_modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
            for name in RUNNING_STATS}


@contextlib.contextmanager
def _without_running_stats(module: nn.Module):
    """Batch norms use batch statistics and write no running ones (with all three set to
    ``None``, ``F.batch_norm`` normalises by the batch and updates nothing)."""
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(m, [getattr(m, n) for n in RUNNING_STATS]) for m in norms]
    for m in norms:
        for n in RUNNING_STATS:
            setattr(m, n, None)
    try:
        yield
    finally:
        for m, values in saved:
            for n, v in zip(RUNNING_STATS, values, strict=True):
                setattr(m, n, v)


def batched_forward(module: nn.Module, params: Tensor | Mapping[str, Tensor], x,
                    buffers: Tensor | Mapping[str, Tensor] | None = None, *,
                    chunk_size: int | str | None = "auto", train: bool = False,
                    randomness: str = "error", x_batched: bool = False) -> Tensor:
    """``[B, *out]``: ``module`` evaluated on ``x`` under each of the B weight sets.

    ``x`` is shared by all weight sets, or with ``x_batched=True`` has a leading ``B`` axis (one
    input per weight set). ``chunk_size`` runs the weight sets that many at a time (bounding
    memory; the result is the same); ``None`` runs them all at once; ``"auto"`` (the default)
    chooses, for a stack of dense layers on the CPU, the largest chunk whose widest activation
    fits the L2 cache, and the layout of its products
    (:func:`~weightspace.functional.batched_sequential.auto_chunk`: at a few hundred inputs
    and more, one batched product over every weight set streams through memory and loses to
    a loop), and all at once otherwise. See the module docstring for ``params`` and
    ``buffers``.
    """
    if not (chunk_size in (None, "auto") or isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"chunk_size must be a positive int, None or 'auto', got "
                         f"{chunk_size!r}")
    own_params = dict(module.named_parameters())
    own_buffers = dict(module.named_buffers())
    p = _as_dict(module, params, "parameters", parameter_layout)
    _check_names(p, own_params, "parameter")
    b = {} if buffers is None else _as_dict(module, buffers, "buffers", buffer_layout)
    _check_names(b, own_buffers, "buffer")
    sizes = {v.shape[0] for v in (*p.values(), *b.values())}
    if len(sizes) != 1:
        raise ValueError(f"parameters and buffers disagree on the number of weight sets: "
                         f"{sorted(sizes)}" if sizes else "no batched parameters given")
    _check_finite(p, params if isinstance(params, Tensor) else None)
    # a stack of dense layers (no buffers, so none given): one batched matmul per layer, no vmap
    layers = None if b else batched_sequential.plan(module, train)
    if layers is not None:
        columns = True
        if chunk_size == "auto":
            chunk_size, columns = batched_sequential.auto_chunk(layers, x, x_batched,
                                                                sizes.pop())
        return batched_sequential.run(layers, p, x, x_batched, chunk_size, columns)
    if chunk_size == "auto":
        chunk_size = None
    shared = {k: v for k, v in {**own_params, **own_buffers}.items() if k not in p and k not in b}
    if train:  # running statistics are neither read nor written in train mode
        for name in _running_stat_names(module):
            shared.pop(name, None)
            b.pop(name, None)

    def one(p_b, b_b, x_b):
        return functional_call(module, {**shared, **p_b, **b_b}, (x_b,), strict=False)

    run = torch.vmap(one, in_dims=(0, 0, 0 if x_batched else None), chunk_size=chunk_size,
                     randomness=randomness)
    with _mode(module, train), (_without_running_stats(module) if train
                                else contextlib.nullcontext()):
        return run(p, b, x)
