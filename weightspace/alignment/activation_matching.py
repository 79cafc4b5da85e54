"""Activation matching: the relabelling of one network whose neurons fire like another's.

For two networks ``a`` (the reference) and ``b`` of one architecture, run both on the same
inputs and correlate every neuron of ``a`` with every neuron of ``b`` in each node set,

.. math::
    C_s[i, j] = \\operatorname{corr}(z^a_{s,i}, z^b_{s,j})

over all rows (samples x positions). A permutation group ``G`` takes the assignment
``max_P tr(P^T sum_{s in G} C_s)`` (Ainsworth et al., "Git Re-Basin", 2023; Singh & Jaggi,
"Model Fusion via Optimal Transport", 2020, with a hard assignment). Unlike weight matching
this needs no search: a neuron's activations do not depend on how the other layers are
labelled, so every group is solved once. Sets whose activation is odd match on ``|C|`` and
flip where the correlation is negative. Groups with no tensor of their own (the per-head
projections inside ``nn.MultiheadAttention``) are then weight-matched with everything else
held fixed. The result is a :class:`~weightspace.graph.symmetry.SymmetryTransform`, exact by
construction.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from weightspace.alignment.weight_matching import (
    match_unit,
    matching_groups,
    matching_units,
    score,
    unit_step,
    weight_matching,
)
from weightspace.errors import SpecMismatchError
from weightspace.graph.node_values import NodeValues
from weightspace.graph.spec import GraphSpec
from weightspace.graph.symmetry import SymmetryTransform, node_transform

# Added to the product of standard deviations: a neuron that never varies (a dead ReLU)
# correlates with nothing instead of dividing by zero.
STD_EPS = 1e-8


class _CrossMoments:
    """Running sums for the correlation of every column of ``a`` with every column of ``b``."""

    def __init__(self):
        self.n, self.sa, self.sb, self.saa, self.sbb, self.sab = 0, 0.0, 0.0, 0.0, 0.0, 0.0

    def add(self, a: Tensor, b: Tensor):
        a, b = a.double(), b.double()
        self.n += len(a)
        self.sa, self.sb = self.sa + a.sum(0), self.sb + b.sum(0)
        self.saa, self.sbb = self.saa + (a * a).sum(0), self.sbb + (b * b).sum(0)
        self.sab = self.sab + a.T @ b

    def correlation(self) -> Tensor:
        ma, mb = self.sa / self.n, self.sb / self.n
        cov = self.sab / self.n - ma[:, None] * mb[None, :]
        sa = (self.saa / self.n - ma * ma).clamp(min=0).sqrt()
        sb = (self.sbb / self.n - mb * mb).clamp(min=0).sqrt()
        return cov / (sa[:, None] * sb[None, :] + STD_EPS)


def input_batches(data, batch_size: int):
    """Batches of inputs from ``data``: a tensor, a tuple ``(x, y)``, or any other iterable of
    batches (a ``DataLoader``, a list), each ``x`` or ``(x, y)``."""
    if isinstance(data, Tensor):
        yield from data.split(batch_size)
    elif isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Tensor):
        yield from data[0].split(batch_size)
    else:
        for batch in data:
            yield batch[0] if isinstance(batch, tuple | list) else batch


def set_correlations(reference: nn.Module, other: nn.Module, data, example_inputs=None,
                     batch_size: int = 256, spec: GraphSpec | None = None
                     ) -> dict[int, Tensor]:
    """``{set: [size, size]}`` correlations of the reference's neurons (rows) with the
    other's (columns), for every node set both networks show a tensor of, over ``data``.
    ``spec``: the sets are checked to be its sets, in its order."""
    if data is None:
        raise ValueError("activation matching needs data: pass data=x (inputs) or (x, y)")
    values = [NodeValues(m, example_inputs) for m in (reference, other)]
    if spec is not None and [(s.name, s.size) for s in values[0].sets] != [
            (s.name, s.size) for s in spec.blueprint.sets]:
        raise SpecMismatchError(f"the traced node sets of {type(reference).__name__} are not "
                                f"those of spec {spec.id}: build the spec from this network "
                                f"with the same example inputs")
    moments: dict[int, _CrossMoments] = {}
    modes = [m.training for m in (reference, other)]
    reference.eval(), other.eval()
    try:
        for x in input_batches(data, batch_size):
            a, b = values[0](x), values[1](x)
            for s in a.keys() & b.keys():
                moments.setdefault(s, _CrossMoments()).add(a[s], b[s])
    finally:
        reference.train(modes[0]), other.train(modes[1])
    if not moments:
        raise ValueError("data gave no batches to match activations on")
    return {s: m.correlation() for s, m in moments.items()}


def activation_matching(spec: GraphSpec, reference: nn.Module, other: nn.Module, data,
                        example_inputs=None, batch_size: int = 256) -> SymmetryTransform:
    """The transform ``g`` of ``other``'s flat weights (and buffers) that lines its neurons up
    with ``reference``'s by activation correlation on ``data`` (module docstring)."""
    corr = {s: c.numpy() for s, c in set_correlations(reference, other, data, example_inputs,
                                                      batch_size, spec).items()}
    groups, units = matching_groups(spec), matching_units(spec)
    N = spec.num_nodes
    perm = torch.arange(N).unsqueeze(0)
    scale = torch.ones(1, N, dtype=torch.float64)
    unseen = []
    for u, unit in enumerate(units):
        members = [groups[i] for i in unit]
        if any(s not in corr for g in members for s in g.group.sets):
            unseen.append(u)
            continue
        per_set = [[corr[s] for s in g.group.sets] for g in members]
        step_perm, step_scale = unit_step(members, per_set, match_unit(members,
                                                                       score(members, per_set)),
                                          N)
        # units hold disjoint nodes: the steps compose by simple overwriting
        moved = step_perm[0] != torch.arange(N)
        perm[0, moved] = step_perm[0, moved]
        scale *= step_scale
    t = node_transform(spec, perm, scale)[0]
    if not unseen:
        return t
    rest = weight_matching(spec, spec.flatten(reference), t(spec.flatten(other).double()),
                           units=unseen)
    # t first, then rest: new node n takes t's node rest[n]
    return node_transform(spec, perm[:, rest.node_perm], scale[:, rest.node_perm] *
                          rest.node_scale.unsqueeze(0))[0]
