"""``hypernetize``: turn some modules of a network into hypernetwork outputs.

``hm = hypernetize(model, modules=["features.0", "head"], cond_dim=1)`` returns a
:class:`HyperModule`: the chosen modules' parameters are generated from a condition by a
:class:`~weightspace.hyper.HyperNetwork`; every other parameter stays an ordinary trainable
parameter of ``model``. Two ways to run it:

- batched: ``hm(x, conditions)`` evaluates the network under all ``B`` conditions at once
  (``vmap`` over ``functional_call``) and returns ``[B, *out]``;
- in place: ``with hm.using(condition): y = model(x)`` puts one condition's generated tensors
  into the modules for the duration of the block, so any code that calls ``model`` works
  unchanged, with gradients reaching the hypernetwork. The original parameters are put back
  when the block ends, also when it raises.

The generated parameters stay registered in ``model`` (frozen, ``requires_grad=False``) as the
template of their shapes; their values are only used as the MIP initialisation ``theta_0``.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from weightspace.functional import batched_forward
from weightspace.hyper.hypernetwork import HyperNetwork, copies_holding


class HyperModule(nn.Module):
    """A module whose chosen parameters come from a hypernetwork of a condition (see
    :func:`hypernetize`); the rest stay its own trainable parameters.

    Args:
        model: the module; its generated parameters stop requiring gradients.
        modules: the paths of the modules whose parameters are generated.
        cond_dim: the width of a condition.
        **hyper_kwargs: further arguments of :class:`~weightspace.hyper.HyperNetwork`.

    Shapes:
        input: ``x`` and conditions ``[B, cond_dim]``; output: ``[B, *out]``.
    """

    def __init__(self, model: nn.Module, modules, cond_dim: int = 1, **hyper_kwargs):
        super().__init__()
        self.hypernet = HyperNetwork(model, cond_dim, modules=modules, **hyper_kwargs)
        self.model = model
        params = dict(model.named_parameters())
        for name in self.hypernet.generated:
            params[name].requires_grad_(False)

    @property
    def generated(self) -> list[str]:
        return self.hypernet.generated

    def forward(self, x, conditions, *, x_batched: bool = False, chunk_size: int | None = None,
                train: bool = False, randomness: str = "error") -> Tensor:
        """``[B, *out]``: ``model(x)`` under each condition's generated parameters."""
        tensors = self.hypernet.generated_tensors(conditions)
        return batched_forward(self.model, tensors, x, x_batched=x_batched,
                               chunk_size=chunk_size, train=train, randomness=randomness)

    def params(self, conditions) -> Tensor:
        """``[B, P]`` in ``model``'s flat layout: generated entries, the rest ``model``'s own."""
        values = self.hypernet.generated_values(conditions)
        own = torch.cat([p.reshape(-1) for p in self.model.parameters()]).to(values.dtype)
        return self.hypernet.place(values, own)

    def modules_for(self, conditions) -> list[nn.Module]:
        """One ordinary copy of ``model`` per condition, holding its generated tensors."""
        with torch.no_grad():
            nets = copies_holding(self.model, self.hypernet.layout, self.params(conditions))
        for net in nets:
            net.requires_grad_(True)  # the template's generated parameters are frozen
        return nets

    @contextlib.contextmanager
    def using(self, condition):
        """Within the block, ``model``'s generated parameters are the tensors generated for one
        ``condition`` (``[cond_dim]`` or ``[1, cond_dim]``); restored afterwards."""
        tensors = self.hypernet.generated_tensors(condition)
        if next(iter(tensors.values())).shape[0] != 1:
            raise ValueError("using() puts one condition into the module; for several, call the "
                             "HyperModule: hm(x, conditions) -> [B, *out]")
        swapped = []
        try:
            for name, t in tensors.items():
                path, _, attr = name.rpartition(".")
                owner = self.model.get_submodule(path)
                order = list(owner._parameters)
                swapped.append((owner, attr, order, owner._parameters.pop(attr)))
                setattr(owner, attr, t[0])  # a plain tensor attribute, in the graph
            yield self.model
        finally:
            for owner, attr, order, original in reversed(swapped):
                if attr in owner.__dict__:
                    delattr(owner, attr)
                owner.register_parameter(attr, original)
                # in the original order: the flat layout follows named_parameters()
                owner._parameters = {k: owner._parameters[k] for k in order}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(model={type(self.model).__name__}, "
                f"generated={self.generated}, {self.hypernet!r})")


def hypernetize(model: nn.Module, modules, cond_dim: int = 1, **hyper_kwargs) -> HyperModule:
    """A :class:`HyperModule` generating the parameters of ``modules`` (module paths or
    parameter names of ``model``) from a condition; ``hyper_kwargs`` go to
    :class:`~weightspace.hyper.HyperNetwork` (``hidden``, ``mip``, ``chunk``)."""
    return HyperModule(model, modules, cond_dim, **hyper_kwargs)
