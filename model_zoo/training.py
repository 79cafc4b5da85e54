"""Vectorised training: B networks of one architecture trained at once with ``torch.func``.

The B parameter sets are stacked into tensors ``theta[B, ...]``; one step is

    g_b = grad_theta_b sum_b' L(f(x_b'; theta_b'), y_b')   (autograd through a vmapped forward)
    theta_b <- opt_b(theta_b, g_b; lr_b, wd_b)         (vectorised Adam / SGD / RMSprop)

with each network's own minibatch ``x_b`` (its own train subset, its own shuffling), its own
learning rate and weight decay. The optimisers follow ``torch.optim``'s update rules exactly
(L2 weight decay added to the gradient), so a network trained here equals the same run trained
alone with ``torch.optim`` (see :func:`train_alone`). A network whose epoch is shorter (a
smaller train fraction) is masked out for the remaining steps of the epoch.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SGD_MOMENTUM, ADAM_BETAS, RMSPROP_ALPHA, EPS = 0.9, (0.9, 0.999), 0.99, 1e-8


@dataclass
class Checkpoint:
    """The state of ``B`` networks trained together, at one step.

    Args:
        epoch: the epoch just finished.
        step: optimiser steps so far.
        flat: ``[B, P]`` each network's parameters in ``named_parameters()`` order.
        params: ``name -> [B, ...]``, views into ``flat``.
        buffers: ``name -> [B, ...]`` (BatchNorm statistics), maybe empty.
    """

    epoch: int
    step: int
    flat: Tensor  # [B, P]: each network's parameters in named_parameters() order
    params: dict[str, Tensor]  # name -> [B, ...], views into `flat`
    buffers: dict[str, Tensor]  # name -> [B, ...] (BatchNorm statistics), maybe empty


def epoch_batches(subsets: list[Tensor], batch_size: int, epoch: int, seeds: list[int]
                  ) -> tuple[Tensor, Tensor]:
    """Minibatch indices of one epoch for each network: ``[B, steps, batch_size]`` and the
    mask ``[B, steps]`` of steps that network takes. Network b shuffles its own subset with
    the generator seeded ``(seeds[b], epoch)``; its last batch wraps to stay full-size."""
    steps = [math.ceil(len(s) / batch_size) for s in subsets]
    T = max(steps)
    idx = torch.zeros(len(subsets), T, batch_size, dtype=torch.long)
    active = torch.zeros(len(subsets), T, dtype=torch.bool)
    for b, subset in enumerate(subsets):
        g = torch.Generator().manual_seed(seeds[b] * 100_003 + epoch)
        order = subset[torch.randperm(len(subset), generator=g)]
        need = steps[b] * batch_size
        order = order.repeat(math.ceil(need / len(order)))[:need]
        idx[b, : steps[b]] = order.view(steps[b], batch_size)
        active[b, : steps[b]] = True
    return idx, active


def stack_buffers(models: list[nn.Module]) -> dict[str, Tensor]:
    """The persistent buffers of B networks, stacked; updated in place by vmapped forwards."""
    keep = set(models[0].state_dict())
    return {name: torch.stack([dict(m.named_buffers())[name].detach().clone() for m in models])
            for name, _ in models[0].named_buffers() if name in keep}


def unstack(template: nn.Module, params: dict[str, Tensor], b: int) -> nn.Module:
    model = copy.deepcopy(template)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name][b])
    return model


class VectorOptimizer:
    """Adam, SGD with momentum, or RMSprop for B networks at once, per-network lr and wd.

    Works on the flat ``[B, P]`` matrix of all parameters (see :class:`FlatParams`), so one
    update is a dozen elementwise operations, whatever the number of parameter tensors.

    Args:
        kind: ``"adam"``, ``"sgd"`` or ``"rmsprop"``.
        flat: ``[B, P]`` the parameters, updated in place.
        lr: ``[B]`` learning rates.
        weight_decay: ``[B]`` L2 weight decays.
    """

    def __init__(self, kind: str, flat: Tensor, lr: Tensor, weight_decay: Tensor):
        if kind not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        self.kind = kind
        self.lr = lr.to(flat.device, flat.dtype).view(-1, 1)
        self.wd = weight_decay.to(flat.device, flat.dtype).view(-1, 1)
        self.m, self.v = torch.zeros_like(flat), torch.zeros_like(flat)
        # bias corrections in double
        self.t = torch.zeros(len(lr), 1, dtype=torch.float64, device=flat.device)

    def step(self, p: Tensor, grad: Tensor, active: Tensor) -> Tensor:
        """The updated ``[B, P]`` parameters; networks with ``active[b] == False`` keep theirs."""
        on = active.to(p.device).view(-1, 1)
        self.t = self.t + on.double()
        g = grad + self.wd * p
        m, v = self.m, self.v
        if self.kind == "sgd":
            # torch.optim.SGD starts the momentum buffer at the first gradient.
            m_new = torch.where(self.t > 1, SGD_MOMENTUM * m + g, g)
            v_new, update = v, self.lr * m_new
        elif self.kind == "adam":
            # In torch.optim.Adam's order of operations, so that results match to rounding.
            b1, b2 = ADAM_BETAS
            m_new = m.lerp(g, 1 - b1)
            v_new = v * b2 + (1 - b2) * g * g
            t = self.t.clamp(min=1)
            step_size = (self.lr.double() / (1 - b1**t)).to(p.dtype)
            denom = v_new.sqrt() / (1 - b2**t).sqrt().to(p.dtype) + EPS
            update = step_size * (m_new / denom)
        else:
            v_new = RMSPROP_ALPHA * v + (1 - RMSPROP_ALPHA) * g * g
            m_new, update = m, self.lr * g / (v_new.sqrt() + EPS)
        if bool(on.all()):
            self.m, self.v = m_new, v_new
            return p - update
        self.m, self.v = torch.where(on, m_new, m), torch.where(on, v_new, v)
        return torch.where(on, p - update, p)


class FlatParams:
    """The parameters of B networks as one ``[B, P]`` matrix and, as views into it, a dict
    ``name -> [B, *shape]`` for ``functional_call``.

    Args:
        models: ``B`` networks of one architecture; their parameters are copied in.
    """

    def __init__(self, models: list[nn.Module]):
        self.names = [n for n, _ in models[0].named_parameters()]
        self.shapes = [p.shape for _, p in models[0].named_parameters()]
        self.flat = torch.stack([torch.cat([p.detach().reshape(-1) for p in m.parameters()])
                                 for m in models])

    def views(self, flat: Tensor) -> dict[str, Tensor]:
        out, offset = {}, 0
        for name, shape in zip(self.names, self.shapes, strict=True):
            n = math.prod(shape)
            out[name] = flat[:, offset : offset + n].view(-1, *shape)
            offset += n
        return out


def batched_grad(loss: Callable, fp: FlatParams, flat: Tensor, *data
                 ) -> tuple[Tensor, Tensor]:
    """Per-network losses ``[B]`` and gradients ``[B, P]`` in one backward pass.

    The networks are independent, so the gradient of ``sum_b L_b`` with respect to
    ``theta_b`` is exactly ``grad L_b``: plain autograd through a vmapped forward gives all B
    gradients at once, already as the flat matrix the optimiser updates.
    """
    leaf = flat.detach().requires_grad_(True)
    losses = vmap(loss, randomness="different")(fp.views(leaf), *data)
    (g,) = torch.autograd.grad(losses.sum(), leaf)
    return losses.detach(), g


def train_vmapped(
    template: nn.Module,
    models: list[nn.Module],
    x: Tensor,
    y: Tensor,
    subsets: list[Tensor],
    seeds: list[int],
    lr: Tensor,
    weight_decay: Tensor,
    optimizer: str,
    epochs: int,
    batch_size: int,
    checkpoint_epochs: list[int],
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    on_step: Callable[[], None] | None = None,
) -> list[Checkpoint]:
    """Train ``models`` (same architecture as ``template``) together; checkpoints as stacks.
    Everything runs on the device of ``x`` (the models' weights are copied there); the
    minibatch order is drawn on the CPU, so a run trains alike on every device."""
    device = x.device
    fp = FlatParams(models)
    fp.flat = fp.flat.to(device)
    flat = fp.flat
    # BatchNorm statistics: updated in place, per network
    buffers = {k: v.to(device) for k, v in stack_buffers(models).items()}
    opt = VectorOptimizer(optimizer, flat, lr, weight_decay)
    template = copy.deepcopy(template).train()

    def loss(p, b, xb, yb):
        return loss_fn(functional_call(template, (p, b), (xb,)), yb)

    checkpoints, step = [], 0
    for epoch in range(1, epochs + 1):
        idx, active = epoch_batches(subsets, batch_size, epoch, seeds)
        idx, active = idx.to(device), active.to(device)
        for t in range(idx.shape[1]):
            xb, yb = x[idx[:, t]], y[idx[:, t]]
            on = active[:, t]
            # A network past the end of its (shorter) epoch still runs the forward: keep its
            # BatchNorm statistics as they were, as its parameters are.
            kept = None if bool(on.all()) else {k: v.clone() for k, v in buffers.items()}
            _, grads = batched_grad(loss, fp, flat, buffers, xb, yb)
            flat = opt.step(flat, grads, on)
            if kept is not None:
                for k, v in buffers.items():
                    v.copy_(torch.where(on.view(-1, *([1] * (v.dim() - 1))), v, kept[k]))
            step += 1
            if on_step is not None:
                on_step()
        if epoch in checkpoint_epochs:
            kept_flat = flat.clone()
            checkpoints.append(Checkpoint(epoch, step, kept_flat, fp.views(kept_flat),
                                          {k: v.clone() for k, v in buffers.items()}))
    return checkpoints


def train_alone(model: nn.Module, x: Tensor, y: Tensor, subset: Tensor, seed: int, lr: float,
                weight_decay: float, optimizer: str, epochs: int, batch_size: int,
                loss_fn=F.cross_entropy) -> nn.Module:
    """The reference: one network, a plain loop with ``torch.optim``, the same minibatches."""
    model = copy.deepcopy(model).train()
    opts = {
        "adam": lambda p: torch.optim.Adam(p, lr=lr, betas=ADAM_BETAS, eps=EPS,
                                           weight_decay=weight_decay),
        "sgd": lambda p: torch.optim.SGD(p, lr=lr, momentum=SGD_MOMENTUM,
                                         weight_decay=weight_decay),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=lr, alpha=RMSPROP_ALPHA, eps=EPS,
                                                 weight_decay=weight_decay),
    }
    opt = opts[optimizer](model.parameters())
    for epoch in range(1, epochs + 1):
        idx, active = epoch_batches([subset], batch_size, epoch, [seed])
        for t in range(idx.shape[1]):
            if not active[0, t]:
                continue
            opt.zero_grad()
            loss_fn(model(x[idx[0, t]]), y[idx[0, t]]).backward()
            opt.step()
    return model


@torch.no_grad()
def evaluate_vmapped(template: nn.Module, params: dict[str, Tensor], x: Tensor, y: Tensor,
                     loss_fn=F.cross_entropy, buffers: dict[str, Tensor] | None = None
                     ) -> tuple[Tensor, Tensor]:
    """Loss and accuracy ``[B]`` of every network on one dataset (eval mode)."""
    template = copy.deepcopy(template).eval()

    def run(p, b):
        logits = functional_call(template, (p, b), (x,))
        return loss_fn(logits, y), (logits.argmax(-1) == y).float().mean()

    return vmap(run)(params, buffers or {})
