"""How a :class:`~weightspace.graph.spec.GraphSpec` computes its index maps from its blueprint.

:func:`materialize` fills a spec's topology (``edge_index``, node and edge types, layers, input
and output ids) and its two gather maps ``node_src``/``edge_src`` into the source vector
``s = [v; u; 0; 1]``, checks that every parameter entry sits in exactly one feature slot, or
in one per use of a shared tensor (:func:`check_bijection`), and plans how a module's tensors
are read without a flat copy (:func:`plan_module_reads`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from weightspace.errors import SpecMismatchError, UnsupportedModuleError
from weightspace.graph.blocks import (
    NODE_DEFAULTS,
    DenseEdges,
    DiagEdges,
    materialize_edges,
    nodes_read,
)

if TYPE_CHECKING:
    from weightspace.graph.spec import GraphSpec


def materialize(spec: GraphSpec):
    bp = spec.blueprint
    sizes = [s.size for s in bp.sets]
    offsets, n = [], 0
    for size in sizes:
        offsets.append(n)
        n += size
    spec.set_offset, spec.num_nodes = offsets, n
    P, Q = len(spec.params), len(spec.buffers)
    spec.const_zero, spec.const_one = P + Q, P + Q + 1
    tensor_offset = {s.name: s.offset for s in spec.params.slots}
    tensor_offset.update({s.name: P + s.offset for s in spec.buffers.slots})

    # Blocks that read a slice of their tensor need no [E, F] index map: their run says it
    # (edge_runs); the full map is built only when something asks for it (spec.edge_src).
    # Per-edge ids in the smallest types that hold them (a VGG has 10^8 edges). A slice read
    # entry by entry stays compact (one endpoint pair per kernel) until the per-edge tensors,
    # allocated once at their final size, are filled by broadcasting.
    pos_type = torch.int16 if max(spec.canvas[0] * spec.canvas[1], _largest_kernel(bp)) < 2**15 \
        else torch.int32
    blocks = []
    for b in bp.edges:
        a = materialize_edges(b, offsets, sizes, tensor_offset, spec.const_zero,
                              spec.const_one, spec.canvas, spec.kernel_edges, features=False)
        a.src, a.dst = (t.to(torch.int32) if n < 2**31 else t for t in (a.src, a.dst))
        a.pos = a.pos.to(pos_type)
        blocks.append(a)
    counts = [a.count for a in blocks]
    E = sum(counts)
    spec.edge_index = torch.empty(2, E, dtype=torch.long)
    spec.edge_pos = torch.empty(E, dtype=pos_type)
    spec.edge_type = torch.empty(E, dtype=torch.int8)
    at = 0
    for a, count in zip(blocks, counts, strict=True):
        k = a.repeat
        for row, ends in enumerate((a.src, a.dst)):
            spec.edge_index[row, at : at + count].view(-1, k).copy_(ends.view(-1, 1))
        spec.edge_pos[at : at + count].view(-1, k).copy_(a.pos.view(1, -1) if k > 1
                                                          else a.pos.view(-1, 1))
        spec.edge_type[at : at + count] = a.edge_type
        a.src = a.dst = a.pos = None
        at += count
    spec.edge_runs = contiguous_runs(blocks, counts)
    spec.gather_src = [a.feat for a in blocks]  # [E', F] for the blocks that gather, else None
    del blocks
    spec._edge_src = None

    const = {"zero": spec.const_zero, "one": spec.const_one}
    node_src = torch.tensor([const[d] for d in NODE_DEFAULTS]).repeat(n, 1)
    for slot in bp.node_slots:
        base = tensor_offset[slot.tensor] + slot.offset
        first, count = nodes_read(slot, sizes)
        o = offsets[slot.set] + first
        node_src[o : o + count, slot.slot] = base + torch.arange(count)
    spec.node_src = node_src
    plan_module_reads(spec, tensor_offset)

    size_t = torch.tensor(sizes, dtype=torch.long)

    def per_set(values):
        return torch.tensor(values, dtype=torch.long).repeat_interleave(size_t)

    spec.node_type = per_set([s.node_type for s in bp.sets])
    spec.activation = per_set([s.activation for s in bp.sets])
    spec.layer = per_set(depths(spec))
    spec.input_id = role_ids(spec, "input", key=lambda s: bp.sets[s].input_index)
    spec.output_id = role_ids(spec, "output")
    check_bijection(spec, tensor_offset)
    spec._param_from = None

def plan_module_reads(spec, tensor_offset: dict[str, int]):
    """Precompute how :meth:`module_graph` reads a module's tensors without a flat copy.

    Contiguous edge blocks are copied straight from their tensor; everything else is
    gathered from a compact source ``c = [tensors that gathers read; 0; 1]``, whose
    indices are the spec's indices remapped once here. Each edge block reads one tensor
    (its blueprint block's) and the constants, so its indices move by one shift each; they
    are kept flat, in int32 when they fit (half the memory, and ``index_select`` gathers them
    faster than int64 indices).
    """
    P, Q = len(spec.params), len(spec.buffers)
    slots = spec.params.slots + spec.buffers.slots
    numel = {s.name: s.numel for s in slots}
    blocks = spec.blueprint.edges
    gathered = {getattr(b, "param", None) for b, (_, _, base, _) in zip(blocks, spec.edge_runs,
                                                                          strict=True)
                if base < 0}
    gathered |= {slot.tensor for slot in spec.blueprint.node_slots}
    order = [s.name for s in slots if s.name in gathered]
    compact_start, running = {}, 0
    for name in order:
        compact_start[name] = running
        running += numel[name]
    spec._compact_tensors = order
    dtype = torch.int32 if running + 2 < 2**31 else torch.long

    def remap(idx: Tensor, name: str | None) -> Tensor:
        """``idx`` (entries of tensor ``name`` or the constants) in the compact source."""
        out = idx - (P + Q) + running  # the constants 0, 1 follow the tensors
        if name is not None:
            out = torch.where(idx < P + Q, idx - tensor_offset[name] + compact_start[name], out)
        return out.reshape(-1).to(dtype)

    spec._module_edge_plan = []
    for block, (e0, e1, base, columns), gather in zip(blocks, spec.edge_runs, spec.gather_src,
                                                      strict=True):
        name = getattr(block, "param", None)
        if base >= 0:
            spec._module_edge_plan.append((e0, e1, name, base - tensor_offset[name], columns))
        else:
            spec._module_edge_plan.append((e0, e1, None, 0, remap(gather, name)))
    # node features: several tensors in one matrix, so each entry finds its own
    starts = torch.tensor([tensor_offset[n] for n in order] + [P + Q])
    shifts = torch.tensor([compact_start[n] - tensor_offset[n] for n in order]
                          + [running - (P + Q)])
    idx = spec.node_src.reshape(-1)
    owner = torch.searchsorted(starts, idx, right=True) - 1
    spec._compact_node_src = (idx + shifts[owner]).to(dtype)


def depths(spec) -> list[int]:
    """Longest path (in layers) from an input or token set to each set."""
    bp = spec.blueprint
    depth = [0] * len(bp.sets)
    changed = True
    while changed:
        changed = False
        for e in bp.edges:
            if depth[e.dst] < depth[e.src] + 1:
                depth[e.dst] = depth[e.src] + 1
                changed = True
    return depth

def role_ids(spec, role: str, key=None) -> Tensor:
    ids = torch.full((spec.num_nodes,), -1, dtype=torch.long)
    sets = [i for i, s in enumerate(spec.blueprint.sets) if s.role == role]
    if key is not None:
        sets.sort(key=key)
    running = 0
    for i in sets:
        o, size = spec.set_offset[i], spec.blueprint.sets[i].size
        ids[o : o + size] = torch.arange(running, running + size)
        running += size
    return ids

def check_bijection(spec, tensor_offset: dict[str, int]):
    """Every parameter entry fills a feature slot, and only one unless its whole tensor is read
    alike more than once (shared weights); buffer entries fill at most one.

    Each block reads one interval of the source vector (by construction of
    ``materialize_edges``), so coverage is checked on intervals: each must lie inside its
    own tensor, no two may overlap, and together they must cover all parameters.
    """
    P, Q = len(spec.params), len(spec.buffers)
    sizes = [s.size for s in spec.blueprint.sets]
    numel = {s.name: s.numel for s in spec.params.slots}
    numel.update({s.name: s.numel for s in spec.buffers.slots})
    intervals = []
    columns: dict[tuple, set] = {}  # the parts of a concatenation read by one weight
    for b in spec.blueprint.edges:
        if isinstance(b, DenseEdges) and b.in_total:
            key = (b.param, b.offset, nodes_read(b, sizes)[1] * b.kernel[0] * b.kernel[1],
                   b.in_total)
            columns.setdefault(key, set()).add((b.in_offset, sizes[b.src]))
        elif isinstance(b, DenseEdges):
            n_src, n_dst = sizes[b.src], nodes_read(b, sizes)[1]
            count = (n_src * n_dst if b.transposed else n_dst * (n_src // b.groups)) * (
                b.kernel[0] * b.kernel[1])
            intervals.append((b.param, b.offset, count))
        elif isinstance(b, DiagEdges) and b.param is not None:
            intervals.append((b.param, b.offset, nodes_read(b, sizes)[1]))
    intervals += _concat_intervals(columns)
    for slot in spec.blueprint.node_slots:
        intervals.append((slot.tensor, slot.offset, nodes_read(slot, sizes)[1]))
    spans = []
    for name, offset, count in intervals:
        if offset + count > numel[name]:
            raise SpecMismatchError(
                f"{name!r} holds {numel[name]} entries but a rule reads {offset + count}"
            )
        start = tensor_offset[name] + offset
        spans.append((start, start + count, name))
    # A tensor read alike in several places (tied weights, a module called twice: see
    # weightspace.graph.shared_weights) covers its entries once.
    spans = sorted(set(spans))
    covered = 0
    for (start, stop, name), (next_start, _, next_name) in zip(
        spans, spans[1:] + [(P + Q, 0, "")], strict=True
    ):
        if stop > next_start and name == next_name:
            module = name.rpartition(".")[0] or name
            raise UnsupportedModuleError(module, "shared weights", f"{name!r} is read more than "
                                         f"once, in overlapping parts: a shared tensor is read "
                                         f"only whole, alike in every use")
        if stop > next_start:
            raise SpecMismatchError(f"{name!r} and {next_name!r} are read more than once")
        if start < P:
            covered += stop - start
    if covered != P:
        read = {name for start, _, name in spans if start < P}
        missing = [s for s in spec.params.slots if s.name not in read]
        slot = missing[0] if missing else spec.params.slots[0]
        raise SpecMismatchError(
            f"parameter {slot.name!r} (shape {list(slot.shape)}) is not read by any rule: "
            f"the traced forward does not use it, or uses it in a way no rule covers"
        )
    # Buffers sit in node features, and in edges only where a rule reads a buffer as edge
    # weights (a fixed positional encoding): scan the edges only then.
    edges_read_buffers = any(
        getattr(b, "param", None) is not None and tensor_offset[b.param] >= P
        for b in spec.blueprint.edges
    )
    skip = 0 if edges_read_buffers else spec.num_edges * spec.num_edge_features
    flat = (torch.cat([spec.edge_src.reshape(-1), spec.node_src.reshape(-1)])
            if edges_read_buffers else spec.node_src.reshape(-1))
    at = torch.nonzero((flat >= P) & (flat < P + Q)).reshape(-1)
    spec.buffer_to = flat[at] - P  # buffer entries carried by the graph ...
    spec.buffer_from = at + skip  # ... at these places of [edge_attr.flatten(); x.flatten()]
    carried = torch.zeros(Q, dtype=torch.bool)
    carried[spec.buffer_to] = True
    spec.extra_buffer_index = torch.nonzero(~carried).reshape(-1)


def _concat_intervals(columns: dict[tuple, set]) -> list[tuple[str, int, int]]:
    """One interval per weight that reads a concatenation part by part, once its parts are
    checked to tile the weight's input channels."""
    intervals = []
    for (name, offset, rows, total), parts in columns.items():
        at = 0
        for start, n in sorted(parts):
            if start != at:
                raise SpecMismatchError(f"{name!r}: the parts of the concatenation it reads "
                                        f"cover input channels up to {at}, then from {start}")
            at += n
        if at != total:
            raise SpecMismatchError(f"{name!r} has {total} input channels, the concatenation "
                                    f"it reads {at}")
        intervals.append((name, offset, rows * total))
    return intervals


def _largest_kernel(bp) -> int:
    """The most entries of any kernel: an edge's position id when read entry by entry."""
    return max([e.kernel[0] * e.kernel[1] + 1 for e in bp.edges if hasattr(e, "kernel")],
               default=1)


def contiguous_runs(arrays, counts) -> list[tuple[int, int, int, tuple | None]]:
    """``(first edge, end edge, base, columns)`` per block: ``base >= 0`` when the block's
    feature sources are exactly ``base, base + 1, ...`` (a plain slice of the source vector),
    in the slots ``columns`` only when those are given (the others the constant 0), else -1."""
    runs, e0 = [], 0
    for a, count in zip(arrays, counts, strict=True):
        e1 = e0 + count
        runs.append((e0, e1, a.contiguous_base if e1 > e0 else -1, a.columns))
        e0 = e1
    return runs


def _run_entries(spec, e0: int, e1: int, base: int, columns) -> tuple[Tensor, Tensor]:
    """``(source index, place in edge_attr.flatten())`` of every entry a slice run reads."""
    F = spec.num_edge_features
    if columns is None:
        j = torch.arange((e1 - e0) * F)
        return base + j, e0 * F + j
    K = len(columns)
    j = torch.arange((e1 - e0) * K)
    return base + j, (e0 + j // K) * F + torch.tensor(columns)[j % K]


def build_edge_src(spec) -> Tensor:
    """The full ``[E, F]`` map of edge feature sources, from the runs and gathered blocks."""
    F = spec.num_edge_features
    out = torch.full((spec.num_edges * F,), spec.const_zero, dtype=torch.long)
    for (e0, e1, base, columns), gather in zip(spec.edge_runs, spec.gather_src, strict=True):
        if gather is not None:
            out[e0 * F : e1 * F] = gather.reshape(-1)
        elif e1 > e0:
            idx, at = _run_entries(spec, e0, e1, base, columns)
            out[at] = idx
    return out.view(spec.num_edges, F)


def parameter_places(spec) -> Tensor:
    """For each parameter entry, its place in ``[edge_attr.flatten(); x.flatten()]`` (for a
    tensor read in several places, one of them), without the full edge map."""
    P, F = spec.num_params, spec.num_edge_features
    sources, places = [], []
    for (e0, e1, base, columns), gather in zip(spec.edge_runs, spec.gather_src, strict=True):
        if gather is not None:
            flat = gather.reshape(-1)
            at = torch.nonzero(flat < P).reshape(-1)
            sources.append(flat[at])
            places.append(e0 * F + at)
        elif e1 > e0 and base < P:
            idx, at = _run_entries(spec, e0, e1, base, columns)
            sources.append(idx)
            places.append(at)
    flat = spec.node_src.reshape(-1)
    at = torch.nonzero(flat < P).reshape(-1)
    sources.append(flat[at])
    places.append(spec.num_edges * F + at)
    param_from = torch.empty(P, dtype=torch.long)
    param_from[torch.cat(sources)] = torch.cat(places)
    return param_from


def edge_features(spec, s: Tensor, gathers: list) -> Tensor:
    """``s[..., edge_src]`` for source vectors ``s [..., P+Q+2]``, block by block.

    Edges whose features are a contiguous slice of ``s`` (a conv whose kernel fills the
    canvas: ``W`` in ``(out, in, kh, kw)`` order *is* the edge order) are copied as slices,
    and so are smaller kernels (a 1x1 conv, a norm's diagonal), into their slots of zeros;
    only the rest go through their block's index map (``gathers``). The result is identical to
    ``s[..., edge_src]``.
    """
    lead, F = s.shape[:-1], spec.num_edge_features
    parts = []
    for (e0, e1, base, columns), gather in zip(spec.edge_runs, gathers, strict=True):
        n = e1 - e0
        if base < 0:
            parts.append(s[..., gather])
        elif columns is None:
            parts.append(s[..., base : base + n * F].reshape(*lead, n, F))
        else:  # a kernel smaller than the canvas: its slots from the slice, zeros elsewhere
            block = s.new_zeros(*lead, n, F)
            block[..., list(columns)] = s[..., base : base + n * len(columns)].reshape(
                *lead, n, len(columns))
            parts.append(block)
    if not parts:
        return s.new_zeros(*lead, 0, F)
    return torch.cat(parts, dim=-2)
