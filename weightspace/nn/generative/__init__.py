"""Generative models over weights: :class:`LatentDiffusion` over latent vectors and
:class:`WeightDiffusion`, an autoencoder of a zoo's networks with a diffusion model in its
latent space."""

from weightspace.nn.generative.diffusion import LatentDiffusion
from weightspace.nn.generative.weight_diffusion import WeightDiffusion

__all__ = ["LatentDiffusion", "WeightDiffusion"]
