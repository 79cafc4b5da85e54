"""``to_graph`` and ``from_graph``: a network to its parameter graph and back, exactly."""

from __future__ import annotations

import copy
from collections import OrderedDict

from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from weightspace.errors import SpecMismatchError
from weightspace.graph.spec import GraphSpec


def to_graph(
    model: nn.Module,
    example_inputs=None,
    *,
    kernel_edges: str = "channel",
    canvas: tuple[int, int] | None = None,
    check_finite: bool = True,
) -> Data:
    """The parameter graph of ``model`` as a PyG ``Data``.

    Nodes are the neurons/channels of every layer (plus input features and one-hot tokens),
    edges the weights between them. Fields: ``x [N, 3]`` (bias, running mean, running
    variance), ``edge_index``, ``edge_attr [E, F]`` (kernels centred on the canvas), and the
    integer fields ``node_type``, ``edge_type``, ``edge_pos``, ``layer``, ``activation``,
    ``input_id``, ``output_id`` (``-1`` where not an input/output), ``extra_buffers`` (buffer
    entries no node carries, e.g. BatchNorm's counters) and ``spec_id``.

    The first network of an architecture is traced (``example_inputs``, or see
    :func:`~weightspace.graph.example_inputs.default_example_inputs`); every further one costs one
    flatten and one gather through the cached :class:`GraphSpec`. Give all graphs the same
    ``canvas`` (e.g. ``(3, 3)``) to batch different architectures together.
    """
    spec = GraphSpec.from_module(model, example_inputs, kernel_edges=kernel_edges,
                                 canvas=canvas)
    return spec.module_graph(model, check_finite=check_finite)


def from_graph(graph: Data, like: nn.Module) -> nn.Module | list[nn.Module]:
    """The network a graph encodes: a copy of ``like`` holding the graph's weights.

    ``like`` supplies the architecture (its class and constructor arguments); its own weights
    are not used. Every parameter and buffer of the result equals the converted network's
    bit for bit. A ``Batch`` gives a list of networks.
    """
    if isinstance(graph, Batch):
        return [from_graph(g, like) for g in graph.to_data_list()]
    if not isinstance(like, nn.Module):
        raise TypeError(f"`like` must be an nn.Module of the graph's architecture, got "
                        f"{type(like).__name__}")
    spec = _spec_for(graph, like)
    vec = spec.weights_from_graph(graph.x, graph.edge_attr)
    buffers = spec.buffers_from_graph(graph.x, graph.edge_attr, graph.extra_buffers)
    return load_flat(copy.deepcopy(like), spec, vec, buffers)


def load_flat(model: nn.Module, spec: GraphSpec, vec: Tensor, buffers: Tensor | None = None
              ) -> nn.Module:
    """``model`` (changed in place, and returned) holding the weights ``vec`` (and buffers)
    of ``spec``'s flat layout. The module's own state-dict metadata goes with them: some
    modules read their version from it while loading (torchvision's MNASNet refuses a state
    without one)."""
    model.load_state_dict(with_metadata(spec.unflatten(vec, buffers), model), strict=True)
    return model


def with_metadata(state: dict, model: nn.Module) -> OrderedDict:
    """``state`` as a state dict carrying ``model``'s own metadata (module versions), for
    ``model.load_state_dict``."""
    out = OrderedDict(state)
    out._metadata = getattr(model.state_dict(), "_metadata", None)
    return out


def _spec_for(graph: Data, like: nn.Module) -> GraphSpec:
    try:
        spec = GraphSpec.get(graph.spec_id)
    except KeyError:
        spec = None
    try:  # `like`'s own spec (cached after the first call)
        candidate = GraphSpec.from_module(like)
    except (ValueError, TypeError):  # it needs example inputs of its own, or is not readable
        candidate = None
    if spec is None:
        # A graph from another process: `like` must rebuild the same spec.
        if candidate is not None and candidate.id == graph.spec_id:
            return candidate
        raise SpecMismatchError(
            f"the graph was made by spec {graph.spec_id}, which this process has not built: "
            f"call GraphSpec.from_module(like, example_inputs, ...) with the arguments used "
            f"for to_graph first")
    expected = [(n, tuple(p.shape)) for n, p in like.named_parameters()]
    if expected != [(s.name, s.shape) for s in spec.params.slots]:
        raise SpecMismatchError(
            f"the graph was made by spec {graph.spec_id}, whose parameters differ from "
            f"those of `like` ({type(like).__name__})")
    # Equal shapes are not the same network: a Tanh MLP has a ReLU MLP's shapes.
    if candidate is not None and candidate.id != spec.id and (
            candidate.activation.shape != spec.activation.shape
            or not bool((candidate.activation == spec.activation).all())):
        raise SpecMismatchError(
            f"the graph was made by a network of another architecture (spec {spec.id}) than "
            f"`like` ({type(like).__name__}, spec {candidate.id}): their activations differ; "
            f"pass a network of the graph's architecture")
    return spec
