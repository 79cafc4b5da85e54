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
from weightspace.graph.spec import GraphSpec
from weightspace.graph.symmetry import SymmetryTransform, entry_moves, node_transform

SWEEPS = 100  # at most; it stops once no neuron moves by more than 1e-9 (log scale)


def _best_scale(a_in: np.ndarray, b_in: np.ndarray, a_out: np.ndarray, b_out: np.ndarray
                ) -> float:
    """The ``d > 0`` minimising ``|a_in - d b_in|^2 + |a_out - b_out / d|^2`` (1 if none)."""
    bb_in, ab_in, ab_out, bb_out = b_in @ b_in, a_in @ b_in, a_out @ b_out, b_out @ b_out
    if bb_in == 0 or bb_out == 0:
        return 1.0
    roots = np.roots([bb_in, -ab_in, 0.0, ab_out, -bb_out])
    positive = [r.real for r in roots if abs(r.imag) < 1e-9 * abs(r) and r.real > 0]
    if not positive:
        return 1.0

    def cost(d):
        return bb_in * d * d - 2 * ab_in * d + bb_out / (d * d) - 2 * ab_out / d

    return float(min(positive, key=cost))


def scale_matching(spec: GraphSpec, reference: Tensor, transform: SymmetryTransform,
                   other: Tensor, reference_buffers: Tensor | None = None,
                   other_buffers: Tensor | None = None) -> SymmetryTransform:
    """``transform`` (a relabelling of ``other`` onto ``reference``) followed by the positive
    rescaling of every neuron whose set allows it that brings ``transform(other)`` closest to
    ``reference`` (module docstring). Flat vectors ``[P]`` in ``spec``'s layout."""
    N = spec.num_nodes
    perm, scale = transform.node_perm.unsqueeze(0), transform.node_scale.unsqueeze(0).clone()
    current = (transform(other.double()),
               None if other_buffers is None else transform.buffers(other_buffers.double()))
    s_ref = spec.source(reference.double(), None if reference_buffers is None
                        else reference_buffers.double())
    targets = [(g, k) for g in matching_groups(spec) for k, s in enumerate(g.group.sets)
               if spec.blueprint.sets[s].scale_ok]
    for _ in range(SWEEPS if targets else 0):
        moved_total = 0.0
        for g, k in targets:
            s_cur = spec.source(*current)
            cols = g.column_set == k
            incoming = (cols & (g.direction != 0)).numpy()
            outgoing = (cols & (g.direction == 0)).numpy()
            a = features(s_ref, g.index).numpy()
            b = features(s_cur, g.index).numpy()
            d = np.array([_best_scale(a[i, incoming], b[i, incoming], a[i, outgoing],
                                      b[i, outgoing]) for i in range(len(a))])
            moved_total = max(moved_total, float(np.abs(np.log(d)).max()))
            nodes = g.nodes[k]
            step = torch.ones(1, N, dtype=torch.float64)
            step[0, nodes] = torch.from_numpy(d)
            current = entry_moves(spec, torch.arange(N).unsqueeze(0), step, nodes).apply(
                *current)
            scale[0, nodes] *= step[0, nodes]
        if moved_total < 1e-9:
            break
    return node_transform(spec, perm, scale)[0]
