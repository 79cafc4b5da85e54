"""The symmetries of a weight space, as gathers through the spec's index maps.

A hidden layer's neurons can be permuted without changing the function: ``W_in -> P W_in``,
``b -> P b``, ``W_out -> W_out P^T``. On the parameter graph this is a relabelling of nodes,
so one permutation ``pi`` of the nodes induces a permutation of the weight vector: the weight
on edge ``(u, v)`` moves to edge ``(pi(u), pi(v))``, the bias of node ``n`` to ``pi(n)``.
Constraints come from tracing (``spec.permutation_groups``): sets tied by a residual add or a
norm layer share one permutation; attention heads and GroupNorm groups move as blocks (the Q and
K features of a head share a permutation, V's is its own, the head order is shared); inputs,
outputs and tokens stay fixed.

For sets whose every use passes an odd activation (identity, tanh, sine) before a linear read,
``D = diag(+-1)`` is a symmetry too; for positively homogeneous ones (identity, ReLU,
LeakyReLU) so is any positive diagonal ``D``: ``W_in -> D W_in``, ``b -> D b``,
``W_out -> W_out D^-1``. On the graph an edge ``(u, v)`` is multiplied by ``d_v / d_u`` and a
bias by ``d_n``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from weightspace.graph.entry_moves import entry_moves


@dataclass
class PermutationGroup:
    """Node sets that share one permutation of their ``size`` neurons.

    Args:
        sets: the node sets.
        size: their common number of nodes.
        blocks: contiguous blocks that move as wholes (heads, groups).
        block_group: the name of a block permutation shared with other groups.
        fixed: the nodes may not move (inputs, outputs).
    """

    sets: list[int]
    size: int
    blocks: int = 1  # contiguous blocks that move as wholes; within a block, any permutation
    block_group: str | None = None  # blocks move with others of this name; "fixed": not at all
    fixed: bool = False  # no permutation at all (inputs, outputs, tokens)

    @property
    def block_size(self) -> int:
        return self.size // self.blocks


def permutation_groups(spec) -> list[PermutationGroup]:
    """Union-find over the spec's ties, then each group's block constraint."""
    bp = spec.blueprint
    parent = list(range(len(bp.sets)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in bp.ties:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for i in range(len(bp.sets)):
        members.setdefault(find(i), []).append(i)
    constraints: dict[int, list] = {}
    for c in bp.constraints:
        constraints.setdefault(find(c.set), []).append(c)

    groups, frozen = [], set()
    for root, sets in sorted(members.items()):
        size = bp.sets[root].size
        fixed = any(bp.sets[s].role != "hidden" for s in sets)
        blocks, block_group = 1, None
        cs = constraints.get(root, [])
        if cs:
            # Blocks of several constraints: permute only within the finest common refinement
            # (blocks of gcd size), which preserves every one of the partitions.
            block_size = math.gcd(*[size // c.blocks for c in cs])
            blocks = size // block_size
            names = {c.block_group for c in cs}
            if len({c.blocks for c in cs}) > 1 or "fixed" in names or len(names - {None}) > 1:
                block_group = "fixed"
                frozen |= names - {None}
            else:
                block_group = next(iter(names - {None}), None)
        if fixed and block_group:
            frozen.add(block_group)
        groups.append(PermutationGroup(sets, size, blocks, block_group, fixed))
    # A shared block permutation that one member cannot follow binds all of them.
    for g in groups:
        if g.block_group in frozen:
            g.block_group = "fixed"
    return groups


@dataclass
class SymmetryTransform:
    """Elements of the symmetry group, as gathers on weight vectors and graphs.

    ``node_perm[n]`` is the old node whose place node ``n`` takes; ``node_scale[n]`` the factor
    ``d_n`` of the new node ``n``. Weights transform as ``v' = v[param_index] * param_scale``
    and buffers as ``u' = u[buffer_index]`` (running statistics move with their channels).
    From :func:`sample_symmetries` every field has a leading batch axis: transform ``b``
    applies to row ``b`` of a ``[B, P]`` weight matrix.

    Args:
        node_perm: ``[N]`` (or ``[B, N]``) the old node of each new node.
        node_scale: ``[N]`` the factor of each new node.
        param_index: ``[P]`` gather indices of the weights.
        param_scale: ``[P]`` factors of the gathered weights.
        buffer_index: ``[Q]`` gather indices of the buffers.
    """

    node_perm: Tensor
    node_scale: Tensor
    param_index: Tensor
    param_scale: Tensor
    buffer_index: Tensor

    @property
    def batched(self) -> bool:
        return self.param_index.dim() == 2

    def __call__(self, vec: Tensor) -> Tensor:
        scale = self.param_scale.to(device=vec.device, dtype=vec.dtype)
        if self.batched:
            return vec.gather(-1, self.param_index.to(vec.device)) * scale
        return vec[..., self.param_index.to(vec.device)] * scale

    def buffers(self, buffers: Tensor) -> Tensor:
        if self.batched:
            return buffers.gather(-1, self.buffer_index.to(buffers.device))
        return buffers[..., self.buffer_index.to(buffers.device)]

    def __getitem__(self, b: int) -> SymmetryTransform:
        """Transform ``b`` of a batch, unbatched."""
        return SymmetryTransform(self.node_perm[b], self.node_scale[b], self.param_index[b],
                                 self.param_scale[b], self.buffer_index[b])


def sample_symmetries(
    spec,
    batch_size: int,
    generator: torch.Generator | None = None,
    *,
    permute: bool = True,
    sign: bool = True,
    scale: bool = True,
    scale_range: tuple[float, float] = (0.5, 2.0),
) -> SymmetryTransform:
    """Draw ``batch_size`` independent function-preserving transforms at once (batched).

    ``permute``: hidden-neuron permutations (respecting ties, heads and groups); ``sign``:
    sign flips of neurons behind odd activations; ``scale``: per-neuron positive scales drawn
    log-uniformly from ``scale_range`` for neurons behind positively homogeneous activations.
    Python loops run over the spec's node sets only, never over the batch.
    """
    g, B, N = generator, batch_size, spec.num_nodes
    node_perm = torch.arange(N).repeat(B, 1)
    if permute:
        shared: dict[str, Tensor] = {}
        for group in spec.permutation_groups:
            if group.fixed:
                continue
            perm = _group_permutations(group, B, shared, g)
            for s in group.sets:
                o = spec.set_offset[s]
                node_perm[:, o : o + group.size] = o + perm

    node_scale = torch.ones(B, N, dtype=torch.float64)
    lo, hi = math.log(scale_range[0]), math.log(scale_range[1])
    for i, s in enumerate(spec.blueprint.sets):
        o = spec.set_offset[i]
        if sign and s.sign_ok:
            node_scale[:, o : o + s.size] *= torch.randint(0, 2, (B, s.size), generator=g) * 2.0 - 1
        if scale and s.scale_ok:
            u = torch.rand(B, s.size, generator=g, dtype=torch.float64)
            node_scale[:, o : o + s.size] *= torch.exp(lo + (hi - lo) * u)
    return node_transform(spec, node_perm, node_scale)


def node_transform(spec, node_perm: Tensor, node_scale: Tensor | None = None
                   ) -> SymmetryTransform:
    """The transform of weights and buffers that a relabelling (and rescaling) of nodes
    induces: ``node_perm [B, N]``, the old node each new node takes; ``node_scale [B, N]``, the
    factor of each new node (ones when omitted). The caller keeps to the spec's symmetries
    (:func:`sample_symmetries`, or a weight matching that permutes within its groups); a
    relabelling that is not an automorphism of the graph is refused."""
    B, N = node_perm.shape
    if node_scale is None:
        node_scale = torch.ones(B, N, dtype=torch.float64)
    moves = entry_moves(spec, node_perm, node_scale)
    P, Q = spec.num_params, len(spec.buffers)
    param_index = torch.arange(P).repeat(B, 1)
    param_scale = torch.ones(B, P, dtype=torch.float64)
    buffer_index = torch.arange(Q).repeat(B, 1)
    param_index.scatter_(1, moves.targets, moves.sources)
    param_scale.scatter_(1, moves.targets, moves.scales)
    buffer_index.scatter_(1, moves.buffer_targets, moves.buffer_sources)
    return SymmetryTransform(node_perm, node_scale, param_index, param_scale, buffer_index)


def sample_symmetry(spec, generator: torch.Generator | None = None, **kinds
                    ) -> SymmetryTransform:
    """One random function-preserving transform (see :func:`sample_symmetries`)."""
    return sample_symmetries(spec, 1, generator, **kinds)[0]


def _group_permutations(group: PermutationGroup, B: int, shared: dict, g) -> Tensor:
    """``[B, size]`` permutations: blocks move (shared by name), channels move within."""
    b, bs = group.blocks, group.block_size
    if group.block_group == "fixed" or b == 1:
        block_perm = torch.arange(b).repeat(B, 1)
    elif group.block_group is None:
        block_perm = torch.argsort(torch.rand(B, b, generator=g), dim=1)
    else:
        if group.block_group not in shared:
            shared[group.block_group] = torch.argsort(torch.rand(B, b, generator=g), dim=1)
        block_perm = shared[group.block_group]
    within = torch.argsort(torch.rand(B, b, bs, generator=g), dim=2)
    return (block_perm.unsqueeze(-1) * bs + within).reshape(B, -1)


def random_symmetry(
    spec,
    vec: Tensor,
    generator: torch.Generator | None = None,
    buffers: Tensor | None = None,
    **kinds,
):
    """A random function-preserving transform of the weights ``vec`` (and ``buffers``).

    ``kinds`` switch each kind on or off (``permute``, ``sign``, ``scale``; all on by default)
    and set ``scale_range``. Returns the new weight vector, or ``(weights, buffers)`` when
    buffers are given. Works on a batch ``[B, P]`` too (one transform for the whole batch).
    """
    t = sample_symmetry(spec, generator, **kinds)
    if buffers is None:
        return t(vec)
    return t(vec), t.buffers(buffers)
