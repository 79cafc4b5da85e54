"""What the reader knows about each value flowing through a traced forward.

Every fx value is described by one of:

- :class:`Feat`: a feature tensor whose axis ``dim`` holds the nodes of a node set (possibly
  flattened together with trailing spatial axes, ``spatial=(h, w)``);
- :class:`Cat`: feature tensors concatenated along their feature axis;
- :class:`Mixed`: a feature tensor after a linear map along another of its axes (a Mixer's
  token MLP), whose nodes lie on that axis;
- :class:`LazyInput`: a positional input of ``forward`` (or a view of one) not yet read by a
  layer; its node set is created by the first layer that reads it, with that layer's axis;
- :class:`ParamRef`: a parameter or buffer fetched as an attribute (class tokens, positional
  embeddings, functional layers), possibly viewed or expanded;
- ``None``: anything else (shapes, masks, constants): carries no parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Feat:
    """A feature tensor whose axis ``dim`` holds the nodes of node set ``set``.

    Args:
        set: the node set.
        dim: the axis of the nodes.
        shape: the tensor's shape.
        spatial: ``(h, w)`` when axis ``dim`` holds ``C * h * w`` values, channel-major.
        acted: an activation has been applied since the set was produced.
    """

    set: int
    dim: int
    shape: Shape
    spatial: tuple[int, int] | None = None  # axis `dim` holds C*h*w, channel-major
    acted: bool = False  # an activation has been applied since the set was produced

    def moved(self, dim: int, shape: Shape, spatial=None) -> Feat:
        return replace(self, dim=dim, shape=shape, spatial=spatial)


@dataclass(frozen=True)
class Cat:
    """Feature tensors concatenated along their feature axis (``torch.cat(xs, dim=1)`` in a
    DenseNet, an Inception or Fire module): the nodes of ``parts`` side by side, in order. No
    node set stands for the whole: a layer reading it reads each part, its weight columns
    ``starts[i] : starts[i] + sizes[i]`` from part ``i``'s nodes, so every part keeps its own
    permutation.

    Args:
        parts: the concatenated feature tensors.
        sizes: their numbers of nodes.
        dim: the (common) feature axis.
        shape: the concatenation's shape.
        spatial: as for :class:`Feat`, shared by every part.
    """

    parts: tuple[Feat, ...]
    sizes: tuple[int, ...]
    dim: int
    shape: Shape
    spatial: tuple[int, int] | None = None

    @property
    def starts(self) -> tuple[int, ...]:
        return tuple(sum(self.sizes[:i]) for i in range(len(self.sizes)))

    def moved(self, dim: int, shape: Shape, spatial=None) -> Cat:
        per_node = prod(spatial) if spatial else 1
        parts = tuple(p.moved(dim, (*shape[:dim], n * per_node, *shape[dim + 1:]), spatial)
                      for p, n in zip(self.parts, self.sizes, strict=True))
        return Cat(parts, self.sizes, dim, shape, spatial)

    def each(self, fn) -> Cat:
        """The concatenation of ``fn(part)`` for every part (same shape)."""
        return replace(self, parts=tuple(fn(p) for p in self.parts))


@dataclass(frozen=True)
class Mixed:
    """A feature tensor after a linear map along another of its axes (MLP-Mixer's token
    MLP: ``Linear`` applied to ``x.transpose(1, 2)``), one map shared by every channel. Axis
    ``dim`` holds the nodes of set ``set``, the map's outputs; the channels, set ``carrier``
    on axis ``carrier_dim``, pass through unchanged in order (permuting them commutes with the
    map). Leaving the mixed axis (a transpose back) fixes the order of ``set``: its nodes are
    then positions of the features again.

    Args:
        set: the node set on the mixed axis.
        dim: the mixed axis (the last).
        shape: the tensor's shape.
        carrier: the channels' node set.
        carrier_dim: the channels' axis.
        acted: an activation has been applied since ``set`` was produced.
    """

    set: int
    dim: int
    shape: Shape
    carrier: int
    carrier_dim: int
    acted: bool = False


def parts_of(x: Feat | Cat) -> list[tuple[Feat, int]]:
    """The feature tensors of ``x`` and the first channel of each: ``[(x, 0)]`` for a feature
    tensor, one per part for a concatenation."""
    return list(zip(x.parts, x.starts, strict=True)) if isinstance(x, Cat) else [(x, 0)]


@dataclass(frozen=True)
class LazyInput:
    """A positional input of ``forward`` (or a view of one) not yet read by a layer.

    Args:
        index: its position among ``forward``'s inputs.
        shape: the shape of this view.
        integer: an integer dtype (token ids for an Embedding, not features).
    """

    index: int  # position among forward()'s inputs
    shape: Shape
    integer: bool  # integer dtype: token ids for an Embedding, not features


@dataclass(frozen=True)
class ParamRef:
    """A parameter or buffer fetched as an attribute, possibly viewed or expanded.

    Args:
        name: its state-dict key.
        shape: the shape of this view (after expand/reshape).
        is_buffer: it is a buffer.
    """

    name: str
    shape: Shape  # shape of this view (after expand/reshape)
    is_buffer: bool


def prod(xs) -> int:
    return math.prod(xs)


def follow_reshape(shape_in: Shape, dim: int, shape_out: Shape):
    """Where the channel axis goes under an order-preserving reshape.

    With ``pre = prod(shape_in[:dim])``, ``C = shape_in[dim]`` and ``post = prod(shape_in[dim+1:])``
    the channel axis lands on output axis ``k`` if ``prod(shape_out[:k]) = pre`` and
    ``shape_out[k] = C``; if instead ``shape_out[k] = C * post`` the channel axis has been
    flattened with the trailing (spatial) axes. Returns ``(k, spatial)`` or ``None``.
    """
    pre, C = prod(shape_in[:dim]), shape_in[dim]
    trailing = shape_in[dim + 1 :]
    post = prod(trailing)
    running = 1
    flattened = None
    for k, size in enumerate(shape_out):
        if running == pre:
            if size == C:
                return k, None
            if flattened is None and post > 1 and size == C * post:
                flattened = k
        running *= size
        if running > pre:
            break
    if flattened is not None:
        sizes = [s for s in trailing if s != 1]
        if len(sizes) > 2:
            return None
        sizes = [1] * (2 - len(sizes)) + sizes
        return flattened, (sizes[0], sizes[1])
    return None


def follow_index(shape_in: Shape, dim: int, index) -> int | None:
    """The channel axis after ``x[index]``; ``None`` when the index selects channels."""
    if not isinstance(index, tuple):
        index = (index,)
    n_specified = sum(1 for i in index if i is not None and i is not Ellipsis)
    expanded = []
    for item in index:
        if item is Ellipsis:
            expanded.extend([slice(None)] * (len(shape_in) - n_specified))
        else:
            expanded.append(item)
    axis_in, axis_out = 0, 0
    for item in expanded:
        if item is None:
            axis_out += 1
            continue
        if axis_in == dim:
            if isinstance(item, slice) and item == slice(None):
                return axis_out
            return None
        if isinstance(item, int):
            axis_in += 1
        elif isinstance(item, slice):
            axis_in += 1
            axis_out += 1
        else:
            return None
    return axis_out + (dim - axis_in)
