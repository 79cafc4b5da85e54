"""``HyperNetwork``: a condition in, a whole weight vector of a target network out.

For a condition ``gamma in [0, 1]^c`` the network computes ``z = h(E(gamma))`` with an MLP trunk
``h`` (ReLU, biases starting at zero) and one linear head per generated tensor ``t``:

.. math::
    \\text{MIP:}\\quad \\theta_t(\\gamma) = \\theta_{0,t} + W_t z + b_t, \\quad
    E(\\gamma) = [\\cos(\\pi\\gamma/2), \\sin(\\pi\\gamma/2)]

    \\text{proportional:}\\quad \\theta_t(\\gamma) = W_t\\, h(\\gamma) + b_t

``theta_0`` is a learnable copy of the target's own tensors (a fresh initialisation, or a
pretrained network's weights), so a MIP hypernetwork starts next to a working network and
learns changes to it; the proportional variant is the classic hypernetwork, kept for comparison
(its output norm grows with ``||gamma||``: see :mod:`weightspace.hyper.condition`).

Heads start with fan-out initialisation (Chang et al. 2020, "hyperfan-out"): the head of
tensor ``t`` has ``W_t ~ N(0, sigma_t^2 / ||z||^2)``, ``b_t = 0``, with ``||z||^2`` the
trunk's mean squared output norm at initialisation (over ``gamma`` in ``[0, 1]`` for MIP, at
``gamma = 1`` for the proportional variant), so that every generated entry of ``t`` starts with
standard deviation ``sigma_t`` whatever the tensor's size. ``sigma_t`` is the target tensor's
own initial scale, ``rms(theta_t)`` (``1 / sqrt(fan_out(t))`` for a tensor that starts at zero),
so that a generated SIREN (``w0 = 30``: hidden weights ~30x smaller than a Linear layer's) starts
at SIREN's own scale instead of one that ``sin(30 x)`` turns into noise.
For MIP it is multiplied by ``delta_init`` (0.1), so that ``theta(gamma)`` starts next to
``theta_0`` -- which matters when ``theta_0`` is a pretrained network.

With ``chunk=K`` a tensor's entries are produced ``K`` at a time by one head shared by all
chunks, ``sigma_t [W z + U e_k + b]`` with a learned embedding ``e_k`` per chunk (``U`` starts
at zero) -- the same scale at initialisation, and ``hidden * K`` head weights instead of
``hidden * P`` for a large target.

The output is ``[B, P]`` in the target's flat layout (its ``named_parameters`` order, the
:class:`~weightspace.graph.GraphSpec` layout), ready for
:func:`~weightspace.functional.batched_forward`. ``modules=[...]`` generates only the parameters
of those modules (or those parameter names); the others keep the target's values.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import Tensor, nn

from weightspace.graph.convert import with_metadata
from weightspace.graph.layout import parameter_layout
from weightspace.hyper.condition import check_conditions, mip_encoding


def select_parameters(target: nn.Module, modules) -> list[str]:
    """Names of the parameters that ``modules`` (module paths or parameter names) cover; all
    of them for ``None``. Unknown names raise a ``KeyError`` that lists what exists."""
    names = [n for n, _ in target.named_parameters()]
    if modules is None:
        return names
    if isinstance(modules, str):
        modules = [modules]
    chosen, unknown = set(), []
    submodules = dict(target.named_modules())
    for m in modules:
        if m in submodules and m != "":
            prefix = m + "."
            hit = {n for n in names if n.startswith(prefix)}
            if not hit:
                raise ValueError(f"module {m!r} ({type(submodules[m]).__name__}) has no "
                                 f"parameters to generate")
            chosen |= hit
        elif m in names:
            chosen.add(m)
        else:
            unknown.append(m)
    if unknown:
        have = [n for n, sub in submodules.items()
                if n and any(True for _ in sub.parameters(recurse=False))]
        raise KeyError(f"{type(target).__name__} has no module or parameter named "
                       f"{', '.join(map(repr, unknown))}; modules with parameters: {have}")
    if not chosen:
        raise ValueError("modules=[] selects no parameter to generate")
    return [n for n in names if n in chosen]  # in the target's order


def fan_out(shape: tuple[int, ...]) -> int:
    """Outputs a unit of the tensor feeds: ``out * prod(kernel)`` for a weight, ``numel`` for a
    1-D tensor (bias, norm scale)."""
    if len(shape) < 2:
        return max(1, math.prod(shape))
    return shape[0] * math.prod(shape[2:])


def initial_scale(t: Tensor) -> float:
    """``rms(t)``, or ``1 / sqrt(fan_out)`` for a tensor of zeros."""
    rms = float(t.detach().float().pow(2).mean().sqrt())
    return rms if rms > 0 else fan_out(tuple(t.shape)) ** -0.5


def copies_holding(template: nn.Module, layout, flat: Tensor) -> list[nn.Module]:
    """One copy of ``template`` per row of ``flat [B, P]`` (parameters in ``layout``)."""
    out = []
    for row in flat:
        net = copy.deepcopy(template)
        net.load_state_dict(with_metadata(layout.unflatten(row), net), strict=False)
        out.append(net)
    return out


class ChunkedHead(nn.Module):
    """``z [B, H] -> [B, G]``: ``G`` values made ``K`` at a time by one shared linear map.

    Args:
        hidden: ``H``, the width of ``z``.
        sizes: the number of values of each generated tensor (``G = sum(sizes)``).
        sigmas: each tensor's fan-in initialisation std, which scales its chunks.
        chunk: ``K``, values per chunk.
        in_sq_norm: the expected squared norm of ``z`` (sets the initial scale).
        embedding: the width of each chunk's learned embedding.
    """

    def __init__(self, hidden: int, sizes: list[int], sigmas: list[float], chunk: int,
                 in_sq_norm: float = 1.0, embedding: int = 16):
        super().__init__()
        counts = [math.ceil(n / chunk) for n in sizes]
        self.chunk, self.sizes, self.in_sq_norm = chunk, sizes, in_sq_norm
        self.linear = nn.Linear(hidden, chunk)
        self.embed = nn.Embedding(sum(counts), embedding)
        self.from_embed = nn.Linear(embedding, chunk, bias=False)
        # fan-out scale of each chunk's tensor, and which of the C * K values are real entries
        scale = torch.cat([torch.full((c,), float(s)) for c, s in zip(counts, sigmas,
                                                                       strict=True)])
        keep = torch.cat([torch.arange(c * chunk) < n for c, n in zip(counts, sizes, strict=True)])
        self.register_buffer("scale", scale.unsqueeze(-1), persistent=False)
        self.register_buffer("keep", keep.nonzero().squeeze(-1), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        nn.init.normal_(self.linear.weight, 0, self.in_sq_norm ** -0.5)
        nn.init.zeros_(self.linear.bias)
        nn.init.normal_(self.embed.weight)
        nn.init.zeros_(self.from_embed.weight)  # chunks start alike; they learn to differ

    def forward(self, z: Tensor) -> Tensor:
        per_chunk = self.linear(z).unsqueeze(1) + self.from_embed(self.embed.weight)  # [B, C, K]
        return (per_chunk * self.scale).flatten(1)[:, self.keep]


class TensorHeads(nn.Module):
    """``z [B, H] -> [B, G]``: one linear head per generated tensor, as one matrix product.

    Args:
        hidden: ``H``, the width of ``z``.
        sizes: the number of values of each generated tensor (``G = sum(sizes)``).
        sigmas: each tensor's fan-in initialisation std (its head's initial scale).
        in_sq_norm: the expected squared norm of ``z``.
    """

    def __init__(self, hidden: int, sizes: list[int], sigmas: list[float],
                 in_sq_norm: float = 1.0):
        super().__init__()
        self.sizes, self.sigmas, self.in_sq_norm = sizes, sigmas, in_sq_norm
        self.linear = nn.Linear(hidden, sum(self.sizes))
        self.reset_parameters()

    def reset_parameters(self):
        with torch.no_grad():
            for rows, sigma in zip(self.linear.weight.split(self.sizes), self.sigmas,
                                   strict=True):
                rows.normal_(0, sigma * self.in_sq_norm**-0.5)
            self.linear.bias.zero_()

    def forward(self, z: Tensor) -> Tensor:
        return self.linear(z)


class HyperNetwork(nn.Module):
    """Conditions ``[B, cond_dim]`` in ``[0, 1]`` -> weights ``[B, P]`` of ``target``.

    With ``mip=True`` (Magnitude Invariant Parametrization) a condition ``g`` enters as
    ``[cos(pi g / 2), sin(pi g / 2)]`` and the output is residual, ``theta_0 + h(E(g))``, with
    ``theta_0`` the target's own weights; ``mip=False`` is the classic proportional one.

    Args:
        target: the network whose weights are generated (its flat GraphSpec layout).
        cond_dim: the width of a condition.
        hidden: the widths of the MLP trunk.
        mip: the magnitude-invariant parametrization (else the classic one).
        modules: generate only these modules' parameters (paths); ``None``: all.
        chunk: heads make this many values at a time (large targets); ``None``: one head per
            tensor.
        delta_init: the scale the residual output starts at.

    Shapes:
        input: ``[B, cond_dim]``; output: ``[B, P]`` (the generated parameters).
    """

    def __init__(self, target: nn.Module, cond_dim: int = 1, hidden=(64, 64), mip: bool = True,
                 modules=None, chunk: int | None = None, delta_init: float = 0.1):
        super().__init__()
        if cond_dim < 1:
            raise ValueError(f"cond_dim must be at least 1, got {cond_dim}")
        self.cond_dim, self.mip = int(cond_dim), bool(mip)
        self.hidden = [int(h) for h in ([hidden] if isinstance(hidden, int) else hidden)]
        # the target is kept out of this module's parameters (it is a template, not trained)
        object.__setattr__(self, "_target", copy.deepcopy(target))
        self.layout = parameter_layout(target)
        self.generated = select_parameters(target, modules)
        slots = [self.layout.by_name[n] for n in self.generated]
        index = torch.cat([torch.arange(s.offset, s.stop) for s in slots])
        own = torch.cat([p.detach().reshape(-1).float() for _, p in target.named_parameters()])
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("fixed", own)  # the values of the entries not generated
        self.theta0 = nn.Parameter(own[index].clone()) if self.mip else None

        layers, width = [], 2 * self.cond_dim if self.mip else self.cond_dim
        for h in self.hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.trunk = nn.Sequential(*layers)
        for m in self.trunk:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        params = dict(target.named_parameters())
        sigmas = [initial_scale(params[s.name]) * (delta_init if self.mip else 1.0)
                  for s in slots]
        sizes, sq_norm = [s.numel for s in slots], self._trunk_sq_norm()
        self.heads = (ChunkedHead(width, sizes, sigmas, chunk, sq_norm) if chunk
                      else TensorHeads(width, sizes, sigmas, sq_norm))
        self.chunk = chunk

    @torch.no_grad()
    def _trunk_sq_norm(self) -> float:
        """Mean ``||z||^2`` of the trunk's output now (the scale the heads' init divides by)."""
        if self.mip:
            g = torch.linspace(0, 1, 17).unsqueeze(1).expand(-1, self.cond_dim)
            z = self.trunk(mip_encoding(g))
        else:
            z = self.trunk(torch.ones(1, self.cond_dim))
        return max(float(z.pow(2).sum(1).mean()), 1e-6)

    @property
    def target(self) -> nn.Module:
        """The template network (its class, buffers and the values of fixed entries)."""
        return self._target

    @property
    def num_params(self) -> int:
        return len(self.layout)

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._target._apply(fn)  # the template's buffers follow the hypernetwork's device
        return self

    def generated_values(self, conditions) -> Tensor:
        """``[B, G]``: the generated entries only, in the order of ``self.generated``."""
        g = check_conditions(conditions, self.cond_dim).to(self.fixed.device)
        z = self.trunk(mip_encoding(g) if self.mip else g)
        delta = self.heads(z)
        return self.theta0 + delta if self.mip else delta

    def forward(self, conditions) -> Tensor:
        return self.place(self.generated_values(conditions))

    def place(self, values: Tensor, base: Tensor | None = None) -> Tensor:
        """``[B, P]``: generated ``values [B, G]`` written at their slots of ``base [P]`` (by
        default the fixed target values), one ``index_copy``."""
        full = (self.fixed if base is None else base).expand(values.shape[0], -1)
        return full.index_copy(1, self.index, values.to(full.dtype))

    def generated_tensors(self, conditions) -> dict[str, Tensor]:
        """``name -> [B, *shape]`` for the generated tensors only (what
        :func:`~weightspace.functional.batched_forward` needs when the rest stay the module's)."""
        values, out, at = self.generated_values(conditions), {}, 0
        for name in self.generated:
            slot = self.layout.by_name[name]
            out[name] = values[:, at : at + slot.numel].view(-1, *slot.shape)
            at += slot.numel
        return out

    def modules_for(self, conditions) -> list[nn.Module]:
        """One ordinary copy of the target per condition, holding the generated weights."""
        with torch.no_grad():
            return copies_holding(self._target, self.layout, self(conditions))

    def __repr__(self) -> str:
        kind = "MIP" if self.mip else "proportional"
        return (f"{type(self).__name__}({kind}, target={type(self._target).__name__}, "
                f"cond_dim={self.cond_dim}, hidden={self.hidden}, generated "
                f"{len(self.index)}/{self.num_params} parameters"
                f"{f', chunk={self.chunk}' if self.chunk else ''})")
