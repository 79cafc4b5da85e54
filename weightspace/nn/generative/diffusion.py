"""``LatentDiffusion``: a denoising diffusion model over latent vectors, optionally conditioned.

The forward process adds Gaussian noise to a latent ``z_0`` in ``T`` steps,

.. math::
    q(z_t \\mid z_0) = \\mathcal{N}\\big(\\sqrt{\\bar\\alpha_t}\\, z_0,\\;
    (1 - \\bar\\alpha_t) I\\big),

with the cosine schedule of Nichol & Dhariwal (2021) for ``alpha_bar``. A network
``eps_theta(z_t, t, c)`` learns the noise (Ho et al. 2020): the loss is
``|| eps - eps_theta(sqrt(abar_t) z_0 + sqrt(1 - abar_t) eps, t, c) ||^2``. Sampling runs the
deterministic DDIM update (Song et al. 2021) over ``steps`` of the ``T`` timesteps, so that a
sample costs ``steps`` denoiser calls, not ``T``.

Conditioning is classifier-free (Ho & Salimans 2022): during training the condition ``c`` (one
number in ``[0, 1]`` per latent, e.g. the quantile of a network's accuracy) is replaced by a
learned "no condition" embedding with probability ``uncond_prob``, and at sampling time
``eps = (1 + w) eps(z, t, c) - w eps(z, t, none)`` with guidance ``w``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def cosine_alpha_bar(timesteps: int, offset: float = 0.008) -> Tensor:
    """``alpha_bar_t`` for ``t = 0 .. T-1`` (float64), the cosine schedule, kept in
    ``[1e-5, 1)`` so that the last step still carries a trace of the signal."""
    s = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((s + offset) / (1 + offset) * math.pi / 2) ** 2
    return (f[1:] / f[0]).clamp(1e-5, 1 - 1e-7)


def fourier_embedding(x: Tensor, width: int) -> Tensor:
    """``[B, width]``: sines and cosines of ``x [B]`` (in ``[0, 1]``) at geometric
    frequencies from 1 to 1000 cycles."""
    freqs = torch.exp(torch.linspace(0, math.log(1000.0), width // 2, device=x.device))
    angles = 2 * math.pi * x.float().unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class _Block(nn.Module):
    """``x + W2 silu(W1 LN(x) + emb)``: a residual MLP block that reads the embedding."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.inner = nn.Linear(hidden, hidden)
        self.outer = nn.Linear(hidden, hidden)

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        return x + self.outer(F.silu(self.inner(self.norm(x)) + emb))


class LatentDiffusion(nn.Module):
    """A diffusion model over ``latent``-dimensional vectors (see the module docstring).

    Args:
        latent: the dimension of the vectors.
        hidden: the denoiser's width.
        depth: its residual blocks.
        timesteps: ``T``, the steps of the forward process.
        conditioned: whether it takes a condition ``c`` in ``[0, 1]``.
        uncond_prob: the probability that training drops the condition (classifier-free
            guidance needs the unconditional model too).

    Shapes:
        z: ``[B, latent]``; t: ``[B]`` integers in ``[0, T)``; c: ``[B]`` in ``[0, 1]``.
    """

    def __init__(self, latent: int, hidden: int = 256, depth: int = 3, timesteps: int = 1000,
                 conditioned: bool = False, uncond_prob: float = 0.1):
        super().__init__()
        self.latent, self.timesteps, self.conditioned = latent, timesteps, conditioned
        self.uncond_prob = uncond_prob
        self.register_buffer("alpha_bar", cosine_alpha_bar(timesteps).float())
        self.embed_t = nn.Sequential(nn.Linear(64, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        if conditioned:
            self.embed_c = nn.Sequential(nn.Linear(32, hidden), nn.SiLU(),
                                         nn.Linear(hidden, hidden))
            self.no_condition = nn.Parameter(torch.zeros(hidden))
        self.inp = nn.Linear(latent, hidden)
        self.blocks = nn.ModuleList(_Block(hidden) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, latent))
        nn.init.zeros_(self.out[1].weight)  # a fresh denoiser predicts no noise
        nn.init.zeros_(self.out[1].bias)

    def _embedding(self, t: Tensor, c: Tensor | None, drop: Tensor | None = None) -> Tensor:
        emb = self.embed_t(fourier_embedding(t.float() / self.timesteps, 64))
        if not self.conditioned:
            return emb
        if c is None:
            return emb + self.no_condition
        cond = self.embed_c(fourier_embedding(c, 32))
        if drop is not None:
            cond = torch.where(drop.unsqueeze(-1), self.no_condition.expand_as(cond), cond)
        return emb + cond

    def forward(self, z: Tensor, t: Tensor, c: Tensor | None = None,
                drop: Tensor | None = None) -> Tensor:
        """``eps_theta(z_t, t, c)``; ``drop [B]`` (bool) replaces ``c`` by "no condition"."""
        if self.conditioned is False and c is not None:
            raise ValueError("this diffusion model was trained without a condition")
        emb = self._embedding(t, c, drop)
        x = self.inp(z)
        for block in self.blocks:
            x = block(x, emb)
        return self.out(x)

    def loss(self, z0: Tensor, c: Tensor | None = None,
             generator: torch.Generator | None = None) -> Tensor:
        """The noise-prediction loss of clean latents ``z0 [B, latent]`` at random steps."""
        B = z0.shape[0]
        t = torch.randint(0, self.timesteps, (B,), generator=generator).to(z0.device)
        eps = torch.randn(z0.shape, generator=generator).to(z0)
        abar = self.alpha_bar[t].unsqueeze(-1)
        zt = abar.sqrt() * z0 + (1 - abar).sqrt() * eps
        drop = None
        if self.conditioned and c is not None:
            drop = (torch.rand(B, generator=generator) < self.uncond_prob).to(z0.device)
        return F.mse_loss(self(zt, t, c if self.conditioned else None, drop), eps)

    @torch.no_grad()
    def sample(self, n: int, c: Tensor | float | None = None, steps: int | None = None,
               guidance: float = 0.0, generator: torch.Generator | None = None,
               clip: float = 6.0) -> Tensor:
        """``[n, latent]`` latents drawn by ``steps`` DDIM steps (default 50, or ``T`` when
        smaller; ``c``: the conditions, one or ``[n]``; ``guidance``: the classifier-free
        weight ``w``; ``clip``: the bound of each predicted clean latent, which keeps early
        steps from overshooting)."""
        steps = min(50, self.timesteps) if steps is None else steps
        if not 1 <= steps <= self.timesteps:
            raise ValueError(f"steps must be in [1, {self.timesteps}], got {steps}")
        device = self.alpha_bar.device
        if c is not None:
            if not self.conditioned:
                raise ValueError("this diffusion model was trained without a condition")
            c = torch.as_tensor(c, dtype=torch.float32, device=device).expand(n)
        z = torch.randn((n, self.latent), generator=generator).to(device)
        times = torch.linspace(self.timesteps - 1, 0, steps, device=device).round().long()
        for i, t in enumerate(times):
            tt = t.expand(n)
            eps = self(z, tt, c)
            if c is not None and guidance:
                eps = (1 + guidance) * eps - guidance * self(z, tt, None)
            abar = self.alpha_bar[t]
            prev = self.alpha_bar[times[i + 1]] if i + 1 < steps else torch.ones_like(abar)
            z0 = ((z - (1 - abar).sqrt() * eps) / abar.sqrt()).clamp(-clip, clip)
            z = prev.sqrt() * z0 + (1 - prev).sqrt() * eps
        return z

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(latent={self.latent}, timesteps={self.timesteps}, "
                f"blocks={len(self.blocks)}, conditioned={self.conditioned})")
