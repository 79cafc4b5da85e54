"""``DegreeBlocks``: the messages of a graph grouped into dense blocks by their target's degree.

A PNA aggregation (mean, max, min, std of the messages into each node) through scatter
operations is the slowest part of a metanetwork step on CPU: the backward of a scatter max or
min compares every message with its node's result again and counts ties. Parameter graphs
have few distinct in-degrees (a layer's neurons all have the same fan-in and fan-out), so the
messages, put in the right order once per batch, form a handful of dense
``[nodes, degree, hidden]`` blocks; every reduction is then a dense one along the middle
dimension (``max(dim)`` keeps the winning index for its backward), and nothing is scattered
but the final rows.

With messages listed as ``order`` says, block ``k`` covers rows ``start .. start + count *
degree`` and holds ``degree`` consecutive messages into each of its ``count`` nodes (``nodes``,
in block order); one row per node of the blocks' outputs, concatenated, is read back at
``row_of_node`` (nodes that receive no message read a fill row). Since a block's messages
are grouped by target, a per-target term (``A h_i``) is added by broadcasting, never gathered
per message.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class DegreeBlocks:
    """Messages into ``num_nodes`` nodes, grouped by in-degree (see the module docstring).

    Args:
        order: ``[M]``, the message (position in ``dst``) at each row of the grouped order.
        inverse: ``[M]``, each message's row in the grouped order.
        blocks: ``(start, count, degree)`` of each block: its first row, its nodes, their
            in-degree.
        nodes: ``[N']``, the nodes that receive messages, block by block.
        row_of_node: ``[N]``, each node's row among the blocks' concatenated outputs (the
            row after the last for a node without messages).
        first_message: ``[N']``, the row of the first message into each node of ``nodes``.
        num_nodes: ``N``.
    """

    order: Tensor
    inverse: Tensor
    blocks: tuple[tuple[int, int, int], ...]
    nodes: Tensor
    row_of_node: Tensor
    first_message: Tensor
    num_nodes: int

    @classmethod
    def of(cls, dst: Tensor, num_nodes: int) -> DegreeBlocks:
        """The blocks of messages whose targets are ``dst [M]``."""
        degree = torch.bincount(dst, minlength=num_nodes)
        # sort messages by (degree of target, target): each degree is one contiguous block
        key = degree[dst] * num_nodes + dst
        order = torch.argsort(key, stable=True)
        # the targets in that order: each node's messages are one run, so the runs give the
        # nodes in block order and their degrees, and the runs of equal degree the blocks
        nodes, node_degree = torch.unique_consecutive(dst[order], return_counts=True)
        degrees, counts = torch.unique_consecutive(node_degree, return_counts=True)
        blocks, start = [], 0
        for d, c in zip(degrees.tolist(), counts.tolist(), strict=True):
            blocks.append((start, c, d))
            start += c * d
        row_of_node = torch.full((num_nodes,), len(nodes), dtype=torch.long, device=dst.device)
        row_of_node[nodes] = torch.arange(len(nodes), device=dst.device)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(len(order), device=dst.device)
        first_message = node_degree.cumsum(0) - node_degree
        return cls(order, inverse, tuple(blocks), nodes, row_of_node, first_message, num_nodes)

    def split(self, *tensors: Tensor):
        """Per block: its nodes ``[count]`` and each of ``tensors [M, ...]`` (in the grouped
        order) as a view ``[count, degree, ...]``."""
        # one split per tensor, not a slice per block: a slice's backward fills a whole [M, ...]
        # gradient with zeros, a split's concatenates the blocks' gradients once
        sizes = [count * degree for _, count, degree in self.blocks]
        nodes = self.nodes.split([count for _, count, _ in self.blocks])
        pieces = [t.split(sizes) for t in tensors]
        for k, (_, count, degree) in enumerate(self.blocks):
            yield (nodes[k], *(p[k].view(count, degree, *p[k].shape[1:]) for p in pieces))

    def to_nodes(self, x: Tensor, fill: float = 0.0) -> Tensor:
        """``[N, ...]`` from one row per node of ``nodes`` (``fill`` for nodes without
        messages)."""
        return torch.cat([x, x.new_full((1, *x.shape[1:]), fill)]).index_select(
            0, self.row_of_node)
