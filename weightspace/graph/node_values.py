"""``NodeValues``: what each node set of a network computes on given inputs.

A node set is the feature axis of one traced tensor (a layer's outputs, a BatchNorm's, a
residual sum's), so its values on a batch are that tensor with the feature axis last and every
other axis (batch, positions, tokens) flattened into rows. The network is traced by the same
reader that builds its :class:`~weightspace.graph.GraphSpec`, so set ``i`` here is set ``i``
of the spec; the traced graph then runs on each batch and keeps the tensors that carry sets.
Where a set's values pass through several tensors (a layer's output, then its activation),
the last one is kept: what the next layer reads. Sets made inside a module that is read as a
whole (the per-head projections of ``nn.MultiheadAttention``) have no tensor of their own and
are absent.
"""

from __future__ import annotations

import torch
import torch.fx as fx
from torch import Tensor, nn

from weightspace.graph.example_inputs import as_tuple, default_example_inputs
from weightspace.graph.reader import GraphReader
from weightspace.graph.values import Cat, Feat


def _rows(value: Tensor, feat: Feat) -> Tensor:
    """``[rows, size]``: the set's axis last, everything else rows."""
    x = value.movedim(feat.dim, -1)
    if feat.spatial is not None:  # the axis holds C * h * w, channel-major
        x = x.reshape(*x.shape[:-1], -1, feat.spatial[0] * feat.spatial[1]).transpose(-1, -2)
    return x.reshape(-1, x.shape[-1])


class NodeValues:
    """The values of a network's node sets on batches of inputs (module docstring).

    Args:
        model: the network; it is traced once, and runs as it is (call ``eval()`` first for
            BatchNorm statistics and no dropout).
        example_inputs: as for :meth:`GraphSpec.from_module`.

    Shapes:
        ``values(*inputs)`` returns ``{set index: [rows, size]}``, rows = batch x positions.
    """

    def __init__(self, model: nn.Module, example_inputs=None):
        inputs = as_tuple(example_inputs) or default_example_inputs(model)
        reader = GraphReader(model, inputs)
        self.sets = reader.read().sets
        self._traced = reader.traced
        chosen: dict[int, tuple] = {}
        for node, value in reader.values.items():
            # a concatenation holds its parts' values side by side: each is a slice of it
            parts = [(value, None)] if isinstance(value, Feat) else [
                (p, (value.dim, start * (1 if p.spatial is None else p.spatial[0] * p.spatial[1]),
                     p.shape[p.dim]))
                for p, start in zip(value.parts, value.starts, strict=True)
            ] if isinstance(value, Cat) else []
            for feat, part in parts:
                kept = chosen.get(feat.set)
                # the last tensor of the set, one with the set's axis alone preferred
                if kept is None or feat.spatial is None or kept[1].spatial is not None:
                    chosen[feat.set] = (node.name, feat, part)
        self._reads: dict[str, list] = {}
        for name, feat, part in chosen.values():
            self._reads.setdefault(name, []).append((feat, part))

    @torch.no_grad()
    def __call__(self, *inputs) -> dict[int, Tensor]:
        reads, out = self._reads, {}

        class _Keep(fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                if isinstance(result, Tensor):
                    for feat, part in reads.get(n.name, ()):
                        value = result if part is None else result.narrow(*part)
                        out[feat.set] = _rows(value, feat)
                return result

        _Keep(self._traced).run(*inputs)
        return out
