"""Shared weights: one tensor read in several places of the graph.

Two cases give the same parameter entries to more than one block of the blueprint:

- *tied* parameters, one tensor under two names (a language model's embedding matrix that is
  also its output head: ``head.weight is embed.weight``);
- a module *called twice* in ``forward`` (a layer applied at two depths).

Each read becomes edges (or node features) of its own, carrying the same values, so a
metanetwork sees every place the tensor acts. The flat weight vector holds the tensor once,
under its first name (``named_parameters()``); the other names are *aliases*, restored when the
weights are loaded back (``FlatLayout.unflatten``).

Symmetry: permuting the neurons along one axis of a shared tensor moves that axis in every
read, so the node sets on the same axis in two reads share one permutation (they are tied). For
a tied embedding ``W [V, C]`` read as ``vocab -> features`` and as the head ``features' ->
logits``, the features' sets are tied; vocabulary and logits are fixed anyway. Sign flips and
scales are ruled out on these sets: a factor that one read undoes downstream, another would not.
"""

from __future__ import annotations

from torch import nn

from weightspace.errors import UnsupportedModuleError
from weightspace.graph.blocks import Blueprint, DenseEdges, DiagEdges, NodeSlot


def parameter_aliases(model: nn.Module) -> dict[str, str]:
    """``{alias: name}`` for every parameter reachable under a second name (tied weights)."""
    first: dict[int, str] = {}
    aliases = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            aliases[name] = first[id(p)]
        else:
            first[id(p)] = name
    return aliases


def _read(block) -> tuple[str, str, tuple, tuple, tuple[int, ...]] | None:
    """``(tensor, kind, where, layout, sets along the tensor's axes)`` of a block reading a
    tensor (``where``: its offsets and first node), else None."""
    if isinstance(block, DenseEdges):
        axes = (block.src, block.dst) if block.transposed else (block.dst, block.src)
        return (block.param, "edges", (block.offset, block.in_offset, block.first),
                (block.groups, block.kernel, block.in_total, block.count), axes)
    if isinstance(block, DiagEdges):
        if block.param is None:
            return None
        return (block.param, "diagonal", (block.offset, block.first), (block.count,),
                (block.src, block.dst))
    if not isinstance(block, NodeSlot):
        return None  # constant edges (attention heads)
    return (block.tensor, f"node feature {block.slot}", (block.offset, block.first),
            (block.count,), (block.set,))


def tie_shared_reads(bp: Blueprint, aliases: dict[str, str]) -> None:
    """Rename aliases to their tensor's first name, and tie the sets of every tensor read more
    than once (module docstring). Reads of one tensor in different ways (a kernel read as a
    bias, another grouping) are refused by name."""
    for block in bp.edges:
        if getattr(block, "param", None) in aliases:
            block.param = aliases[block.param]
    for slot in bp.node_slots:
        if slot.tensor in aliases:
            slot.tensor = aliases[slot.tensor]
    first: dict[tuple[str, tuple], tuple] = {}
    for block in [*bp.edges, *bp.node_slots]:
        read = _read(block)
        if read is None:
            continue
        tensor, kind, where, layout, axes = read
        seen = first.setdefault((tensor, where), read)
        if seen is read:
            continue
        sizes = [bp.sets[s].size for s in axes]
        if (seen[1], seen[3]) != (kind, layout) or [bp.sets[s].size for s in seen[4]] != sizes:
            raise UnsupportedModuleError(
                tensor.rpartition(".")[0] or tensor, "shared weights",
                f"{tensor!r} is read twice in different ways ({seen[1]} and {kind}); a shared "
                f"tensor is read only where every use reads it alike")
        for a, b in zip(seen[4], axes, strict=True):
            if a != b:
                bp.ties.append((a, b))
            for s in (a, b):
                bp.sets[s].sign_ok = bp.sets[s].scale_ok = False
