"""``NPNetwork``: the NFN "NP" neural functional (Zhou et al. 2023) for MLP and CNN weight
spaces.

The weight space of a chain of ``L`` Linear/Conv layers is ``W_l in R^{n_l x n_{l-1} x c}``
(``c`` = kernel entries times channels) and ``b_l in R^{n_l x c}``. Under the NP assumption every
layer's neurons -- input and output ones included -- may be permuted independently, and the
linear maps that commute with all those permutations are sums of the terms that share an index
with the output entry. For weight entry ``(j, k)`` of layer ``l`` (``j`` a neuron of layer ``l``,
``k`` one of layer ``l - 1``; ``*`` is a mean over that index):

    W'_l[j,k] = A W_l[j,k] + R [W_l[j,*], W_{l+1}[*,j], b_l[j]]
                + C [W_l[*,k], W_{l-1}[k,*], b_{l-1}[k]] + G [W_m[*,*], b_m[*]]_{m=1..L}
    b'_l[j]   = D [b_l[j], W_l[j,*], W_{l+1}[*,j]] + G' [W_m[*,*], b_m[*]]_{m=1..L}

with separate channel maps ``A, R, C, D, G, G'`` per layer (terms of a layer that does not exist
are zeros). ``NPNetwork`` lifts every layer's entries to ``hidden`` channels, applies ``layers``
such NP layers with ReLUs, and then either pools (the mean of each layer's weights and biases
per channel -> MLP: an invariant prediction) or projects back to each layer's entries (an
equivariant ``delta [B, P]`` in the spec's layout). Networks with norm layers, residual adds or
attention are outside this weight space; :func:`weight_chain` refuses them by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from weightspace.graph.spec import GraphSpec
from weightspace.nn.conv.edge_mpnn_conv import mlp


@dataclass(frozen=True)
class ChainLayer:
    """One Linear/Conv layer of a weight chain.

    Args:
        weight: the weight's TensorSlot, shape ``(n_out, n_in, *kernel)``.
        bias: the bias's TensorSlot, or ``None``.
    """

    weight: object  # the weight's TensorSlot: shape (n_out, n_in, *kernel)
    bias: object | None  # the bias's TensorSlot, or None

    @property
    def n_out(self) -> int:
        return self.weight.shape[0]

    @property
    def n_in(self) -> int:
        return self.weight.shape[1]

    @property
    def entries(self) -> int:  # values per (out, in) pair: the kernel size, 1 for Linear
        return self.weight.numel // (self.n_out * self.n_in)


def weight_chain(spec: GraphSpec) -> list[ChainLayer]:
    """The layers of an MLP/CNN spec in order; anything else is refused with its name."""
    by_module: dict[str, dict] = {}
    for slot in spec.params.slots:
        module, _, kind = slot.name.rpartition(".")
        by_module.setdefault(module, {})[kind] = slot
    chain = []
    for module, slots in by_module.items():
        w = slots.get("weight")
        if w is None or set(slots) - {"weight", "bias"} or len(w.shape) < 2:
            raise ValueError(f"NPNetwork handles chains of Linear/Conv layers (the NFN NP weight "
                             f"space); module {module!r} has parameters {sorted(slots)} of shapes "
                             f"{[list(s.shape) for s in slots.values()]}")
        layer = ChainLayer(w, slots.get("bias"))
        if chain and layer.n_in != chain[-1].n_out:
            raise ValueError(f"NPNetwork handles chains of layers: {module!r} takes "
                             f"{layer.n_in} inputs, but the layer before gives {chain[-1].n_out} "
                             f"(grouped convolutions and branches are outside the NP space)")
        chain.append(layer)
    return chain


@torch.no_grad()
def fit_tensor_statistics(spec: GraphSpec, vecs: Tensor, mean: Tensor, std: Tensor):
    """Fill ``mean[i]``, ``std[i]`` with the mean and std of tensor ``i`` of ``spec`` over the
    (training) networks ``vecs [N, P]``: per-tensor scalars, so standardising keeps every
    symmetry."""
    for i, s in enumerate(spec.params.slots):
        w = vecs[:, s.offset : s.stop]
        mean[i], std[i] = w.mean(), w.std().clamp_min(1e-8)


def chain_tensors(spec: GraphSpec, chain: list[ChainLayer], vecs: Tensor, mean: Tensor,
                  std: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Each layer of ``chain`` in ``vecs [B, P]``, standardised per tensor: its weight
    ``[B, n_out, n_in, entries]`` and bias ``[B, n_out]`` (zeros for a layer without one)."""
    index = {s.name: i for i, s in enumerate(spec.params.slots)}
    B = vecs.shape[0]

    def tensor(slot):
        i = index[slot.name]
        return (vecs[:, slot.offset : slot.stop] - mean[i]) / std[i]

    return [(tensor(c.weight).view(B, c.n_out, c.n_in, c.entries),
             tensor(c.bias) if c.bias is not None else vecs.new_zeros(B, c.n_out))
            for c in chain]


class NPLayer(nn.Module):
    """One NP-equivariant linear map on ``[(W_l [B, n_l, n_{l-1}, C], b_l [B, n_l, C])]``.

    Args:
        num_layers: ``L``, layers of the chain.
        c_in: input channels per entry.
        c_out: output channels per entry.
    """

    def __init__(self, num_layers: int, c_in: int, c_out: int):
        super().__init__()
        L = num_layers

        def per_layer(fan_in):
            return nn.ModuleList(nn.Linear(fan_in, c_out) for _ in range(L))

        self.self_w = per_layer(c_in)  # A
        self.rows, self.cols = per_layer(3 * c_in), per_layer(3 * c_in)  # R, C
        self.bias_terms = per_layer(3 * c_in)  # D
        self.global_w, self.global_b = per_layer(2 * L * c_in), per_layer(2 * L * c_in)  # G, G'


    def forward(self, ws: list[Tensor], bs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        L = len(ws)
        pooled = torch.cat([t.mean((1, 2)) for t in ws] + [t.mean(1) for t in bs], -1)
        pooled = pooled[:, None, None]  # [B, 1, 1, 2 L C]
        out_w, out_b = [], []
        for l, (w, b) in enumerate(zip(ws, bs, strict=True)):
            zeros_j = torch.zeros_like(b)  # [B, n_l, C]: a term of a layer that is not there
            nxt = ws[l + 1].mean(1) if l + 1 < L else zeros_j  # W_{l+1}[*, j]
            prev_rows = ws[l - 1].mean(2) if l > 0 else torch.zeros_like(w[:, 0])  # W_{l-1}[k,*]
            prev_b = bs[l - 1] if l > 0 else torch.zeros_like(w[:, 0])
            row_terms = torch.cat([w.mean(2), nxt, b], -1)  # indexed by j
            col_terms = torch.cat([w.mean(1), prev_rows, prev_b], -1)  # indexed by k
            out_w.append(self.self_w[l](w) + self.rows[l](row_terms)[:, :, None]
                         + self.cols[l](col_terms)[:, None] + self.global_w[l](pooled))
            out_b.append(self.bias_terms[l](row_terms) + self.global_b[l](pooled[:, 0]))
        return out_w, out_b


class NPNetwork(nn.Module):
    """The NP neural functional on the weight chain of an MLP/CNN spec (module docstring).

    Args:
        spec: the architecture (an MLP/CNN chain; anything else is refused).
        hidden: channels per weight entry.
        layers: NP layers.
        out: outputs of the invariant readout.
        equivariant: output a ``delta [B, P]`` per weight instead of ``[B, out]``.

    Shapes:
        input ``[B, P]`` flat weights -> ``[B, out]`` or, equivariant, ``[B, P]``.
    """

    def __init__(self, spec: GraphSpec, hidden: int = 32, layers: int = 3, out: int = 1,
                 equivariant: bool = False):
        super().__init__()
        self.spec = spec
        self.chain = weight_chain(spec)
        L = len(self.chain)
        self.lift_w = nn.ModuleList(nn.Linear(c.entries, hidden) for c in self.chain)
        self.lift_b = nn.ModuleList(nn.Linear(1, hidden) for _ in self.chain)
        self.np_layers = nn.ModuleList(NPLayer(L, hidden, hidden) for _ in range(layers))
        self.equivariant = equivariant
        if equivariant:
            self.out_w = nn.ModuleList(nn.Linear(hidden, c.entries) for c in self.chain)
            self.out_b = nn.ModuleList(nn.Linear(hidden, 1) for _ in self.chain)
        else:
            self.readout = mlp(2 * L * hidden, out, 2 * hidden)
        # per-tensor scalars (not per entry), so that standardising keeps the symmetry
        self.register_buffer("mean", torch.zeros(len(spec.params.slots)))
        self.register_buffer("std", torch.ones(len(spec.params.slots)))

    def fit_normalization(self, vecs: Tensor):
        """Standardise each tensor by its mean and std over (training) networks ``vecs``."""
        fit_tensor_statistics(self.spec, vecs, self.mean, self.std)

    def forward(self, vecs: Tensor) -> Tensor:
        """``[B, out]`` (invariant) or ``delta [B, P]`` (``equivariant=True``)."""
        layers = chain_tensors(self.spec, self.chain, vecs, self.mean, self.std)
        ws, bs = [w for w, _ in layers], [b.unsqueeze(-1) for _, b in layers]
        ws = [f(w) for f, w in zip(self.lift_w, ws, strict=True)]
        bs = [f(b) for f, b in zip(self.lift_b, bs, strict=True)]
        for layer in self.np_layers:
            ws, bs = layer(ws, bs)
            ws, bs = [torch.relu(w) for w in ws], [torch.relu(b) for b in bs]
        if not self.equivariant:
            pooled = torch.cat([w.mean((1, 2)) for w in ws] + [b.mean(1) for b in bs], -1)
            return self.readout(pooled)
        delta = vecs.new_zeros(vecs.shape)
        for c, fw, fb, w, b in zip(self.chain, self.out_w, self.out_b, ws, bs, strict=True):
            delta[:, c.weight.offset : c.weight.stop] = fw(w).reshape(vecs.shape[0], -1)
            if c.bias is not None:
                delta[:, c.bias.offset : c.bias.stop] = fb(b).squeeze(-1)
        return delta
