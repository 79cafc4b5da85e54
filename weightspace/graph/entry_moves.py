"""Where a relabelling (and rescaling) of nodes moves every weight and buffer entry.

A node permutation ``pi`` moves the weight on edge ``(u, v)`` to edge ``(pi(u), pi(v))`` and a
node's features to ``pi(n)``; a rescaling multiplies edge ``(u, v)`` by ``d_v / d_u`` and a bias
by ``d_n`` (:mod:`weightspace.graph.symmetry`). :func:`entry_moves` lists these moves as
``(target, source, factor)`` entries, edges block by block from the spec's runs, without the
``[E, F]`` edge map where a block reads a slice of its tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from weightspace.graph.blocks import NODE_BIAS


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
