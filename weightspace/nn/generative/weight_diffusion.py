"""``WeightDiffusion``: a generative model over the networks of one architecture.

Latent diffusion over weights, in the manner of p-diff (Wang et al. 2024): an autoencoder
compresses each network's flat weights ``theta [P]`` into a latent ``z``, and a
:class:`~weightspace.nn.generative.LatentDiffusion` learns the distribution of the latents.
A sample is ``decode(z)`` of a latent drawn by the diffusion model.

- **Encoder**: a metanetwork (:class:`~weightspace.nn.WeightSpaceModel`, by default the graph
  metanetwork) with ``latent`` invariant outputs, then a LayerNorm without affine parameters
  (every latent has mean 0 and variance 1 over its entries, the scale the diffusion expects).
  With an invariant encoder, every relabelling of a network's neurons encodes to the same
  latent.
- **Decoder**: an MLP from ``z`` to the network in the zoo's common frame (every training
  network aligned onto one reference, :func:`~weightspace.alignment.canonical.align_rows`),
  in per-coordinate standard units: ``theta = mean + std * MLP(z)``. The encoder is invariant
  and the target is the aligned copy, so the autoencoder learns one representative per
  function class, which is what makes a coordinate of the decoder's output mean the same
  neuron in every network.
- Training: the autoencoder on ``|| MLP(z + sigma_z xi) - (theta_aligned - mean) / std ||^2``
  (the latent noise ``sigma_z`` makes the decoder robust to the small errors of sampled
  latents, as p-diff does), then the diffusion on the frozen encoder's latents
  (:class:`~weightspace.tasks.generate_zoo.GenerateZoo` runs the two phases).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from weightspace.graph.spec import GraphSpec
from weightspace.nn.generative.diffusion import LatentDiffusion


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with SiLU between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class WeightDiffusion(nn.Module):
    """Autoencoder plus latent diffusion over the flat weights of one architecture.

    Args:
        spec: the architecture (no buffers).
        encoder: a module ``(vecs [B, P], buffers, arch) -> [B, latent]``.
        latent: the latent dimension.
        decoder_hidden: the decoder MLP's widths (a list) or one width for two layers.
        diffusion: the latent diffusion model.
        latent_noise: ``sigma_z``, the noise added to latents before decoding in training.

    Shapes:
        vecs: ``[B, P]`` in ``spec``'s flat layout; latents ``[B, latent]``; conditions
        ``[B]`` in ``[0, 1]``.
    """

    def __init__(self, spec: GraphSpec, encoder: nn.Module, latent: int,
                 decoder_hidden: int | list[int], diffusion: LatentDiffusion,
                 latent_noise: float = 0.1):
        super().__init__()
        if len(spec.buffers):
            raise ValueError(f"architecture {spec.id} has buffers (BatchNorm statistics): the "
                             f"weight diffusion model generates weights alone")
        if diffusion.latent != latent:
            raise ValueError(f"the diffusion model works on {diffusion.latent} dimensions, the "
                             f"autoencoder's latent has {latent}")
        self.spec, self.latent, self.latent_noise = spec, latent, latent_noise
        self.encoder, self.diffusion = encoder, diffusion
        widths = [decoder_hidden] * 2 if isinstance(decoder_hidden, int) else list(decoder_hidden)
        self.decoder = mlp([latent, *widths, spec.num_params])
        P = spec.num_params
        # the common frame's statistics and reference, set by fit_frame from the training zoo
        self.register_buffer("mean", torch.zeros(P))
        self.register_buffer("std", torch.ones(P))
        self.register_buffer("reference", torch.zeros(P))

    @torch.no_grad()
    def fit_frame(self, aligned: Tensor, reference: Tensor):
        """Per-coordinate statistics of the aligned training networks ``[N, P]`` and the
        reference they are aligned to."""
        self.mean.copy_(aligned.mean(0))
        # a coordinate that hardly varies is still given a scale of its tensor's order
        floor = 1e-3 * aligned.std().clamp_min(1e-8)
        self.std.copy_(aligned.std(0).nan_to_num(0.0).clamp_min(float(floor)))
        self.reference.copy_(reference)

    def encode(self, vecs: Tensor) -> Tensor:
        """``[B, latent]``: the latents of networks ``vecs [B, P]`` (in any labelling)."""
        return F.layer_norm(self.encoder(vecs, None, 0).float(), (self.latent,))

    def decode(self, z: Tensor) -> Tensor:
        """``[B, P]``: the networks of latents ``z``, in the common frame."""
        return self.mean + self.std * self.decoder(z)

    def reconstruction_loss(self, vecs: Tensor, aligned: Tensor,
                            generator: torch.Generator | None = None, z: Tensor | None = None
                            ) -> Tensor:
        """The decoder's error on networks ``vecs`` whose aligned copies are ``aligned``, in
        per-coordinate standard units (latent noise in training); ``z``: their latents."""
        z = self.encode(vecs) if z is None else z
        if self.training and self.latent_noise:
            z = z + self.latent_noise * torch.randn(z.shape, generator=generator).to(z)
        return F.mse_loss(self.decoder(z).float(), (aligned - self.mean) / self.std)

    def losses(self, vecs: Tensor, aligned: Tensor, condition: Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(reconstruction, diffusion)`` losses of networks ``vecs`` whose aligned copies are
        ``aligned`` (the decoder's targets)."""
        z = self.encode(vecs)
        return (self.reconstruction_loss(vecs, aligned, generator, z),
                self.diffusion.loss(z.detach(), condition, generator))

    def forward(self, vecs: Tensor, buffers: Tensor | None = None, arch: int = 0) -> Tensor:
        """The reconstruction ``decode(encode(vecs))`` ``[B, P]``."""
        return self.decode(self.encode(vecs))

    @torch.no_grad()
    def sample(self, n: int, condition: Tensor | float | None = None, steps: int | None = None,
               guidance: float = 0.0, generator: torch.Generator | None = None) -> Tensor:
        """``[n, P]``: ``n`` new networks (conditions in ``[0, 1]``, one or ``n``)."""
        z = self.diffusion.sample(n, condition, steps, guidance, generator)
        return self.decode(z)
