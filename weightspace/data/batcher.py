"""``GraphBatcher``: flat weight vectors -> one PyG ``Batch`` of parameter graphs, on the device.

For ``B`` networks of one architecture with source vectors ``s [B, P+Q+2]`` (see
:class:`~weightspace.graph.spec.GraphSpec`), the batch is

    x          = s[:, node_src].reshape(B * N, 3)
    edge_attr  = s[:, edge_src].reshape(B * E, F)   (slices where edges read one)
    edge_index = [edge_index + b * N for b in 0..B-1]        (cached per B)
    batch      = [b repeated N times for b in 0..B-1]          (cached per B)

one gather for the features and a cached topology: no per-sample Python. Several architectures
in one call are batched per architecture and concatenated (node indices offset). On CUDA the
rows are pinned and copied non-blocking, and every index map lives on the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torch_geometric.data import Batch

from weightspace.graph.spec import GraphSpec

_TOPOLOGY_FIELDS = ("node_type", "layer", "activation", "input_id", "output_id")
_EDGE_FIELDS = ("edge_type", "edge_pos")


class GraphBatcher:
    """Build batches of parameter graphs from weight matrices (see the module docstring).

    Topology for a batch size is cached after its first use.

    Args:
        specs: the architectures to expect (``GraphSpec`` objects, or one).
        device: where batches are built.
    """

    def __init__(self, specs: Sequence[GraphSpec] | GraphSpec, device: str | torch.device = "cpu"):
        specs = [specs] if isinstance(specs, GraphSpec) else list(specs)
        self.specs = {s.id: s for s in specs}
        self.device = torch.device(device)
        self._maps: dict[str, dict[str, Tensor]] = {}
        self._topology: dict[tuple[str, int], dict[str, Tensor]] = {}

    def __repr__(self) -> str:
        return f"GraphBatcher({len(self.specs)} architectures, device={self.device})"

    def spec(self, spec_id: str) -> GraphSpec:
        try:
            return self.specs[spec_id]
        except KeyError:
            raise KeyError(f"GraphBatcher has no architecture {spec_id!r}; it knows "
                           f"{sorted(self.specs)}") from None

    def _device_maps(self, spec: GraphSpec) -> dict[str, Tensor]:
        if spec.id not in self._maps:
            to = lambda t: t.to(self.device)  # noqa: E731
            self._maps[spec.id] = {
                "node_src": to(spec.node_src),
                "gathers": [None if g is None else to(g) for g in spec.gather_src],
                "edge_index": to(spec.edge_index),
                **{k: to(getattr(spec, k)) for k in _TOPOLOGY_FIELDS + _EDGE_FIELDS},
            }
        return self._maps[spec.id]

    def _batched_topology(self, spec: GraphSpec, B: int) -> dict[str, Tensor]:
        key = (spec.id, B)
        if key not in self._topology:
            m = self._device_maps(spec)
            N = spec.num_nodes
            shift = torch.arange(B, device=self.device) * N
            self._topology[key] = {
                "edge_index": (m["edge_index"].unsqueeze(1) + shift.view(1, B, 1)).reshape(2, -1),
                "batch": torch.arange(B, device=self.device).repeat_interleave(N),
                **{k: m[k].repeat(B) for k in _TOPOLOGY_FIELDS + _EDGE_FIELDS},
            }
        return self._topology[key]

    def _to_device(self, t: Tensor) -> Tensor:
        if t.device == self.device:
            return t
        if self.device.type == "cuda" and t.device.type == "cpu":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def parts(self, spec_id: str, vecs: Tensor, buffers: Tensor | None = None
              ) -> dict[str, Tensor]:
        """The batched fields of ``B`` networks of one architecture (node ids from 0)."""
        spec = self.spec(spec_id)
        if vecs.dim() != 2:
            raise ValueError(f"expected weights [B, P], got {list(vecs.shape)}")
        vecs = self._to_device(vecs)
        buffers = None if buffers is None else self._to_device(buffers)
        s = spec.source(vecs, buffers)  # [B, P+Q+2]
        m = self._device_maps(spec)
        B = vecs.shape[0]
        topo = self._batched_topology(spec, B)
        edge_attr = spec.edge_features(s, gathers=m["gathers"])
        return {
            "x": s[:, m["node_src"]].reshape(B * spec.num_nodes, -1),
            "edge_attr": edge_attr.reshape(B * spec.num_edges, -1),
            **topo,
            "num_graphs": B,
            "num_nodes_per_graph": spec.num_nodes,
        }

    def __call__(self, groups: dict[str, tuple[Tensor, Tensor | None]] | tuple,
                 buffers: Tensor | None = None, spec_id: str | None = None) -> Batch:
        """One ``Batch``: ``batcher(vecs, buffers, spec_id)`` for one architecture, or
        ``batcher({spec_id: (vecs, buffers), ...})`` for several (graphs in dict order)."""
        if isinstance(groups, Tensor):
            if spec_id is None:
                if len(self.specs) != 1:
                    raise ValueError("several architectures known: pass spec_id=")
                spec_id = next(iter(self.specs))
            groups = {spec_id: (groups, buffers)}
        pieces, node_offset, graph_offset = [], 0, 0
        for sid, (vecs, bufs) in groups.items():
            p = self.parts(sid, vecs, bufs)
            if node_offset:  # (the first architecture's cached topology is used as it is)
                p["edge_index"] = p["edge_index"] + node_offset
                p["batch"] = p["batch"] + graph_offset
            node_offset += p["num_graphs"] * p["num_nodes_per_graph"]
            graph_offset += p["num_graphs"]
            pieces.append((sid, p))
        fields = ("x", "edge_attr", "edge_index", "batch") + _TOPOLOGY_FIELDS + _EDGE_FIELDS
        if len(pieces) == 1:
            cat = {f: pieces[0][1][f] for f in fields}
        else:
            cat = {f: torch.cat([p[f] for _, p in pieces], dim=1 if f == "edge_index" else 0)
                   for f in fields}
        counts = torch.tensor([p["num_nodes_per_graph"] for _, p in pieces
                               for _ in range(p["num_graphs"])], device=self.device)
        ptr = torch.zeros(graph_offset + 1, dtype=torch.long, device=self.device)
        ptr[1:] = torch.cumsum(counts, 0)
        spec_ids = [sid for sid, p in pieces for _ in range(p["num_graphs"])]
        return Batch(**cat, ptr=ptr, spec_id=spec_ids, num_nodes=node_offset)
