"""``align`` and ``distance``: one network brought onto another through its symmetries.

Two networks trained apart compute alike up to a relabelling of their hidden neurons (and,
behind odd activations, sign flips); :func:`align` finds the relabelling by weight matching
(:mod:`weightspace.alignment.weight_matching`) or by activation matching on data
(:mod:`weightspace.alignment.activation_matching`) and returns a copy of ``other`` in the
coordinates of ``reference``, computing what ``other`` computes. :func:`distance` is the weight
distance that is left, the measure of how far apart two networks are once their symmetries are
factored out; :func:`distances` and :func:`pairwise_distances` compute it for weight rows of a zoo.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from weightspace.alignment.activation_matching import activation_matching
from weightspace.alignment.scale_matching import scale_matching
from weightspace.alignment.weight_matching import weight_matching
from weightspace.errors import SpecMismatchError
from weightspace.graph.convert import load_flat
from weightspace.graph.example_inputs import as_tuple, default_example_inputs
from weightspace.graph.spec import GraphSpec
from weightspace.graph.symmetry import SymmetryTransform

METHODS = ("weights", "activations")
# Largest relative change of the outputs an aligned network may show (float32 rounding).
TOLERANCE = 1e-5


def _matched(reference: nn.Module, other: nn.Module, example_inputs, method: str, data,
             scale: bool = False) -> tuple[GraphSpec, SymmetryTransform, Tensor, Tensor | None]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "activations" and data is None:
        raise ValueError("method='activations' needs data: pass data=x (inputs) or (x, y)")
    spec = GraphSpec.from_module(reference, example_inputs)
    own = GraphSpec.from_module(other, example_inputs)
    if own.id != spec.id:
        raise SpecMismatchError(f"cannot align networks of two architectures: reference "
                                f"{type(reference).__name__} ({spec.id}), other "
                                f"{type(other).__name__} ({own.id})")
    buffers = len(spec.buffers) > 0
    ref_vec, vec = spec.flatten(reference), spec.flatten(other)
    ref_buf, buf = ((spec.flatten_buffers(reference), spec.flatten_buffers(other)) if buffers
                    else (None, None))
    if method == "activations":
        t = activation_matching(spec, reference, other, data, example_inputs)
    else:
        t = weight_matching(spec, ref_vec, vec)
    if scale:
        t = scale_matching(spec, ref_vec, t, vec, ref_buf, buf)
    return spec, t, vec, buf


def align(reference: nn.Module, other: nn.Module, *, method: str = "weights", data=None,
          scale: bool = False, example_inputs=None, check: bool = True) -> nn.Module:
    """A copy of ``other`` relabelled (and sign-flipped where its activations allow) to be as
    close as its symmetries let it come to ``reference``; it computes the same function as
    ``other``. Both must be of one architecture.

    ``method="weights"``: weight matching (:mod:`~weightspace.alignment.weight_matching`);
    ``method="activations"``: activation matching on ``data`` (inputs, ``(x, y)`` or an
    iterable of batches; :mod:`~weightspace.alignment.activation_matching`). ``scale``: then
    also rescale every neuron behind a positively homogeneous activation (ReLU) to come closer
    still (:mod:`~weightspace.alignment.scale_matching`). ``check``: run
    both on ``example_inputs`` (or the architecture's default ones) and raise if the outputs
    differ by more than float rounding."""
    spec, t, vec, buffers = _matched(reference, other, example_inputs, method, data, scale)
    aligned = load_flat(copy.deepcopy(other), spec, t(vec),
                        None if buffers is None else t.buffers(buffers))
    if check:
        _check_same_function(other, aligned, example_inputs)
    return aligned


def distance(a: nn.Module, b: nn.Module, *, method: str = "weights", data=None,
             scale: bool = False, example_inputs=None) -> float:
    """``||theta_a - g(theta_b)|| / ||theta_a||``: the relative L2 distance between the weights
    of ``a`` and of ``b`` aligned to ``a`` (0 when ``b`` is a relabelled copy of ``a``);
    ``method``, ``data`` and ``scale`` as for :func:`align`."""
    spec, t, vec, _ = _matched(a, b, example_inputs, method, data, scale)
    ref = spec.flatten(a).double()
    return float((ref - t(vec.double())).norm() / ref.norm().clamp(min=1e-30))


def distances(spec: GraphSpec, reference: Tensor, rows: Tensor) -> Tensor:
    """``[B]`` aligned relative distances (as :func:`distance`) of weight rows ``[B, P]``
    (e.g. a zoo's ``zoo.params(indices)``) to one ``reference [P]``, all in ``spec``'s flat
    layout; the spec's matching index is built once and reused for every row."""
    rows = torch.as_tensor(rows)
    ref = torch.as_tensor(reference).double()
    out = torch.empty(len(rows), dtype=torch.float64)
    for b, row in enumerate(rows):
        t = weight_matching(spec, ref, row)
        out[b] = (ref - t(row.double())).norm() / ref.norm().clamp(min=1e-30)
    return out


def pairwise_distances(spec: GraphSpec, rows: Tensor) -> Tensor:
    """``[B, B]``: row ``i`` against every row aligned to it (``D[i, j]`` is relative to row
    ``i``'s norm, so not exactly symmetric); the diagonal is 0."""
    rows = torch.as_tensor(rows)
    return torch.stack([distances(spec, rows[i], rows) for i in range(len(rows))])


@torch.no_grad()
def _check_same_function(before: nn.Module, after: nn.Module, example_inputs):
    inputs = as_tuple(example_inputs) or default_example_inputs(before)
    g = torch.Generator().manual_seed(0)
    inputs = tuple(torch.randn(x.shape, generator=g, dtype=x.dtype).expand(max(2, len(x)),
                                                                              *x.shape[1:])
                   if x.is_floating_point() else x for x in inputs)
    # in float64: a relabelling is exact, and float32 sums in another order are not
    before, after = copy.deepcopy(before).double().eval(), copy.deepcopy(after).double().eval()
    inputs = tuple(x.double() if x.is_floating_point() else x for x in inputs)
    y0, y1 = before(*inputs), after(*inputs)
    change = float((y1 - y0).abs().max() / y0.abs().max().clamp(min=1e-12))
    if change > TOLERANCE:
        raise RuntimeError(f"aligned network changed its outputs by {change:.2e} (relative): "
                           f"a bug in weightspace.alignment, please report it")
