"""GraphSpec: one architecture's parameter graph as a fixed index map over its flat weights.

For an architecture with parameters ``v in R^P`` and buffers ``u in R^Q`` let the *source
vector* be ``s = [v; u; 0; 1] in R^(P+Q+2)``. The spec holds

- the topology: ``edge_index [2, E]``, node/edge types, layer ids, input/output ids;
- two gather maps ``node_src [N, 3]`` and ``edge_src [E, F]`` of indices into ``s``, so that a
  network's graph is ``x = s[node_src]``, ``edge_attr = s[edge_src]`` -- one gather each;
- their inverse: every parameter entry sits in exactly one feature slot (checked when the spec
  is built), so ``v = [edge_attr.flatten(); x.flatten()][param_from]`` recovers the weights bit
  for bit, and likewise for the buffers that nodes carry (the rest travel as
  ``extra_buffers``).

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
    NODE_DEFAULTS,
    NODE_FEATURES,
    Blueprint,
    DenseEdges,
    DiagEdges,
    materialize_edges,
)
from weightspace.graph.layout import FlatLayout, buffer_layout, parameter_layout, split_state
from weightspace.graph.reader import GraphReader

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


def _as_tuple(example_inputs) -> tuple:
    if example_inputs is None:
        return ()
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def default_example_inputs(model: nn.Module) -> tuple:
    """Inputs to trace ``model`` with when the caller gives none.

    A model may say what it takes through an ``example_inputs`` attribute (a tensor, a tuple,
    or a callable returning either); otherwise a network whose first layer is a ``Linear`` or
    an ``Embedding`` gets a batch of one. Anything else must be given its inputs explicitly.
    """
    given = getattr(model, "example_inputs", None)
    if given is not None:
        return _as_tuple(given() if callable(given) else given)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return (torch.zeros(1, m.in_features),)
        if isinstance(m, nn.Embedding):
            return (torch.zeros(1, 1, dtype=torch.long),)
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.MultiheadAttention)):
            break
    raise ValueError(
        f"cannot guess the input shape of {type(model).__name__}: pass example_inputs "
        f"(e.g. torch.zeros(1, 3, 32, 32)) or give the model an `example_inputs` attribute"
    )


class GraphSpec:
    """The parameter graph of one architecture (see the module docstring).

    Build one with :meth:`from_module`; specs are cached by architecture, so a second network
    of the same architecture reuses every index map.
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
        self._materialize()

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
        inputs = _as_tuple(example_inputs) or default_example_inputs(model)
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
        if dtype is not None:  # trace a float64 network with float64 inputs
            inputs = tuple(x.to(dtype) if x.is_floating_point() else x for x in inputs)
        fingerprint = _hash({
            "class": f"{type(model).__module__}.{type(model).__qualname__}",
            "repr": repr(model),
            "params": [(n, list(p.shape), str(p.dtype)) for n, p in model.named_parameters()],
            "buffers": [(n, list(b.shape), str(b.dtype)) for n, b in model.named_buffers()],
            "inputs": [(list(x.shape), str(x.dtype)) for x in inputs],
            "kernel_edges": kernel_edges,
            "canvas": list(canvas) if canvas else None,
        })
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
        return {
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
            FlatLayout.from_list(d["params"], "parameter"),
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

    # ------------------------------------------------------------------ index maps
    def _materialize(self):
        bp = self.blueprint
        sizes = [s.size for s in bp.sets]
        offsets, n = [], 0
        for size in sizes:
            offsets.append(n)
            n += size
        self.set_offset, self.num_nodes = offsets, n
        P, Q = len(self.params), len(self.buffers)
        self.const_zero, self.const_one = P + Q, P + Q + 1
        tensor_offset = {s.name: s.offset for s in self.params.slots}
        tensor_offset.update({s.name: P + s.offset for s in self.buffers.slots})

        arrays = [
            materialize_edges(b, offsets, sizes, tensor_offset, self.const_zero,
                              self.const_one, self.canvas, self.kernel_edges)
            for b in bp.edges
        ]
        F = 1 if self.kernel_edges == "entry" else self.canvas[0] * self.canvas[1]

        def cat(xs):
            return torch.cat(xs) if xs else torch.zeros(0, dtype=torch.long)

        self.edge_index = torch.stack([cat([a.src for a in arrays]), cat([a.dst for a in arrays])])
        self.edge_src = torch.cat([a.feat for a in arrays]) if arrays else torch.zeros(
            0, F, dtype=torch.long)
        self.edge_pos = cat([a.pos for a in arrays])
        self.edge_type = cat([torch.full((a.src.numel(),), a.edge_type) for a in arrays])
        self.edge_runs = _contiguous_runs(arrays)

        const = {"zero": self.const_zero, "one": self.const_one}
        node_src = torch.tensor([const[d] for d in NODE_DEFAULTS]).repeat(n, 1)
        for slot in bp.node_slots:
            base = tensor_offset[slot.tensor] + slot.offset
            o = offsets[slot.set]
            node_src[o : o + sizes[slot.set], slot.slot] = base + torch.arange(sizes[slot.set])
        self.node_src = node_src
        self._plan_module_reads(arrays, tensor_offset)

        size_t = torch.tensor(sizes, dtype=torch.long)

        def per_set(values):
            return torch.tensor(values, dtype=torch.long).repeat_interleave(size_t)

        self.node_type = per_set([s.node_type for s in bp.sets])
        self.activation = per_set([s.activation for s in bp.sets])
        self.layer = per_set(self._depths())
        self.input_id = self._role_ids("input", key=lambda s: bp.sets[s].input_index)
        self.output_id = self._role_ids("output")
        self._check_bijection(tensor_offset)
        self._param_from = None

    def _plan_module_reads(self, arrays, tensor_offset: dict[str, int]):
        """Precompute how :meth:`module_graph` reads a module's tensors without a flat copy.

        Contiguous edge blocks are copied straight from their tensor; everything else is
        gathered from a compact source ``c = [tensors that gathers read; 0; 1]``, whose
        indices are the spec's indices remapped once here.
        """
        P, Q = len(self.params), len(self.buffers)
        slots = self.params.slots + self.buffers.slots
        starts = torch.tensor([tensor_offset[s.name] for s in slots] + [P + Q])
        names = [s.name for s in slots]

        def owner(idx: Tensor) -> Tensor:  # slot number of each source index (consts: len)
            return torch.searchsorted(starts, idx, right=True) - 1

        gather_runs = [(e0, e1) for e0, e1, base in self.edge_runs if base < 0]
        needed = {int(i) for e0, e1 in gather_runs for i in owner(
            self.edge_src[e0:e1].reshape(-1)).unique()}
        needed |= {int(i) for i in owner(self.node_src.reshape(-1)).unique()}
        needed.discard(len(slots))
        order = sorted(needed)
        compact_start = torch.zeros(len(slots) + 1, dtype=torch.long)
        running = 0
        for i in order:
            compact_start[i] = running
            running += slots[i].numel
        compact_start[len(slots)] = running  # the constants 0, 1 follow the tensors
        self._compact_tensors = [names[i] for i in order]

        def remap(idx: Tensor) -> Tensor:
            o = owner(idx)
            base = torch.where(o < len(slots), starts[o.clamp(max=len(slots) - 1)], P + Q)
            return compact_start[o] + idx - base

        self._module_edge_plan = []
        for (e0, e1, base), a in zip(self.edge_runs, arrays, strict=True):
            if base >= 0:
                o = int(owner(torch.tensor([base]))[0])
                self._module_edge_plan.append((e0, e1, names[o], base - int(starts[o]), None))
            else:
                self._module_edge_plan.append((e0, e1, None, 0, remap(a.feat)))
        self._compact_node_src = remap(self.node_src)

    def module_graph(self, model_or_state: nn.Module | Mapping[str, Tensor],
                     check_finite: bool = True) -> Data:
        """:meth:`graph` of a module, reading its tensors directly (no flat copy of the
        weights): the fast path of ``to_graph``."""
        state = split_state(model_or_state)
        for layout, what in ((self.params, "weights"), (self.buffers, "buffers")):
            for slot in layout.slots:
                t = layout.checked(state, slot)
                if check_finite and t.is_floating_point() and not _all_finite(t):
                    raise ValueError(f"{what}: {slot.name!r} holds NaN or infinite values")
        c = torch.cat([state[n].detach().reshape(-1).to(self.dtype) for n in
                       self._compact_tensors] + [torch.tensor([0.0, 1.0], dtype=self.dtype)])
        F = self.num_edge_features
        out = torch.empty(self.num_edges * F, dtype=self.dtype)
        for e0, e1, name, offset, src in self._module_edge_plan:
            if name is not None:
                flat = state[name].detach().reshape(-1)
                out[e0 * F : e1 * F].copy_(flat[offset : offset + (e1 - e0) * F])
            else:
                out[e0 * F : e1 * F] = c[src].reshape(-1)
        buffers = self.flatten_buffers(state)
        return self._data(c[self._compact_node_src], out.view(self.num_edges, F),
                          buffers[self.extra_buffer_index])

    def _depths(self) -> list[int]:
        """Longest path (in layers) from an input or token set to each set."""
        bp = self.blueprint
        depth = [0] * len(bp.sets)
        changed = True
        while changed:
            changed = False
            for e in bp.edges:
                if depth[e.dst] < depth[e.src] + 1:
                    depth[e.dst] = depth[e.src] + 1
                    changed = True
        return depth

    def _role_ids(self, role: str, key=None) -> Tensor:
        ids = torch.full((self.num_nodes,), -1, dtype=torch.long)
        sets = [i for i, s in enumerate(self.blueprint.sets) if s.role == role]
        if key is not None:
            sets.sort(key=key)
        running = 0
        for i in sets:
            o, size = self.set_offset[i], self.blueprint.sets[i].size
            ids[o : o + size] = torch.arange(running, running + size)
            running += size
        return ids

    def _check_bijection(self, tensor_offset: dict[str, int]):
        """Every parameter entry fills exactly one feature slot; buffer entries at most one.

        Each block reads one interval of the source vector (by construction of
        ``materialize_edges``), so coverage is checked on intervals: each must lie inside its
        own tensor, no two may overlap, and together they must cover all parameters.
        """
        P, Q = len(self.params), len(self.buffers)
        sizes = [s.size for s in self.blueprint.sets]
        numel = {s.name: s.numel for s in self.params.slots}
        numel.update({s.name: s.numel for s in self.buffers.slots})
        intervals = []
        for b in self.blueprint.edges:
            if isinstance(b, DenseEdges):
                n_src, n_dst = sizes[b.src], sizes[b.dst]
                count = n_src * n_dst if b.transposed else (
                    n_dst * (n_src // b.groups) * b.kernel[0] * b.kernel[1])
                intervals.append((b.param, b.offset, count))
            elif isinstance(b, DiagEdges) and b.param is not None:
                intervals.append((b.param, b.offset, sizes[b.src]))
        for slot in self.blueprint.node_slots:
            intervals.append((slot.tensor, slot.offset, sizes[slot.set]))
        spans = []
        for name, offset, count in intervals:
            if offset + count > numel[name]:
                raise SpecMismatchError(
                    f"{name!r} holds {numel[name]} entries but a rule reads {offset + count}"
                )
            start = tensor_offset[name] + offset
            spans.append((start, start + count, name))
        spans.sort()
        covered = 0
        for (start, stop, name), (next_start, _, next_name) in zip(
            spans, spans[1:] + [(P + Q, 0, "")], strict=True
        ):
            if stop > next_start:
                raise SpecMismatchError(f"{name!r} and {next_name!r} are read more than once")
            if start < P:
                covered += stop - start
        if covered != P:
            read = {name for start, _, name in spans if start < P}
            missing = [s for s in self.params.slots if s.name not in read]
            slot = missing[0] if missing else self.params.slots[0]
            raise SpecMismatchError(
                f"parameter {slot.name!r} (shape {list(slot.shape)}) is not read by any rule: "
                f"the traced forward does not use it, or uses it in a way no rule covers"
            )
        # Buffers sit in node features, and in edges only where a rule reads a buffer as edge
        # weights (a fixed positional encoding): scan the edges only then.
        edges_read_buffers = any(
            getattr(b, "param", None) is not None and tensor_offset[b.param] >= P
            for b in self.blueprint.edges
        )
        skip = 0 if edges_read_buffers else self.edge_src.numel()
        flat = (torch.cat([self.edge_src.reshape(-1), self.node_src.reshape(-1)])
                if edges_read_buffers else self.node_src.reshape(-1))
        at = torch.nonzero((flat >= P) & (flat < P + Q)).reshape(-1)
        self.buffer_to = flat[at] - P  # buffer entries carried by the graph ...
        self.buffer_from = at + skip  # ... at these places of [edge_attr.flatten(); x.flatten()]
        carried = torch.zeros(Q, dtype=torch.bool)
        carried[self.buffer_to] = True
        self.extra_buffer_index = torch.nonzero(~carried).reshape(-1)

    @property
    def param_from(self) -> Tensor:
        """For each parameter entry, its place in ``[edge_attr.flatten(); x.flatten()]``."""
        if self._param_from is None:
            P = len(self.params)
            sources = torch.cat([self.edge_src.reshape(-1), self.node_src.reshape(-1)])
            at = torch.nonzero(sources < P).reshape(-1)
            param_from = torch.empty(P, dtype=torch.long)
            param_from[sources[at]] = at
            self._param_from = param_from
        return self._param_from

    # ------------------------------------------------------------------ properties
    @property
    def num_edges(self) -> int:
        return self.edge_index.shape[1]

    @property
    def num_edge_features(self) -> int:
        return self.edge_src.shape[1]

    @property
    def num_params(self) -> int:
        return len(self.params)

    @property
    def permutation_groups(self):
        """The sets whose neurons may be permuted together (``weightspace.graph.symmetry``)."""
        from weightspace.graph.symmetry import permutation_groups

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

    def edge_features(self, s: Tensor, edge_src: Tensor | None = None) -> Tensor:
        """``s[edge_src]`` for source vectors ``s [..., P+Q+2]`` (``edge_src``: this spec's
        map, e.g. a copy already on ``s``'s device).

        Edges whose features are a contiguous slice of ``s`` (a conv whose kernel fills the
        canvas: ``W`` in ``(out, in, kh, kw)`` order *is* the edge order) are copied as slices;
        only the rest go through the index gather. The result is identical to
        ``s[..., edge_src]``.
        """
        edge_src = self.edge_src if edge_src is None else edge_src
        lead, F = s.shape[:-1], edge_src.shape[1]
        parts = []
        for e0, e1, base in self.edge_runs:
            if base >= 0:
                parts.append(s[..., base : base + (e1 - e0) * F].reshape(*lead, e1 - e0, F))
            else:
                parts.append(s[..., edge_src[e0:e1]])
        if not parts:
            return s.new_zeros(*lead, 0, F)
        return torch.cat(parts, dim=-2)

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
        return torch.cat([edge_attr.reshape(-1), x.reshape(-1)])[self.param_from]

    @staticmethod
    def _graph_entries(x: Tensor, edge_attr: Tensor, at: Tensor) -> Tensor:
        """Entries of ``[edge_attr.flatten(); x.flatten()]`` at ``at`` (without the concat when
        all of them are node features)."""
        n_edge = edge_attr.numel()
        if at.numel() and int(at.min()) >= n_edge:
            return x.reshape(-1)[at - n_edge]
        return torch.cat([edge_attr.reshape(-1), x.reshape(-1)])[at]

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

    def check_finite(self, vec: Tensor, what: str = "weights"):
        """Raise a ValueError naming the first tensor with a NaN or infinite entry."""
        if _all_finite(vec):
            return
        bad = int(torch.nonzero(~torch.isfinite(vec))[0, -1])
        layout = self.params if what == "weights" else self.buffers
        for slot in layout.slots:
            if slot.offset <= bad < slot.stop:
                raise ValueError(f"{what}: {slot.name!r} holds NaN or infinite values")
        raise ValueError(f"{what} hold NaN or infinite values")




def _all_finite(t: Tensor) -> bool:
    # A finite sum proves every entry finite (one cheap pass); else look entry by entry.
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def _contiguous_runs(arrays) -> list[tuple[int, int, int]]:
    """``(first edge, end edge, base)`` per block: ``base >= 0`` when the block's feature
    sources are exactly ``base, base + 1, ...`` (a plain slice of the source vector), else -1."""
    runs, e0 = [], 0
    for a in arrays:
        e1 = e0 + a.feat.shape[0]
        runs.append((e0, e1, a.contiguous_base if e1 > e0 else -1))
        e0 = e1
    return runs
