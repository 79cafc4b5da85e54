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

from weightspace.graph.blocks import NODE_BIAS


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


def _edge_keys(spec, src: Tensor, dst: Tensor, edges: Tensor | slice = slice(None)) -> Tensor:
    """One integer per edge (of ``edges``) from its endpoints ``src``, ``dst``, type and
    kernel position."""
    n, t = spec.num_nodes, int(spec.edge_type.max()) + 1 if spec.num_edges else 1
    positions = int(spec.edge_pos.max()) + 1 if spec.num_edges else 1
    return ((src * n + dst) * t + spec.edge_type[edges]) * positions + spec.edge_pos[edges]


def _sorted_edge_keys(spec) -> tuple[Tensor, Tensor]:
    if not hasattr(spec, "_edge_key_sort"):
        keys = _edge_keys(spec, spec.edge_index[0], spec.edge_index[1])
        sorted_keys, order = torch.sort(keys)
        if sorted_keys.numel() > 1 and (sorted_keys[1:] == sorted_keys[:-1]).any():
            raise RuntimeError(f"spec {spec.id} has two edges with the same endpoints and type")
        spec._edge_key_sort = (sorted_keys, order)
    return spec._edge_key_sort


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


@dataclass
class EntryMoves:
    """The entries a relabelling moves; every entry not listed stays where it is.

    Args:
        targets: ``[B, M]`` weights that take new values.
        sources: ``[B, M]`` the weight each target takes ...
        scales: ``[B, M]`` ... times this factor.
        buffer_targets: ``[B, K]`` buffer entries that take new values.
        buffer_sources: ``[B, K]`` the buffer entry each takes.
    """

    targets: Tensor
    sources: Tensor
    scales: Tensor
    buffer_targets: Tensor
    buffer_sources: Tensor

    def apply(self, vec: Tensor, buffers: Tensor | None = None
              ) -> tuple[Tensor, Tensor | None]:
        """Transform ``b = 0`` applied to one weight vector ``[P]`` (and buffers ``[Q]``)."""
        out = vec.clone()
        out[self.targets[0]] = vec[self.sources[0]] * self.scales[0].to(vec.dtype)
        if buffers is None:
            return out, None
        moved = buffers.clone()
        moved[self.buffer_targets[0]] = buffers[self.buffer_sources[0]]
        return out, moved


def entry_moves(spec, node_perm: Tensor, node_scale: Tensor, nodes: Tensor | None = None
                ) -> EntryMoves:
    """What :func:`node_transform` moves, as lists of entries. ``nodes``: the only nodes that
    move or scale (every other keeps its place and factor 1); then only the edges at these
    nodes are looked up, so that one step of a search that moves one layer costs that layer's
    edges, not the network's."""
    B, N = node_perm.shape
    src, dst = spec.edge_index
    if nodes is None:
        edges, nodes = slice(None), slice(None)
    else:
        touched = torch.zeros(N, dtype=torch.bool)
        touched[nodes] = True
        edges = torch.nonzero(touched[src] | touched[dst]).reshape(-1)
    # Where each old node goes, and so where each old edge goes.
    new_of_old = torch.empty_like(node_perm).scatter_(1, node_perm, torch.arange(N).expand(B, N))
    sorted_keys, order = _sorted_edge_keys(spec)
    moved = _edge_keys(spec, new_of_old[:, src[edges]], new_of_old[:, dst[edges]], edges)
    where = torch.searchsorted(sorted_keys, moved).clamp(max=max(len(order) - 1, 0))
    if spec.num_edges and not torch.equal(sorted_keys[where], moved):
        raise RuntimeError("the sampled permutation is not an automorphism of the graph")
    new_edge = order[where]  # [B, E']: old edge edges[e] now sits on edge new_edge[b, e]
    del moved, where
    P, Q = spec.num_params, len(spec.buffers)

    # Nodes: the features of old node node_perm[n] now sit on node n; biases scale by d_n.
    old_src, new_src = spec.node_src[node_perm[:, nodes]], spec.node_src[nodes]
    mask = new_src < P
    bias = mask & (torch.arange(new_src.shape[1]) == NODE_BIAS)
    node_moves = (new_src[mask].expand(B, -1), old_src[:, mask],
                  torch.where(bias, node_scale[:, nodes].unsqueeze(-1), 1.0)[:, mask])
    mask = (new_src >= P) & (new_src < P + Q)
    buffer_moves = ((new_src[mask] - P).expand(B, -1), old_src[:, mask] - P)

    # Edges: edge (u, v) is scaled by d_v / d_u of its new endpoints.
    ratio = node_scale.gather(1, dst[new_edge]) / node_scale.gather(1, src[new_edge])
    if isinstance(edges, slice):  # every edge: block by block, from the spec's runs
        return EntryMoves(*_edge_entry_moves(spec, new_edge, ratio, node_moves), *buffer_moves)
    old_src = spec.edge_src[edges]  # a few layers' edges: their [E', F] features directly
    mask = old_src < P
    edge_moves = (spec.edge_src[new_edge][:, mask], old_src[mask].expand(B, -1),
                  ratio.unsqueeze(-1).expand(B, *old_src.shape)[:, mask])
    return EntryMoves(*(torch.cat(pair, 1) for pair in zip(edge_moves, node_moves, strict=True)),
                      *buffer_moves)


def _moving_entries(spec) -> list:
    """Per run of edges, ``(e, k)`` of the weight entries a gathered block carries (local edge,
    feature slot), ``K`` (entries per edge) for a block reading a slice, None for none."""
    if not hasattr(spec, "_moving_entries"):
        P, out = spec.num_params, []
        for (e0, e1, base, columns), gather in zip(spec.edge_runs, spec.gather_src,
                                                   strict=True):
            if gather is not None:
                out.append(tuple(torch.nonzero(gather < P).T))
            elif e1 == e0 or base >= P:  # buffers on edges do not move
                out.append(None)
            else:
                out.append(spec.num_edge_features if columns is None else len(columns))
        spec._moving_entries = out
    return spec._moving_entries


def _edge_entry_moves(spec, new_edge: Tensor, ratio: Tensor, node_moves):
    """Where every weight entry goes, edges block by block, without the ``[E, F]`` edge map:
    a block that reads a slice of its tensor holds entry ``k`` of its local edge ``e`` at
    ``base + e * K + k``, so the entry's new home is the same ``k`` of its new edge (a
    relabelling keeps every edge in its block); a gathered block looks it up in its own map.
    Written into one ``[B, M]`` array each (no concatenated copies), the nodes' moves last."""
    B = new_edge.shape[0]
    entries = _moving_entries(spec)
    sizes = [0 if n is None else (n[0].numel() if isinstance(n, tuple) else
                                  (e1 - e0) * n) for n, (e0, e1, _, _) in
             zip(entries, spec.edge_runs, strict=True)]
    total = sum(sizes) + node_moves[0].shape[1]
    targets = torch.empty(B, total, dtype=torch.long)
    sources = torch.empty(B, total, dtype=torch.long)
    scales = torch.empty(B, total, dtype=torch.float64)
    starts = torch.tensor([r[0] for r in spec.edge_runs])
    bases = torch.tensor([r[2] for r in spec.edge_runs])
    widths = torch.tensor([n if isinstance(n, int) else -1 for n in entries])
    at = 0
    for n, size, (e0, e1, base, _), gather in zip(entries, sizes, spec.edge_runs,
                                                  spec.gather_src, strict=True):
        if not size:
            continue
        local = new_edge[:, e0:e1] - e0
        left = bool(((local < 0) | (local >= e1 - e0)).any())
        if isinstance(n, tuple):
            if left:
                raise RuntimeError("the relabelling moved an edge out of its block")
            e, k = n
            sources[:, at : at + size] = gather[e, k]
            targets[:, at : at + size] = gather[local[:, e], k]
        else:
            j = torch.arange(size)
            e, k = j // n, j % n
            sources[:, at : at + size] = base + j
            if not left:
                targets[:, at : at + size] = base + local[:, e] * n + k
            else:  # into a sibling slice (one head's rows of an interleaved projection)
                new = new_edge[:, e0 + e]
                run = torch.searchsorted(starts, new, right=True) - 1
                if bool((widths[run] != n).any()):
                    raise RuntimeError("the relabelling moved an edge out of its block")
                targets[:, at : at + size] = bases[run] + (new - starts[run]) * n + k
        scales[:, at : at + size] = ratio[:, e0 + e]
        at += size
    for out, part in zip((targets, sources, scales), node_moves, strict=True):
        out[:, at:] = part
    return targets, sources, scales


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
