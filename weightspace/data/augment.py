"""Weight-space augmentations applied to a whole batch ``vecs [B, P]`` on its device.

- :func:`random_symmetries`: a different function-preserving transform per network (the
  networks' functions, hence their labels, are unchanged);
- :func:`gaussian_noise`: ``w + eps * std(W) * z`` with ``z ~ N(0, 1)``, where ``std(W)`` is the
  standard deviation of the tensor ``W`` that ``w`` belongs to, in that network;
- :func:`weight_dropout`: each weight set to 0 with probability ``p``;
- :func:`mixup`: ``lam * v_a + (1 - lam) * v_b`` with ``lam ~ Beta(alpha, alpha)`` and the
  targets mixed alike; with ``permute=True`` the partner ``v_b`` first gets a random hidden-neuron
  permutation (a function-preserving one), so that the two are mixed in an arbitrary alignment.

Each draws from ``generator`` when given, else from torch's global generator.
"""

from __future__ import annotations

import torch
from torch import Tensor

from weightspace.graph.spec import GraphSpec
from weightspace.graph.symmetry import sample_symmetries


def random_symmetries(spec: GraphSpec, vecs: Tensor, generator: torch.Generator | None = None,
                      buffers: Tensor | None = None, **kinds):
    """``vecs`` (and ``buffers``) with an independent random symmetry per row."""
    t = sample_symmetries(spec, vecs.shape[0], generator, **kinds)
    out = t(vecs)
    return out if buffers is None else (out, t.buffers(buffers))


def _tensor_ids(spec: GraphSpec, device) -> Tensor:
    ids = torch.empty(spec.num_params, dtype=torch.long)
    for i, slot in enumerate(spec.params.slots):
        ids[slot.offset : slot.stop] = i
    return ids.to(device)


def tensor_std(spec: GraphSpec, vecs: Tensor) -> Tensor:
    """``[B, T]``: the standard deviation of each parameter tensor of each network."""
    ids = _tensor_ids(spec, vecs.device).expand_as(vecs)
    T = len(spec.params.slots)
    count = torch.zeros(T, device=vecs.device, dtype=vecs.dtype).scatter_add_(
        0, ids[0], torch.ones_like(vecs[0]))
    total = torch.zeros(vecs.shape[0], T, device=vecs.device, dtype=vecs.dtype)
    mean = total.scatter_add(1, ids, vecs) / count
    sq = total.scatter_add(1, ids, (vecs - mean.gather(1, ids)) ** 2)
    return (sq / count).sqrt()


def gaussian_noise(spec: GraphSpec, vecs: Tensor, eps: float = 0.1,
                   generator: torch.Generator | None = None) -> Tensor:
    """Noise of ``eps`` times each tensor's own standard deviation (a constant tensor, such as
    a zero bias, stays as it is)."""
    ids = _tensor_ids(spec, vecs.device).expand_as(vecs)
    std = tensor_std(spec, vecs).gather(1, ids)
    z = torch.randn(vecs.shape, generator=generator, dtype=vecs.dtype).to(vecs.device)
    return vecs + eps * std * z


def weight_dropout(vecs: Tensor, p: float = 0.05, generator: torch.Generator | None = None
                   ) -> Tensor:
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    keep = torch.rand(vecs.shape, generator=generator).to(vecs.device) >= p
    return vecs * keep


def mixup(vecs: Tensor, targets: Tensor, alpha: float = 0.2,
          generator: torch.Generator | None = None, spec: GraphSpec | None = None,
          permute: bool = False) -> tuple[Tensor, Tensor, Tensor]:
    """Mixed weights, mixed targets, and the ``lam [B]`` each row used."""
    if permute and spec is None:
        raise ValueError("mixup with permute=True needs the spec")
    B = vecs.shape[0]
    partner = torch.randperm(B, generator=generator).to(vecs.device)
    lam = _beta(alpha, B, generator).to(device=vecs.device, dtype=vecs.dtype)
    other = vecs[partner]
    if permute:
        other = random_symmetries(spec, other, generator, sign=False, scale=False)
    mixed = lam.view(-1, 1) * vecs + (1 - lam.view(-1, 1)) * other
    t = targets.to(vecs.dtype)
    lam_t = lam.view(-1, *([1] * (t.dim() - 1)))
    return mixed, lam_t * t + (1 - lam_t) * t[partner], lam


def _beta(alpha: float, n: int, generator: torch.Generator | None) -> Tensor:
    """``n`` draws of Beta(alpha, alpha) by inverse transform sampling on a fine grid of its
    CDF (torch.distributions takes no generator, and augmentations must be reproducible)."""
    grid = torch.linspace(1e-6, 1 - 1e-6, 4097, dtype=torch.float64)
    density = (grid * (1 - grid)) ** (alpha - 1)
    cdf = torch.cumsum(density, 0)
    cdf = cdf / cdf[-1]
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return grid[torch.searchsorted(cdf, u).clamp(max=grid.numel() - 1)].float()


class Augment:
    """The augmentations of a training config, applied to each batch in turn: random
    symmetries, Gaussian noise, weight dropout, MixUp (which also mixes the encoded targets).

    Args:
        spec: the architecture of the weight rows to augment.
        symmetries: apply a random element of the spec's symmetry group to each row.
        noise: the std of Gaussian noise added to each weight, relative to its tensor's std.
        dropout: the probability of zeroing each weight.
        mixup: the Beta(mixup, mixup) parameter of MixUp; 0 turns it off.
        mixup_permute: give the MixUp partner a random hidden-neuron permutation first.
        generator: the random generator (default: torch's global one).
    """

    def __init__(self, spec: GraphSpec, symmetries: bool = False, noise: float = 0.0,
                 dropout: float = 0.0, mixup: float = 0.0, mixup_permute: bool = False,
                 generator: torch.Generator | None = None):
        if noise < 0 or mixup < 0:
            raise ValueError(f"augment.noise and augment.mixup must be >= 0, got {noise}, {mixup}")
        if not 0 <= dropout < 1:
            raise ValueError(f"augment.dropout must be in [0, 1), got {dropout}")
        self.spec, self.symmetries, self.noise, self.dropout = spec, symmetries, noise, dropout
        self.mixup, self.mixup_permute, self.generator = mixup, mixup_permute, generator

    def __call__(self, vecs: Tensor, buffers: Tensor | None, target: Tensor
                 ) -> tuple[Tensor, Tensor | None, Tensor]:
        g = self.generator
        if self.symmetries:
            if buffers is not None and buffers.shape[-1]:
                vecs, buffers = random_symmetries(self.spec, vecs, g, buffers)
            else:
                vecs = random_symmetries(self.spec, vecs, g)
        if self.noise:
            vecs = gaussian_noise(self.spec, vecs, self.noise, g)
        if self.dropout:
            vecs = weight_dropout(vecs, self.dropout, g)
        if self.mixup:
            vecs, target, _ = mixup(vecs, target, self.mixup, g, self.spec, self.mixup_permute)
        return vecs, buffers, target
