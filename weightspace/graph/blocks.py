"""The small, JSON-serialisable description of a parameter graph, and its index maps.

Tracing a network yields *node sets* (one per layer output: its neurons or channels) and
*blocks*: an edge block says "these edges between set A and set B take their features from this
slice of this parameter"; a node slot says "feature g of the nodes of set S comes from this
tensor". The dense index maps of a :class:`~weightspace.graph.spec.GraphSpec` are materialised
from these blocks with vectorised torch ops, so a spec stores (and a zoo file records) only the
blocks, never millions of indices.

Feature sources are indices into the *source vector* ``s = [params (P); buffers (Q); 0; 1]``:
``s[P + Q]`` is the constant 0 (padding of a kernel to the canvas) and ``s[P + Q + 1]`` is the
constant 1 (identity edges of residual adds, norms without affine weights).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

# Node feature slots: x[n] = [bias, running_mean, running_var]. A node without such a tensor
# holds 0, 0, 1 (no shift, identity normalisation), so every architecture shares the schema.
NODE_BIAS, NODE_RUNNING_MEAN, NODE_RUNNING_VAR = 0, 1, 2
NODE_FEATURES = 3
NODE_DEFAULTS = ("zero", "zero", "one")


@dataclass
class NodeSet:
    """The neurons (or channels, or tokens) along the feature axis of one traced tensor.

    Args:
        name: the module path that produced it (with a suffix where one module makes several).
        size: the number of nodes.
        node_type: a :class:`~weightspace.graph.vocab.NodeType` code.
        role: ``"input"``, ``"hidden"``, ``"output"`` or ``"token"``.
        activation: the :class:`~weightspace.graph.vocab.Activation` applied to its values.
        input_index: for role ``"input"``, which positional input of ``forward``.
        sign_ok: a per-node sign flip can be undone exactly by the consumers.
        scale_ok: a per-node positive scale can be undone exactly by the consumers.
    """

    name: str  # module path that produced it, with a suffix where one module makes several
    size: int
    node_type: int
    role: str = "hidden"  # "input" | "hidden" | "output" | "token"
    activation: int = 0  # vocab.Activation applied to this set's values
    input_index: int = -1  # for role "input": which positional input of forward()
    # Whether a per-neuron sign flip / positive scale of this set can be undone exactly by its
    # consumers (decided while tracing: see weightspace.graph.reader).
    sign_ok: bool = False
    scale_ok: bool = False


@dataclass
class DenseEdges:
    """All edges ``src[i] -> dst[o]`` of a (possibly grouped) linear map.

    The weight slice is read as a row-major ``(n_dst, n_src / groups, kh, kw)`` tensor starting
    at element ``offset`` of ``param``: edge ``(i, o)`` carries the ``kh x kw`` kernel
    ``W[o, i mod (n_src / groups)]`` and exists only when ``i`` is in the group of ``o``. With
    ``transposed`` the slice is ``(n_src, n_dst, kh, kw)`` instead (embeddings, transposed
    convolutions: ``W[i, o]``). With
    ``in_total`` the weight has ``in_total`` input channels of which ``src`` feeds the
    ``n_src`` from ``in_offset`` on (one part of a concatenation): edge ``(i, o)`` carries
    ``W[o, in_offset + i]``. With ``count`` the slice feeds only the destination nodes
    ``first .. first + count - 1`` (one head's rows of a projection whose rows interleave
    heads, as LeViT's): its rows are those nodes'.

    Args:
        src: the source node set.
        dst: the destination node set.
        edge_type: an :class:`~weightspace.graph.vocab.EdgeType` code.
        param: the parameter that holds the weights.
        offset: the first element of the slice in ``param``.
        groups: the convolution's groups.
        kernel: ``(kh, kw)``; ``(1, 1)`` for a Linear layer.
        transposed: the slice is ``(n_src, n_dst, kh, kw)``.
        in_offset: the first input channel ``src`` feeds (with ``in_total``).
        in_total: the weight's input channels, when ``src`` feeds only some; 0: all.
        first: the first destination node fed (with ``count``).
        count: the number of destination nodes fed; 0: all.
    """

    src: int
    dst: int
    edge_type: int
    param: str
    offset: int = 0
    groups: int = 1
    kernel: tuple[int, int] = (1, 1)
    transposed: bool = False
    in_offset: int = 0
    in_total: int = 0
    first: int = 0
    count: int = 0


# Fields added after zoos were written, left out of a spec's JSON at their defaults so that
# the ids of existing specs stay as they were.
_OPTIONAL_FIELDS = {"in_offset": 0, "in_total": 0, "first": 0, "count": 0}


def _json(block) -> dict:
    return {k: v for k, v in asdict(block).items()
            if k not in _OPTIONAL_FIELDS or v != _OPTIONAL_FIELDS[k]}


def nodes_read(block, set_size: list[int]) -> tuple[int, int]:
    """``(first, count)``: the nodes of its (destination) set a block or node slot covers."""
    size = set_size[block.set if isinstance(block, NodeSlot) else block.dst]
    return block.first, block.count or size


@dataclass
class DiagEdges:
    """Edges ``src[i] -> dst[i]``, feature ``param[offset + i - first]``, or the constant 1,
    for the nodes ``i = first .. first + count - 1`` (all when ``count`` is 0).

    Args:
        src: the source node set.
        dst: the destination node set (same size).
        edge_type: an :class:`~weightspace.graph.vocab.EdgeType` code.
        param: the tensor holding the diagonal, or ``None`` for the constant 1.
        offset: the first element of the diagonal in ``param``.
        first: the first node.
        count: the number of nodes; 0: all.
    """

    src: int
    dst: int
    edge_type: int
    param: str | None = None
    offset: int = 0
    first: int = 0
    count: int = 0


@dataclass
class HeadEdges:
    """Constant-1 edges ``src[i] -> dst[j]`` for all i, j in the same head (block).

    Args:
        src: the source node set.
        dst: the destination node set (heads of another width allowed: LeViT's keys are
            narrower than its values).
        edge_type: an :class:`~weightspace.graph.vocab.EdgeType` code.
        heads: the number of heads (blocks) both sets are cut into.
    """

    src: int
    dst: int
    edge_type: int
    heads: int


@dataclass
class NodeSlot:
    """Feature ``slot`` of the nodes ``i = first .. first + count - 1`` of ``set`` (all when
    ``count`` is 0) comes from ``tensor[offset + i - first]``.

    Args:
        set: the node set.
        slot: the node feature slot (``NODE_BIAS``, ``NODE_RUNNING_MEAN``, ``NODE_RUNNING_VAR``).
        tensor: the parameter or buffer that holds the values.
        is_buffer: ``tensor`` is a buffer.
        offset: the first element in ``tensor``.
        first: the first node.
        count: the number of nodes; 0: all.
    """

    set: int
    slot: int
    tensor: str
    is_buffer: bool = False
    offset: int = 0
    first: int = 0
    count: int = 0


@dataclass
class PermutationConstraint:
    """How the channels of one set may be permuted.

    ``blocks`` contiguous blocks (attention heads, GroupNorm groups) move as wholes; inside a
    block channels permute freely. ``block_group`` names a block permutation shared with other
    sets (the heads of Q/K and of V move together); ``None`` means a block permutation of its
    own; ``"fixed"`` means blocks may not move.

    Args:
        set: the node set.
        blocks: the number of contiguous blocks.
        block_group: the shared block permutation, ``None`` or ``"fixed"`` (see above).
    """

    set: int
    blocks: int
    block_group: str | None = None


@dataclass
class Blueprint:
    """Everything tracing learns about one architecture, in plain data.

    Args:
        sets: the node sets, in the order of their indices.
        edges: the edge blocks.
        node_slots: where node features come from.
        ties: pairs of node sets that are permuted together (residual adds).
        constraints: the sets whose channels move in blocks.
    """

    sets: list[NodeSet] = field(default_factory=list)
    edges: list[DenseEdges | DiagEdges | HeadEdges] = field(default_factory=list)
    node_slots: list[NodeSlot] = field(default_factory=list)
    ties: list[tuple[int, int]] = field(default_factory=list)  # sets permuted together
    constraints: list[PermutationConstraint] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "sets": [asdict(s) for s in self.sets],
            "edges": [{"kind": type(e).__name__, **_json(e)} for e in self.edges],
            "node_slots": [_json(s) for s in self.node_slots],
            "ties": [list(t) for t in self.ties],
            "constraints": [asdict(c) for c in self.constraints],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Blueprint:
        kinds = {k.__name__: k for k in (DenseEdges, DiagEdges, HeadEdges)}
        edges = []
        for e in d["edges"]:
            e = dict(e)
            kind = kinds[e.pop("kind")]
            if "kernel" in e:
                e["kernel"] = tuple(e["kernel"])
            edges.append(kind(**e))
        return cls(
            sets=[NodeSet(**s) for s in d["sets"]],
            edges=edges,
            node_slots=[NodeSlot(**s) for s in d["node_slots"]],
            ties=[tuple(t) for t in d["ties"]],
            constraints=[PermutationConstraint(**c) for c in d["constraints"]],
        )


@dataclass
class EdgeArrays:
    """The materialised edges of one block: endpoints, features' sources, kernel positions.

    Args:
        src: ``[E]`` source node of each edge.
        dst: ``[E]`` destination node of each edge.
        feat: ``[E, F]`` source-vector index of each feature slot.
        pos: ``[E]`` kernel position on the canvas (entry mode), else 0.
        edge_type: the block's :class:`~weightspace.graph.vocab.EdgeType` code.
        contiguous_base: ``b`` when ``feat.flatten() == b + arange(feat.numel())``, else -1;
            with ``columns``: when ``feat[:, columns].flatten()`` is that run and every other
            slot is the constant 0 (a kernel smaller than the canvas, a norm's diagonal).
        columns: the feature slots a padded contiguous block fills.
        repeat: ``K > 1`` when each of ``src``/``dst`` stands for ``K`` consecutive edges, one
            per kernel entry, at positions ``pos [K]`` (a slice run read entry by entry; kept
            compact so that a 10^8-edge block is never held expanded twice).
    """

    src: Tensor  # [E] node index ([E / repeat] when repeat > 1)
    dst: Tensor  # [E]
    feat: Tensor | None  # [E, F] source-vector index of each feature slot
    pos: Tensor  # [E] kernel position on the canvas (entry mode), else 0 ([repeat])
    edge_type: int
    contiguous_base: int = -1  # feat.flatten() == base + arange(feat.numel()), else -1
    columns: tuple[int, ...] | None = None  # the slots a padded contiguous run fills
    repeat: int = 1

    @property
    def count(self) -> int:
        """The number of edges."""
        return self.src.numel() * self.repeat


def canvas_positions(kernel: tuple[int, int], canvas: tuple[int, int]) -> Tensor:
    """Flat canvas index of each entry of a ``kh x kw`` kernel centred on a ``KH x KW`` canvas."""
    kh, kw = kernel
    ch, cw = canvas
    dr, dc = (ch - kh) // 2, (cw - kw) // 2
    rows = torch.arange(kh).view(-1, 1) + dr
    cols = torch.arange(kw).view(1, -1) + dc
    return (rows * cw + cols).reshape(-1)


def _within_heads(n_src: int, n_dst: int, heads: int) -> tuple[Tensor, Tensor]:
    """Every pair ``(i, j)`` of a node ``i`` of ``n_src`` and a node ``j`` of ``n_dst`` in the
    same head, both cut into ``heads``."""
    a, b = n_src // heads, n_dst // heads
    head = torch.arange(heads).view(-1, 1, 1)
    i = (head * a + torch.arange(a).view(1, -1, 1)).expand(-1, a, b)
    j = (head * b + torch.arange(b).view(1, 1, -1)).expand(-1, a, b)
    return i.reshape(-1), j.reshape(-1)


def _dense_layout(block: DenseEdges, n_src: int, n_dst: int, base: int, K: int
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """``(src, dst, first)`` of a dense block's edges in the weight's memory order: local
    endpoints, and the source index of each edge's first kernel entry ``[E, 1]``."""
    if block.transposed:
        i = torch.arange(n_src).view(-1, 1)
        o = torch.arange(n_dst).view(1, -1)
        return (i.expand(n_src, n_dst).reshape(-1), o.expand(n_src, n_dst).reshape(-1),
                base + ((i * n_dst + o) * K).reshape(-1, 1))
    in_per_group, out_per_group = n_src // block.groups, n_dst // block.groups
    o = torch.arange(n_dst).view(-1, 1)
    j = torch.arange(in_per_group).view(1, -1)
    row = block.in_total or in_per_group  # a part of a concatenation reads some columns
    return (((o // out_per_group) * in_per_group + j).reshape(-1),
            o.expand(n_dst, in_per_group).reshape(-1),
            base + ((o * row + block.in_offset + j) * K).reshape(-1, 1))


def materialize_edges(
    block: DenseEdges | DiagEdges | HeadEdges,
    set_offset: list[int],
    set_size: list[int],
    tensor_offset: dict[str, int],
    const_zero: int,
    const_one: int,
    canvas: tuple[int, int],
    kernel_edges: str,
    features: bool = True,
) -> EdgeArrays:
    """Turn one block into edge arrays (vectorised; no loop over edges). ``features=False``
    leaves out the ``[E, F]`` feature sources of a block that reads a slice (``feat`` None):
    its run says all there is to know, and building it is the most of a large spec's cost."""
    entry_mode = kernel_edges == "entry"
    F = 1 if entry_mode else canvas[0] * canvas[1]
    centre = int(canvas_positions((1, 1), canvas)[0])
    # A scalar edge sits at the centre of the canvas: in its feature vector, or as its position.
    slot, scalar_pos = (0, centre) if entry_mode else (centre, 0)
    s0, d0 = set_offset[block.src], set_offset[block.dst]
    n_src, n_dst = set_size[block.src], set_size[block.dst]
    if not isinstance(block, HeadEdges):  # all of the destination's nodes, or some
        first, n_dst = nodes_read(block, set_size)
        d0 += first
        if isinstance(block, DiagEdges):
            s0, n_src = s0 + first, n_dst

    def arrays(src, dst, pos, values, columns, base=-1):
        """Edges with feature sources ``values [E, len(columns)]`` (or a function giving
        them) in slots ``columns`` (the others the constant 0); a slice run from ``base`` when
        ``base >= 0``."""
        slice_run = base >= 0
        feat = None
        if features or not slice_run:
            feat = torch.full((src.numel(), F), const_zero, dtype=torch.long)
            feat[:, columns] = values() if callable(values) else values
        cols = None if len(columns) == F else tuple(int(c) for c in columns)
        return EdgeArrays(s0 + src, d0 + dst, feat, pos, block.edge_type, base,
                          cols if slice_run else None)

    if isinstance(block, DiagEdges):
        i = torch.arange(n_src)
        pos = torch.full_like(i, scalar_pos)
        if block.param is None:
            return arrays(i, i, pos, const_one, [slot])
        base = tensor_offset[block.param] + block.offset
        return arrays(i, i, pos, (base + i).view(-1, 1), [slot], base)

    if isinstance(block, HeadEdges):
        src, dst = _within_heads(n_src, n_dst, block.heads)
        return arrays(src, dst, torch.full_like(src, scalar_pos), const_one, [slot])

    base = tensor_offset[block.param] + block.offset
    kh, kw = block.kernel
    K = kh * kw
    src, dst, first = _dense_layout(block, n_src, n_dst, base, K)
    # Edge order follows the weight's memory order, so every block that reads its tensor's
    # columns whole is a slice of the source vector, its kernels in their canvas slots.
    run = -1 if block.in_total else base
    oversize = kh > canvas[0] or kw > canvas[1]
    if entry_mode or oversize:
        # One edge per kernel entry: placed on the canvas (entry mode), or, for a kernel larger
        # than the canvas (a ViT's patch embedding), numbered 1 + its index in the kernel.
        E = src.numel()
        pos = canvas_positions(block.kernel, canvas) if entry_mode else 1 + torch.arange(K)
        if run >= 0 and not features and K > 1:  # a slice: endpoints stay one per kernel
            return EdgeArrays(s0 + src, d0 + dst, None, pos, block.edge_type, run,
                              None if F == 1 else (slot,), repeat=K)
        return arrays(src.repeat_interleave(K), dst.repeat_interleave(K), pos.repeat(E),
                      lambda: (first + torch.arange(K).view(1, -1)).reshape(-1, 1), [slot],
                      run)
    return arrays(src, dst, torch.zeros_like(src),
                  lambda: first + torch.arange(K).view(1, -1),  # [E, K]: the kernel, row-major
                  canvas_positions(block.kernel, canvas), run)
