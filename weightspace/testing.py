"""Assertions for tests of weight-space code: the project's own tests and a user's.

``torch_geometric.testing`` is the model: one call checks a property that every network,
converter and metanetwork must have, and fails with what broke.

- :func:`assert_round_trip`: network -> parameter graph -> network is exact, bit for bit.
- :func:`assert_symmetries_preserve_function`: the spec's random symmetries change the weights
  and never the function (checked in float64, so that reordered sums cannot hide a broken
  symmetry or fake one).
- :func:`assert_invariant` / :func:`assert_equivariant`: a function of weight rows
  ``f(vecs [B, P], buffers [B, Q])`` satisfies ``f(g v) = f(v)`` / ``f(g v) = g f(v)`` for
  random elements ``g`` of the spec's symmetry group.

Example::

    from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function

    def test_my_network_is_read_exactly():
        assert_round_trip(MyNet())
        assert_symmetries_preserve_function(MyNet())
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import Tensor, nn

from weightspace.graph.convert import from_graph, load_flat, to_graph
from weightspace.graph.example_inputs import as_tuple, default_example_inputs
from weightspace.graph.spec import GraphSpec
from weightspace.graph.symmetry import sample_symmetries

__all__ = ["assert_equivariant", "assert_invariant", "assert_round_trip",
           "assert_symmetries_preserve_function", "random_inputs"]


def random_inputs(model: nn.Module, example_inputs=None, batch: int = 4, seed: int = 0
                  ) -> tuple[Tensor, ...]:
    """Random inputs shaped like ``example_inputs`` (default: the model's own) with batch size
    ``batch``: Gaussian floats, and integer ids below the first Embedding's vocabulary."""
    given = default_example_inputs(model) if example_inputs is None else as_tuple(example_inputs)
    g = torch.Generator().manual_seed(seed)
    out = []
    for x in given:
        shape = (batch, *x.shape[1:])
        if x.dtype.is_floating_point:
            out.append(torch.randn(shape, generator=g, dtype=x.dtype))
        else:
            vocab = next((m.num_embeddings for m in model.modules()
                          if isinstance(m, nn.Embedding)), 2)
            out.append(torch.randint(0, vocab, shape, generator=g, dtype=x.dtype))
    return tuple(out)


def _other_weights(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` whose floating-point tensors hold other values."""
    other = copy.deepcopy(model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in (*other.parameters(), *other.buffers()):
            if t.is_floating_point():
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype))
    return other


def assert_round_trip(model: nn.Module, example_inputs=None, **graph_options) -> None:
    """``from_graph(to_graph(model))`` holds every parameter and buffer of ``model`` bit for bit
    (same names, dtypes and values) and computes the same outputs.

    The network is rebuilt into a copy holding other weights, so a tensor the graph misses
    cannot pass by accident. ``graph_options`` go to :func:`~weightspace.to_graph`
    (``kernel_edges``, ``canvas``).
    """
    model = model.eval()
    graph = to_graph(model, example_inputs, **graph_options)
    back = from_graph(graph, like=_other_weights(model, seed=1)).eval()
    want, got = model.state_dict(), back.state_dict()
    assert list(got) == list(want), f"state-dict keys differ: {list(got)} != {list(want)}"
    for key in want:
        assert got[key].dtype == want[key].dtype, f"{key}: dtype {got[key].dtype}, " \
                                                  f"expected {want[key].dtype}"
        assert torch.equal(got[key], want[key]), f"{key}: values differ after the round trip"
    x = random_inputs(model, example_inputs)
    with torch.no_grad():
        torch.testing.assert_close(back(*x), model(*x), rtol=0, atol=0)


def assert_symmetries_preserve_function(model: nn.Module, example_inputs=None, draws: int = 4,
                                        seed: int = 0, rtol: float = 1e-5, **kinds) -> None:
    """Each of ``draws`` random symmetries of the spec changes the weights and leaves the
    outputs of ``model`` on random inputs as they were (relative tolerance ``rtol``, in float64).

    ``kinds`` switch symmetry kinds off, as in :func:`~weightspace.graph.sample_symmetries`
    (``permute=``, ``sign=``, ``scale=``).
    """
    model = copy.deepcopy(model).double().eval()
    x = tuple(v.double() if v.is_floating_point() else v
              for v in random_inputs(model, example_inputs))
    traced = tuple(v.double() if v.is_floating_point() else v
                   for v in (default_example_inputs(model) if example_inputs is None
                             else as_tuple(example_inputs)))
    spec = GraphSpec.from_module(model, traced)
    vec, buf = spec.flatten(model), spec.flatten_buffers(model)
    t = sample_symmetries(spec, draws, torch.Generator().manual_seed(seed), **kinds)
    with torch.no_grad():
        expected = model(*x)
        scale = 1 + expected.abs().max().item()
        for i in range(draws):
            moved = t[i](vec)
            assert not torch.equal(moved, vec), f"symmetry {i} left the weights unchanged"
            other = load_flat(copy.deepcopy(model), spec, moved, t[i].buffers(buf))
            torch.testing.assert_close(other(*x), expected, rtol=rtol, atol=rtol * scale,
                                       msg=lambda m, i=i: f"symmetry {i} changed the "
                                                          f"function: {m}")


Fn = Callable[[Tensor, Tensor | None], Tensor]


def _check(fn: Fn, spec: GraphSpec, vecs: Tensor, buffers: Tensor | None, draws: int, seed: int,
           rtol: float, atol: float, equivariant: bool, kinds: dict) -> None:
    t = sample_symmetries(spec, vecs.shape[0] * draws, torch.Generator().manual_seed(seed),
                          **kinds)
    many = vecs.repeat(draws, 1)
    many_buffers = None if buffers is None else buffers.repeat(draws, 1)
    assert not torch.equal(t(many), many), "the symmetries drawn left every weight in place " \
                                           "(does the spec have hidden neurons?)"
    with torch.no_grad():
        out = fn(many, many_buffers)
        moved = fn(t(many), None if buffers is None else t.buffers(many_buffers))
    expected = t(out) if equivariant else out
    what = "equivariant: f(g v) != g f(v)" if equivariant else "invariant: f(g v) != f(v)"
    torch.testing.assert_close(moved, expected, rtol=rtol, atol=atol,
                               msg=lambda m: f"not {what}: {m}")


def assert_invariant(fn: Fn, spec: GraphSpec, vecs: Tensor, buffers: Tensor | None = None,
                     draws: int = 2, seed: int = 0, rtol: float = 1e-4, atol: float = 1e-5,
                     **kinds) -> None:
    """``fn(g v, g u) == fn(v, u)`` for ``draws`` random symmetries ``g`` per row.

    Args:
        fn: ``(vecs [B, P], buffers [B, Q] or None) -> [B, ...]``, e.g. a metanetwork.
        spec: the architecture of the rows.
        vecs: weight rows ``[B, P]``.
        buffers: buffer rows ``[B, Q]``, or ``None``.
        draws: symmetries drawn per row.
        kinds: symmetry kinds to switch off (``sign=False``, ...).
    """
    _check(fn, spec, vecs, buffers, draws, seed, rtol, atol, False, kinds)


def assert_equivariant(fn: Fn, spec: GraphSpec, vecs: Tensor, buffers: Tensor | None = None,
                       draws: int = 2, seed: int = 0, rtol: float = 1e-4, atol: float = 1e-5,
                       **kinds) -> None:
    """``fn(g v, g u) == g fn(v, u)`` for weight-shaped outputs ``[B, P]`` (edits), with ``g``
    acting on the outputs as on the weights; arguments as in :func:`assert_invariant`."""
    _check(fn, spec, vecs, buffers, draws, seed, rtol, atol, True, kinds)
