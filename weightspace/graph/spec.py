"""GraphSpec: one architecture's parameter graph as a fixed index map over its flat weights.

For an architecture with parameters ``v in R^P`` and buffers ``u in R^Q`` let the *source
vector* be ``s = [v; u; 0; 1] in R^(P+Q+2)``. The spec holds

- the topology: ``edge_index [2, E]``, node/edge types, layer ids, input/output ids;
- two gather maps ``node_src [N, 3]`` and ``edge_src [E, F]`` of indices into ``s``, so that a
  network's graph is ``x = s[node_src]``, ``edge_attr = s[edge_src]`` -- one gather each;
- their inverse: every parameter entry sits in exactly one feature slot (checked when the spec
  is built; a shared tensor, one per use: ``param_from`` reads one of them), so
  ``v = [edge_attr.flatten(); x.flatten()][param_from]`` recovers the weights bit for bit,
  and likewise for the buffers that nodes carry (the rest travel as ``extra_buffers``).

``F = KH * KW``: kernels (and the spatial blocks of a linear layer after a flatten) are centred
on a ``KH x KW`` canvas, the largest kernel of the spec up to ``MAX_CANVAS`` unless a canvas is
given. A kernel larger than the canvas is read entry by entry: one edge per kernel entry, its
value at the canvas centre and ``edge_pos = 1 + `` its row-major index in the kernel (other
edges have ``edge_pos = 0``). In ``kernel_edges="entry"`` mode every kernel entry is an edge of
its own (``F = 1``) whose ``edge_pos`` is its place on the canvas.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from weightspace.errors import SpecMismatchError
from weightspace.graph.blocks import (
    NODE_FEATURES,
    Blueprint,
    DenseEdges,
)
from weightspace.graph.example_inputs import as_tuple, default_example_inputs
from weightspace.graph.fingerprint import module_fingerprint
from weightspace.graph.index_maps import (
    build_edge_src,
    edge_features,
    materialize,
    parameter_places,
)
from weightspace.graph.layout import FlatLayout, buffer_layout, parameter_layout, split_state
from weightspace.graph.reader import GraphReader
from weightspace.graph.symmetry import permutation_groups

SPEC_FORMAT_VERSION = 1
# Kernels up to this size fill the edge features in channel mode; larger ones are read entry
# by entry, so that one larger kernel (a 7x7 stem, a ViT patch embedding) does not widen
# every edge of the graph: 3x3 is by far the most common kernel.
MAX_CANVAS = (3, 3)
_SPECS_BY_FINGERPRINT: dict[str, GraphSpec] = {}
_SPECS_BY_ID: dict[str, GraphSpec] = {}


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def spec_id_of(spec_dict: dict) -> str:
    """The id of the spec that ``spec_dict`` (``GraphSpec.to_dict()``) describes."""
    return _hash(spec_dict)


class GraphSpec:
    """The parameter graph of one architecture (see the module docstring).

    Build one with :meth:`from_module`; specs are cached by architecture, so a second network
    of the same architecture reuses every index map.

    Args:
        blueprint: the node sets and blocks from tracing.
        params: the flat layout of the parameters.
        buffers: the flat layout of the buffers.
        input_shapes: the shape and dtype of each example input.
        kernel_edges: ``"channel"`` (one edge per channel pair carrying the kernel) or
            ``"entry"`` (one edge per kernel entry).
        canvas: the ``(KH, KW)`` canvas that every kernel is padded onto; ``None``: the largest
            kernel of the architecture.
    """

    def __init__(
        self,
        blueprint: Blueprint,
        params: FlatLayout,
        buffers: FlatLayout,
        input_shapes: list[tuple[list[int], str]],
        kernel_edges: str = "channel",
        canvas: tuple[int, int] | None = None,
    ):
        if kernel_edges not in ("channel", "entry"):
            raise ValueError(f"kernel_edges must be 'channel' or 'entry', got {kernel_edges!r}")
        self.blueprint = blueprint
        self.params = params
        self.buffers = buffers
        self.input_shapes = input_shapes
        self.kernel_edges = kernel_edges
        self.canvas = tuple(canvas) if canvas else self._largest_kernel()
        if len(self.canvas) != 2 or min(self.canvas) < 1:
            raise ValueError(f"canvas must be two positive sizes, got {canvas!r}")
        dtypes = {s.dtype for s in params.slots}
        if len(dtypes) > 1:
            raise SpecMismatchError(f"parameters of mixed dtypes {sorted(dtypes)}")
        self.dtype = getattr(torch, dtypes.pop()) if dtypes else torch.float32
        self.id = spec_id_of(self.to_dict())
        materialize(self)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_module(
        cls,
        model: nn.Module,
        example_inputs=None,
        kernel_edges: str = "channel",
        canvas: tuple[int, int] | None = None,
    ) -> GraphSpec:
        """Trace ``model`` (or fetch the cached spec of its architecture)."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
        if next(model.parameters(), None) is None:
            raise ValueError(f"{type(model).__name__} has no parameters: a parameter graph "
                             f"needs at least one weight")
        inputs = as_tuple(example_inputs) or default_example_inputs(model)
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        if dtype is not None:  # trace a float64 network with float64 inputs
            inputs = tuple(x.to(dtype) if x.is_floating_point() else x for x in inputs)
        fingerprint = module_fingerprint(model, inputs, kernel_edges, canvas)
        cached = _SPECS_BY_FINGERPRINT.get(fingerprint)
        if cached is not None:
            return cached
        blueprint = GraphReader(model, inputs).read()
        spec = cls(
            blueprint,
            parameter_layout(model),
            buffer_layout(model),
            [(list(x.shape), str(x.dtype).removeprefix("torch.")) for x in inputs],
            kernel_edges,
            canvas,
        )
        spec = _SPECS_BY_ID.setdefault(spec.id, spec)
        _SPECS_BY_FINGERPRINT[fingerprint] = spec
        return spec

    @classmethod
    def get(cls, spec_id: str) -> GraphSpec:
        """A spec built (or loaded) earlier in this process, by id."""
        try:
            return _SPECS_BY_ID[spec_id]
        except KeyError:
            raise KeyError(f"no GraphSpec with id {spec_id!r} in this process") from None

    def to_dict(self) -> dict:
        """Plain data (JSON) from which :meth:`from_dict` rebuilds the same spec."""
        aliases = {"param_aliases": self.params.aliases} if self.params.aliases else {}
        return aliases | {
            "format": SPEC_FORMAT_VERSION,
            "blueprint": self.blueprint.to_dict(),
            "params": self.params.to_list(),
            "buffers": self.buffers.to_list(),
            "input_shapes": [list(s) for s in self.input_shapes],
            "kernel_edges": self.kernel_edges,
            "canvas": list(self.canvas),
        }

    @classmethod
    def from_dict(cls, d: dict) -> GraphSpec:
        if d.get("format") != SPEC_FORMAT_VERSION:
            raise SpecMismatchError(
                f"spec format {d.get('format')!r}; this version reads {SPEC_FORMAT_VERSION}"
            )
        spec = cls(
            Blueprint.from_dict(d["blueprint"]),
            FlatLayout.from_list(d["params"], "parameter", d.get("param_aliases")),
            FlatLayout.from_list(d["buffers"], "buffer"),
            [tuple(s) for s in d["input_shapes"]],
            d["kernel_edges"],
            tuple(d["canvas"]),
        )
        return _SPECS_BY_ID.setdefault(spec.id, spec)

    def _largest_kernel(self) -> tuple[int, int]:
        """The canvas: the largest kernel (in channel mode, the largest up to MAX_CANVAS)."""
        kh = kw = 1
        for e in self.blueprint.edges:
            if not isinstance(e, DenseEdges):
                continue
            if self.kernel_edges == "channel" and (
                e.kernel[0] > MAX_CANVAS[0] or e.kernel[1] > MAX_CANVAS[1]
            ):
                continue  # read entry by entry (see the module docstring)
            kh, kw = max(kh, e.kernel[0]), max(kw, e.kernel[1])
        return kh, kw

    def module_graph(self, model_or_state: nn.Module | Mapping[str, Tensor],
                     check_finite: bool = True) -> Data:
        """:meth:`graph` of a module, reading its tensors directly (no flat copy of the
        weights): the fast path of ``to_graph``."""
        state = split_state(model_or_state)
        for layout, what in ((self.params, "weights"), (self.buffers, "buffers")):
            for slot in layout.slots:
                t = layout.checked(state, slot)
                # A buffer no feature carries (an attention mask of -inf) may be infinite.
                if (check_finite and t.is_floating_point() and not _all_finite(t)
                        and (layout is self.params or slot.name in self.feature_buffers
                             or bool(t.isnan().any()))):
                    raise ValueError(f"{what}: {slot.name!r} holds NaN or infinite values")
        c = torch.cat([state[n].detach().reshape(-1).to(self.dtype) for n in
                       self._compact_tensors] + [torch.tensor([0.0, 1.0], dtype=self.dtype)])
        F = self.num_edge_features
        out = torch.empty(self.num_edges * F, dtype=self.dtype)
        for e0, e1, name, offset, src in self._module_edge_plan:
            if name is None:
                torch.index_select(c, 0, src, out=out[e0 * F : e1 * F])
                continue
            flat = state[name].detach().reshape(-1)
            if src is None:  # the block is a slice of the tensor
                out[e0 * F : e1 * F].copy_(flat[offset : offset + (e1 - e0) * F])
            else:  # ... placed in the slots `src`, zeros elsewhere
                block = out[e0 * F : e1 * F].view(e1 - e0, F)
                block.zero_()
                block[:, list(src)] = flat[offset : offset + (e1 - e0) * len(src)].view(
                    e1 - e0, len(src)).to(self.dtype)
        buffers = self.flatten_buffers(state)
        x = c.index_select(0, self._compact_node_src).view(self.num_nodes, -1)
        return self._data(x, out.view(self.num_edges, F), buffers[self.extra_buffer_index])

    @property
    def param_from(self) -> Tensor:
        """For each parameter entry, its place in ``[edge_attr.flatten(); x.flatten()]``."""
        if self._param_from is None:
            self._param_from = parameter_places(self)
        return self._param_from

    @property
    def edge_src(self) -> Tensor:
        """``[E, F]``: the source-vector index of every edge feature (built on first use)."""
        if self._edge_src is None:
            self._edge_src = build_edge_src(self)
        return self._edge_src

    @property
    def feature_buffers(self) -> set[str]:
        """The buffers whose entries node or edge features carry (running statistics, fixed
        encodings); the others travel as ``extra_buffers``."""
        if not hasattr(self, "_feature_buffers"):
            names = set(self.buffers.by_name)
            self._feature_buffers = {n.tensor for n in self.blueprint.node_slots if n.is_buffer} | {
                b.param for b in self.blueprint.edges if getattr(b, "param", None) in names}
        return self._feature_buffers

    # ------------------------------------------------------------------ properties
    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    @property
    def num_edge_features(self) -> int:
        return 1 if self.kernel_edges == "entry" else self.canvas[0] * self.canvas[1]

    @property
    def num_params(self) -> int:
        return len(self.params)

    @property
    def permutation_groups(self):
        """The sets whose neurons may be permuted together (``weightspace.graph.symmetry``)."""
        if not hasattr(self, "_groups"):
            self._groups = permutation_groups(self)
        return self._groups

    def __repr__(self) -> str:
        return (f"GraphSpec(id={self.id}, nodes={self.num_nodes}, edges={self.num_edges}, "
                f"params={self.num_params}, buffers={len(self.buffers)}, "
                f"edge_features={self.num_edge_features}, sets={len(self.blueprint.sets)})")

    # ------------------------------------------------------------------ flat vectors
    def flatten(self, model_or_state: nn.Module | Mapping[str, Tensor]) -> Tensor:
        """The flat parameter vector ``v in R^P`` (see ``weightspace.graph.layout``)."""
        return self.params.flatten(split_state(model_or_state), self.dtype)

    def flatten_buffers(self, model_or_state: nn.Module | Mapping[str, Tensor]) -> Tensor:
        """The flat buffer vector ``u in R^Q``, in float64 (exact for float32 and counters)."""
        return self.buffers.flatten(split_state(model_or_state), torch.float64)

    def unflatten(self, vec: Tensor, buffers: Tensor | None = None) -> dict[str, Tensor]:
        """``state_dict`` from ``v`` (and ``u``): the exact inverse of :meth:`flatten`."""
        state = dict(self.params.unflatten(vec))
        if buffers is not None:
            state.update(self.buffers.unflatten(buffers))
        return state

    # ------------------------------------------------------------------ graphs
    def source(self, vec: Tensor, buffers: Tensor | None = None) -> Tensor:
        """``s = [v; u; 0; 1]``, batched over leading axes of ``vec``."""
        if vec.shape[-1] != len(self.params):
            raise SpecMismatchError(
                f"weight vector has {vec.shape[-1]} entries, spec {self.id} expects "
                f"{len(self.params)}"
            )
        if buffers is None:
            if len(self.buffers):
                raise SpecMismatchError(
                    f"this architecture has buffers ({', '.join(self.buffers.names()[:3])}, "
                    f"...): pass them with buffers="
                )
            buffers = vec.new_zeros(*vec.shape[:-1], 0)
        if buffers.shape[-1] != len(self.buffers):
            raise SpecMismatchError(
                f"buffer vector has {buffers.shape[-1]} entries, spec {self.id} expects "
                f"{len(self.buffers)}"
            )
        lead = vec.shape[:-1]
        consts = torch.tensor([0.0, 1.0], dtype=vec.dtype, device=vec.device).expand(*lead, 2)
        return torch.cat([vec, buffers.to(vec.dtype), consts], dim=-1)

    def edge_features(self, s: Tensor, gathers: list | None = None) -> Tensor:
        """``s[edge_src]`` for source vectors ``s [..., P+Q+2]``, block by block
        (:func:`~weightspace.graph.index_maps.edge_features`; ``gathers``: this spec's
        ``gather_src``, e.g. copies already on ``s``'s device)."""
        return edge_features(self, s, self.gather_src if gathers is None else gathers)

    def graph(self, vec: Tensor, buffers: Tensor | None = None) -> Data:
        """The parameter graph of the network with weights ``vec`` (and ``buffers``)."""
        if vec.dim() != 1:
            raise SpecMismatchError(f"expected one weight vector [P], got {list(vec.shape)}")
        s = self.source(vec, buffers)
        # Buffer entries no node carries travel as they are (float64: counters stay exact).
        extra = (buffers.to(torch.float64)[self.extra_buffer_index] if buffers is not None
                 else torch.zeros(0, dtype=torch.float64))
        return self._data(s[self.node_src], self.edge_features(s), extra)

    def _data(self, x: Tensor, edge_attr: Tensor, extra: Tensor) -> Data:
        # Topology tensors are shared by every graph of the spec (never copied): treat them
        # as read-only.
        return Data(
            x=x,
            edge_index=self.edge_index,
            edge_attr=edge_attr,
            node_type=self.node_type,
            edge_type=self.edge_type,
            edge_pos=self.edge_pos,
            layer=self.layer,
            activation=self.activation,
            input_id=self.input_id,
            output_id=self.output_id,
            extra_buffers=extra,
            spec_id=self.id,
            num_nodes=self.num_nodes,
        )

    def weights_from_graph(self, x: Tensor, edge_attr: Tensor) -> Tensor:
        """``v`` from node and edge features: the inverse scatter of :meth:`graph`."""
        if tuple(x.shape) != (self.num_nodes, NODE_FEATURES) or tuple(edge_attr.shape) != (
            self.num_edges, self.num_edge_features
        ):
            raise SpecMismatchError(
                f"graph has x {list(x.shape)} and edge_attr {list(edge_attr.shape)}; spec "
                f"{self.id} expects [{self.num_nodes}, {NODE_FEATURES}] and "
                f"[{self.num_edges}, {self.num_edge_features}]"
            )
        return self._graph_entries(x, edge_attr, self.param_from)

    @staticmethod
    def _graph_entries(x: Tensor, edge_attr: Tensor, at: Tensor) -> Tensor:
        """Entries of ``[edge_attr.flatten(); x.flatten()]`` at ``at``, read from each part
        (no concatenated copy of a large graph's features)."""
        n_edge = edge_attr.numel()
        on_edge = at < n_edge
        out = torch.empty(at.shape, dtype=edge_attr.dtype, device=edge_attr.device)
        out[on_edge] = edge_attr.reshape(-1)[at[on_edge]]
        out[~on_edge] = x.reshape(-1)[at[~on_edge] - n_edge].to(edge_attr.dtype)
        return out

    def buffers_from_graph(self, x: Tensor, edge_attr: Tensor, extra_buffers: Tensor
                           ) -> Tensor:
        """``u`` from the graph's features and its ``extra_buffers``."""
        u = torch.empty(len(self.buffers), dtype=torch.float64)
        u[self.buffer_to] = self._graph_entries(x, edge_attr, self.buffer_from).to(torch.float64)
        if extra_buffers.numel() != self.extra_buffer_index.numel():
            raise SpecMismatchError(
                f"graph carries {extra_buffers.numel()} extra buffer entries, spec {self.id} "
                f"expects {self.extra_buffer_index.numel()}"
            )
        u[self.extra_buffer_index] = extra_buffers.to(torch.float64)
        return u


def _all_finite(t: Tensor) -> bool:
    # A finite sum proves every entry finite (one cheap pass); else look entry by entry.
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())
