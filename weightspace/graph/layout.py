"""The flat layout of a network: every parameter (or buffer) laid end to end in one vector.

For parameters ``theta_1, ..., theta_k`` (in ``named_parameters()`` order) with sizes
``n_1, ..., n_k`` the flat vector is ``v = [vec(theta_1); ...; vec(theta_k)] in R^P`` with
``P = sum_i n_i``, each tensor in row-major (C) order, so ``theta_i = v[o_i : o_i + n_i]
.view(shape_i)`` with ``o_i = n_1 + ... + n_{i-1}``. Buffers (BatchNorm running statistics and
counters) have a layout of their own and live in a second vector, kept in float64 so that every
float32 statistic and every integer counter below 2**53 survives the round trip exactly.

The layout depends only on names and shapes, so it is identical in every process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from weightspace.errors import SpecMismatchError
from weightspace.graph.shared_weights import parameter_aliases


@dataclass(frozen=True)
class TensorSlot:
    """Where one named tensor lives in a flat vector.

    Args:
        name: the state-dict key.
        shape: the tensor's shape.
        offset: its first element in the flat vector.
        dtype: its dtype's name, restored on unflatten.
    """

    name: str
    shape: tuple[int, ...]
    offset: int
    dtype: str  # e.g. "float32"; the dtype restored by unflatten

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    @property
    def stop(self) -> int:
        return self.offset + self.numel

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "offset": self.offset,
                "dtype": self.dtype}

    @classmethod
    def from_dict(cls, d: dict) -> TensorSlot:
        return cls(d["name"], tuple(d["shape"]), int(d["offset"]), d["dtype"])


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


class FlatLayout:
    """An ordered set of named tensors and their offsets in one flat vector.

    Args:
        slots: the tensors, with contiguous offsets.
        what: ``"parameters"`` or ``"buffers"``, named in error messages.
        aliases: ``{alias: name}``, second names of a tensor (tied weights): held once, under
            ``name``, and given back under both by :meth:`unflatten`.
    """

    def __init__(self, slots: list[TensorSlot], what: str, aliases: dict[str, str] | None = None):
        self.slots = slots
        self.what = what  # "parameter" or "buffer", for error messages
        self.aliases = dict(aliases or {})
        self.by_name = {s.name: s for s in slots}
        self.size = slots[-1].stop if slots else 0

    @classmethod
    def from_tensors(cls, named: list[tuple[str, Tensor]], what: str) -> FlatLayout:
        slots, offset = [], 0
        for name, t in named:
            slot = TensorSlot(name, tuple(t.shape), offset, _dtype_name(t.dtype))
            slots.append(slot)
            offset = slot.stop
        return cls(slots, what)

    def __len__(self) -> int:
        return self.size

    def names(self) -> list[str]:
        return [s.name for s in self.slots]

    def flatten(self, tensors: Mapping[str, Tensor], dtype: torch.dtype) -> Tensor:
        """``[vec(t_1); ...; vec(t_k)]`` in this layout's order, as ``dtype``."""
        parts = [self.checked(tensors, slot).detach().reshape(-1).to(dtype)
                 for slot in self.slots]
        if not parts:
            return torch.zeros(0, dtype=dtype)
        return torch.cat(parts)

    def checked(self, tensors: Mapping[str, Tensor], slot: TensorSlot) -> Tensor:
        """``tensors[slot.name]``, or an error naming the missing key or both shapes."""
        if slot.name not in tensors:
            raise SpecMismatchError(
                f"missing {self.what} {slot.name!r} (expected shape {list(slot.shape)})"
            )
        t = tensors[slot.name]
        if tuple(t.shape) != slot.shape:
            raise SpecMismatchError(
                f"{self.what} {slot.name!r} has shape {list(t.shape)}, the spec expects "
                f"{list(slot.shape)}"
            )
        return t

    def unflatten(self, vec: Tensor) -> OrderedDict[str, Tensor]:
        """The inverse of :meth:`flatten`: name -> tensor, each in its recorded dtype."""
        if vec.dim() != 1 or vec.numel() != self.size:
            raise SpecMismatchError(
                f"{self.what} vector has shape {list(vec.shape)}, the spec expects [{self.size}]"
            )
        out = OrderedDict()
        for slot in self.slots:
            t = vec[slot.offset : slot.stop].view(slot.shape)
            out[slot.name] = t.to(getattr(torch, slot.dtype))
        for alias, name in self.aliases.items():  # load_state_dict wants every name
            out[alias] = out[name]
        return out

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.slots]

    @classmethod
    def from_list(cls, items: list[dict], what: str, aliases: dict[str, str] | None = None
                  ) -> FlatLayout:
        return cls([TensorSlot.from_dict(d) for d in items], what, aliases)


def parameter_layout(model: nn.Module) -> FlatLayout:
    """The flat layout of ``model``'s parameters: ``named_parameters()`` order, a tied tensor
    once, under its first name (its other names are aliases)."""
    layout = FlatLayout.from_tensors(list(model.named_parameters()), "parameter")
    layout.aliases = parameter_aliases(model)
    return layout


def buffer_layout(model: nn.Module) -> FlatLayout:
    """The flat layout of ``model``'s persistent buffers: what a state_dict holds (not caches a
    module rebuilds), in ``named_buffers()`` order."""
    state = model.state_dict(keep_vars=True)
    return FlatLayout.from_tensors([(n, b) for n, b in model.named_buffers() if n in state],
                                   "buffer")


def split_state(model_or_state: nn.Module | Mapping[str, Tensor]) -> Mapping[str, Tensor]:
    """A name -> tensor mapping for a module (parameters and buffers) or a state dict."""
    if isinstance(model_or_state, nn.Module):
        return model_or_state.state_dict(keep_vars=False)
    if isinstance(model_or_state, Mapping):
        return model_or_state
    raise TypeError(
        f"expected an nn.Module or a state dict, got {type(model_or_state).__name__}"
    )
