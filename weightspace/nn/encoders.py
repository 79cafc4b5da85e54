"""Encoders of parameter-graph features into hidden vectors.

A scalar weight ``w`` can become Fourier features ``[w, sin(2 pi f_k w), cos(2 pi f_k w)]_k``
(fixed frequencies ``f_k`` spaced log-uniformly), meant to resolve small weight differences;
with ``k = 0`` it stays ``w``. On the digits_cnn zoo the raw values predicted better (see
benchmarks/RESULTS.md), so the metanetworks default to none. Integer attributes (node/edge
type, layer, activation, input/output id, kernel position) become learned embeddings; every id
is shifted by one so that ``-1`` ("none") has an embedding of its own, and ids past the table
are clamped to its last row.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FourierFeatures(nn.Module):
    r"""``w -> [w, \sin(2\pi f_k w), \cos(2\pi f_k w)]`` for ``k = 1..n`` per input scalar.

    Args:
        n: frequencies.
        max_freq: the largest frequency (log-spaced from 1).
    """

    def __init__(self, n: int = 8, max_freq: float = 64.0):
        super().__init__()
        self.register_buffer("freq", torch.logspace(0, math.log10(max_freq), n) * 2 * math.pi)
        self.n = n

    @property
    def out_multiplier(self) -> int:
        return 1 + 2 * self.n

    def forward(self, w: Tensor) -> Tensor:
        phase = w.unsqueeze(-1) * self.freq
        return torch.cat([w.unsqueeze(-1), phase.sin(), phase.cos()], -1).flatten(-2)

    def extra_repr(self) -> str:
        return f"n={self.n}"


class IdEmbedding(nn.Embedding):
    """An embedding of ids ``-1 .. num - 2``; larger ids share the last row."""

    def reset_parameters(self):
        # small next to the encoded weight values, so that at initialisation node and edge
        # states differ between networks by more than by their ids (N(0, 1) rows drowned them)
        nn.init.normal_(self.weight, std=0.1)

    def forward(self, ids: Tensor) -> Tensor:
        # ids come in the spec's compact integer types (int8 edge types, int16 positions)
        return super().forward((ids.long() + 1).clamp(0, self.num_embeddings - 1))


def value_encoder(d_in: int, hidden: int, nonlinear: bool) -> nn.Module:
    """``Linear(d_in, hidden)``, or with ``nonlinear`` an MLP ``d_in -> hidden -> hidden``.

    A linear code ``a w + c`` of a weight ``w`` loses its magnitude in the first LayerNorm of
    the message-passing blocks (for ``|w| >> |c|`` it normalises to about ``sign(w) a``); an
    MLP's code of ``w`` is not a line through ``c``, so its normalised form still tells
    ``w = 0.1`` from ``w = 3``.
    """
    if not nonlinear:
        return nn.Linear(d_in, hidden)
    return nn.Sequential(nn.Linear(d_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden))


class NodeEncoder(nn.Module):
    """``x [N, 3]`` (bias, running mean, running var), node ids and, with ``probes = K``, the
    probe values ``probe [N, K]`` (:mod:`weightspace.nn.probes`) -> ``[N, hidden]``.

    Args:
        hidden: the output width.
        fourier: Fourier frequencies of the values (0: the values only).
        max_layers: layer ids embedded (larger ones share a row).
        max_io: input/output ids embedded.
        num_types: node types embedded.
        num_activations: activations embedded.
        probes: ``K``, probe values per node (0: none).
        nonlinear: encode the values with an MLP (see :func:`value_encoder`).
    """

    def __init__(self, hidden: int, fourier: int = 0, max_layers: int = 64, max_io: int = 1024,
                 num_types: int = 16, num_activations: int = 16, probes: int = 0,
                 nonlinear: bool = False):
        super().__init__()
        self.fourier = FourierFeatures(fourier)
        self.value = value_encoder(3 * self.fourier.out_multiplier, hidden, nonlinear)
        self.probe = nn.Linear(probes, hidden) if probes else None
        self.node_type = IdEmbedding(num_types + 1, hidden)
        self.layer = IdEmbedding(max_layers + 1, hidden)
        self.activation = IdEmbedding(num_activations + 1, hidden)
        self.input_id = IdEmbedding(max_io + 1, hidden)
        self.output_id = IdEmbedding(max_io + 1, hidden)

    def forward(self, data) -> Tensor:
        h = (self.value(self.fourier(data.x)) + self.node_type(data.node_type)
             + self.layer(data.layer) + self.activation(data.activation)
             + self.input_id(data.input_id) + self.output_id(data.output_id))
        if self.probe is not None:
            if getattr(data, "probe", None) is None:
                raise ValueError(f"this encoder reads {self.probe.in_features} probe values per "
                                 f"node, and the batch has none (batch.probe)")
            h = h + self.probe(data.probe)
        return h


class EdgeEncoder(nn.Module):
    """``edge_attr [E, F]`` (a kernel on the canvas) and edge ids -> ``[E, hidden]``.

    Args:
        edge_features: ``F``, values per edge (the canvas size).
        hidden: the output width.
        fourier: Fourier frequencies of the values (0: the values only).
        num_types: edge types embedded.
        max_positions: kernel positions embedded.
        nonlinear: encode the values with an MLP (see :func:`value_encoder`).
    """

    def __init__(self, edge_features: int, hidden: int, fourier: int = 0, num_types: int = 32,
                 max_positions: int = 1024, nonlinear: bool = False):
        super().__init__()
        self.fourier = FourierFeatures(fourier)
        self.value = value_encoder(edge_features * self.fourier.out_multiplier, hidden,
                                   nonlinear)
        self.edge_type = IdEmbedding(num_types + 1, hidden)
        self.position = IdEmbedding(max_positions + 1, hidden)
        self.edge_features = edge_features

    def forward(self, data) -> Tensor:
        if data.edge_attr.shape[-1] != self.edge_features:
            raise ValueError(f"graphs have {data.edge_attr.shape[-1]} edge features, the encoder "
                             f"{self.edge_features}: build all graphs with one canvas")
        return (self.value(self.fourier(data.edge_attr)) + self.edge_type(data.edge_type)
                + self.position(data.edge_pos))
