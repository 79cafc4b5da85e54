"""Scale matching: the positive rescaling of neurons that brings one network closest to another.

Behind a positively homogeneous activation (ReLU, LeakyReLU, identity), a neuron's incoming
weights and bias may be multiplied by ``d > 0`` and its outgoing weights divided by ``d``
without changing the function. After the neurons are matched (weight or activation matching),
each such neuron ``i`` of ``other`` takes the ``d_i`` minimising

.. math::
    \\| a_{in} - d\\, b_{in} \\|^2 + \\| a_{out} - b_{out} / d \\|^2,

where ``a`` are the reference's entries of the neuron and ``b`` the other's (incoming: weights
into it and its bias; outgoing: weights out of it). Setting the derivative to zero gives the
quartic ``|b_in|^2 d^4 - <a_in, b_in> d^3 + <a_out, b_out> d - |b_out|^2 = 0``; its best positive
root is taken. A neuron's entries also move with its neighbours' scales, so the sets are
visited in turn, from inputs to outputs, for a few sweeps (coordinate descent; every step
lowers the distance). Read off the :class:`~weightspace.graph.GraphSpec`, like the matching.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from weightspace.alignment.weight_matching import features, matching_groups
from weightspace.graph.entry_moves import entry_moves
from weightspace.graph.spec import GraphSpec
from weightspace.graph.symmetry import SymmetryTransform, node_transform

SWEEPS = 100  # at most; it stops once no neuron moves by more than 1e-9 (log scale)


def _best_scales(a_in: np.ndarray, b_in: np.ndarray, a_out: np.ndarray, b_out: np.ndarray
                 ) -> np.ndarray:
    """``[n]``: for every row ``i``, the ``d > 0`` minimising ``|a_in[i] - d b_in[i]|^2 +
    |a_out[i] - b_out[i] / d|^2`` (1 where there is none). The quartics' roots are the
    eigenvalues of their companion matrices, all rows in one batched ``eigvals``."""
    bb_in, ab_in = (b_in * b_in).sum(1), (a_in * b_in).sum(1)
    bb_out, ab_out = (b_out * b_out).sum(1), (a_out * b_out).sum(1)
    d = np.ones(len(bb_in))
    ok = (bb_in > 0) & (bb_out > 0)
    if not ok.any():
        return d
    bb_in, ab_in, bb_out, ab_out = bb_in[ok], ab_in[ok], bb_out[ok], ab_out[ok]
    # bb_in d^4 - ab_in d^3 + ab_out d - bb_out, divided by bb_in: its companion matrix
    companion = np.zeros((len(bb_in), 4, 4))
    companion[:, 0] = np.stack([ab_in, np.zeros_like(ab_in), -ab_out, bb_out], 1) / bb_in[:, None]
    companion[:, [1, 2, 3], [0, 1, 2]] = 1.0
    roots = np.linalg.eigvals(companion)
    real = (np.abs(roots.imag) < 1e-9 * np.abs(roots)) & (roots.real > 0)
    r = np.where(real, roots.real, 1.0)
    cost = (bb_in[:, None] * r * r - 2 * ab_in[:, None] * r + bb_out[:, None] / (r * r)
            - 2 * ab_out[:, None] / r)
    best = np.where(real, cost, np.inf).argmin(1)
    found = real.any(1)
    d[np.flatnonzero(ok)[found]] = r[found, best[found]]
    return d


def scalable_sets(spec: GraphSpec) -> list[tuple]:
    """Per node set behind a positively homogeneous activation, in the order of the matching
    groups (inputs to outputs): its group's index, its nodes, and masks of the group's
    columns that enter it (incoming weights, its own slots) and leave it."""
    out = []
    for g in matching_groups(spec):
        for k, s in enumerate(g.group.sets):
            if spec.blueprint.sets[s].scale_ok:
                cols = g.column_set == k
                out.append((g, g.nodes[k], (cols & (g.direction != 0)).numpy(),
                            (cols & (g.direction == 0)).numpy()))
    return out


def _rescale(spec: GraphSpec, current: tuple, scale: Tensor, nodes: Tensor, d: np.ndarray
             ) -> tuple:
    """``current`` (weights, buffers) with the neurons ``nodes`` rescaled by ``d``; their
    factors in ``scale [1, N]`` are multiplied in place."""
    N = spec.num_nodes
    step = torch.ones(1, N, dtype=torch.float64)
    step[0, nodes] = torch.from_numpy(d)
    scale[0, nodes] *= step[0, nodes]
    return entry_moves(spec, torch.arange(N).unsqueeze(0), step, nodes).apply(*current)


def unit_scales(spec: GraphSpec, vec: Tensor) -> SymmetryTransform:
    """The positive rescaling after which every neuron behind a positively homogeneous
    activation has incoming entries (the weights into it and its bias) of norm 1: one
    representative of each network's scale orbit, whatever scale its training left it at.
    The sets are visited from inputs to outputs, each once (a set's incoming entries move
    with its own scale and the scales before it). Weights alone (no buffers)."""
    N = spec.num_nodes
    scale = torch.ones(1, N, dtype=torch.float64)
    current = (vec.double(), None)
    for g, nodes, incoming, _ in scalable_sets(spec):
        b = features(spec.source(*current), g.index).numpy()[:, incoming]
        norm = np.sqrt((b * b).sum(1))
        d = np.where(norm > 0, 1 / np.maximum(norm, 1e-300), 1.0)
        current = _rescale(spec, current, scale, nodes, d)
    return node_transform(spec, torch.arange(N).unsqueeze(0), scale)[0]


def scale_matching(spec: GraphSpec, reference: Tensor, transform: SymmetryTransform,
                   other: Tensor, reference_buffers: Tensor | None = None,
                   other_buffers: Tensor | None = None) -> SymmetryTransform:
    """``transform`` (a relabelling of ``other`` onto ``reference``) followed by the positive
    rescaling of every neuron whose set allows it that brings ``transform(other)`` closest to
    ``reference`` (module docstring). Flat vectors ``[P]`` in ``spec``'s layout."""
    perm, scale = transform.node_perm.unsqueeze(0), transform.node_scale.unsqueeze(0).clone()
    current = (transform(other.double()),
               None if other_buffers is None else transform.buffers(other_buffers.double()))
    s_ref = spec.source(reference.double(), None if reference_buffers is None
                        else reference_buffers.double())
    targets = []  # per scalable set: its group, nodes, columns, and the reference's entries
    reference_of = {}  # the reference's entries per group (it never moves)
    for g, nodes, incoming, outgoing in scalable_sets(spec):
        a = reference_of.setdefault(id(g), features(s_ref, g.index).numpy())
        targets.append((g, nodes, incoming, outgoing, a[:, incoming], a[:, outgoing]))
    for _ in range(SWEEPS if targets else 0):
        moved_total = 0.0
        for g, nodes, incoming, outgoing, a_in, a_out in targets:
            b = features(spec.source(*current), g.index).numpy()
            d = _best_scales(a_in, b[:, incoming], a_out, b[:, outgoing])
            moved_total = max(moved_total, float(np.abs(np.log(d)).max()))
            current = _rescale(spec, current, scale, nodes, d)
        if moved_total < 1e-9:
            break
    return node_transform(spec, perm, scale)[0]
