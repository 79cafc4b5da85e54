"""Stacks of dense layers evaluated under B weight sets directly, one batched matmul per layer.

For an ``nn.Sequential`` (nested ones included) of ``nn.Linear``, ``nn.LayerNorm``,
``nn.Flatten`` and elementwise modules (activations, identities, inactive dropout), the B forwards
``f(x; theta_1), ..., f(x; theta_B)`` are computed layer by layer on tensors with a leading
weight-set axis:

    Linear:    h_b <- W_b h_b + c_b              one ``baddbmm`` over all b (h_b as columns)
    LayerNorm: h_b <- norm(h_b) * g_b + beta_b   normalised once, scaled per b
    Flatten:   the same flattening, one axis further right
    elementwise modules: applied to the stacked tensor as it is

This is the arithmetic ``vmap(functional_call)`` performs, without its per-call cost: for a
64-64-64-10 MLP with 64 inputs per weight set that machinery takes about as long as the matrix
products themselves (see ``scripts/bench_hyper.py``). :func:`weightspace.functional.
batched_forward` takes this path when :func:`plan` accepts the module, and ``vmap`` otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules import module as torch_module

# Modules that act on every entry independently: applied to a stacked tensor, they give the
# stack of their outputs.
ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
               nn.Mish, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Softsign, nn.Hardtanh,
               nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink, nn.Identity)

Layer = tuple[str, nn.Module]  # (parameter-name prefix, module)


def _l2_cache_bytes() -> int:
    """This machine's per-core L2 cache (Linux sysfs), else 1 MiB."""
    try:
        for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
            if (index / "level").read_text().strip() == "2":
                size = (index / "size").read_text().strip().upper()
                scale = {"K": 2**10, "M": 2**20}.get(size[-1], 1)
                return int(size.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return 2**20


# The activations of one chunk of weight sets should stay in the core's cache: past it, the
# [B, width, n] tensors of a large batch of inputs are streamed through memory once per layer
# and per pass, and one batched product loses to B small ones that each stay in cache
# (benchmarks/RESULTS.md, batched_forward against a loop; the sweep there chose these).
CACHE_BYTES = _l2_cache_bytes()
# From this many bytes of activation per weight set on, dense layers run in rows: each weight
# set's product is then the plain ``addmm`` a loop would run, faster than the column layout's
# ``baddbmm`` at many inputs (at 64 features: from 256 inputs on).
ROWS_FROM_BYTES = 64 * 2**10


def auto_chunk(layers: list[Layer], x: Tensor, x_batched: bool, weight_sets: int
               ) -> tuple[int | None, bool]:
    """``(chunk, columns)``: the chunk of weight sets whose widest activation
    ``[chunk, width, n]`` fits :data:`CACHE_BYTES` on a CPU (``None``: all at once; always so
    on other devices, where parallelism, not the cache, limits), and whether to run in the
    column layout (below :data:`ROWS_FROM_BYTES` per weight set) or in rows."""
    if x.device.type != "cpu":
        return None, True
    rows = x[0].numel() if x_batched else x.numel()
    rows //= max(x.shape[-1], 1)
    width = max([x.shape[-1]] + [m.out_features for _, m in layers if isinstance(m, nn.Linear)])
    per_set = rows * width * x.element_size()
    chunk = max(1, CACHE_BYTES // max(per_set, 1))
    return (None if chunk >= weight_sets else chunk), per_set < ROWS_FROM_BYTES


def _is_plain_sequential(module: nn.Module) -> bool:
    """An ``nn.Sequential`` (or subclass) whose forward is ``Sequential``'s own."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def _hooked(module: nn.Module) -> bool:
    """Whether a hook would run on a call of ``module`` or of one of its submodules."""
    if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks or (
            torch_module._global_backward_hooks or torch_module._global_backward_pre_hooks):
        return True
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks
               or m._backward_pre_hooks for m in module.modules())


def plan(module: nn.Module, train: bool) -> list[Layer] | None:
    """The layers of ``module`` in the order they run, or ``None`` when this path does not cover
    it (any other layer type, a custom ``forward``, dropout that would draw masks, buffers,
    hooks: this path calls no layer's forward, so no hook would see its call)."""
    if not _is_plain_sequential(module) or next(module.buffers(), None) is not None:
        return None
    if _hooked(module):
        return None
    layers: list[Layer] = []

    def walk(seq: nn.Sequential, prefix: str) -> bool:
        for name, child in seq.named_children():
            path = f"{prefix}{name}."
            if _is_plain_sequential(child):
                if not walk(child, path):
                    return False
            elif isinstance(child, nn.Dropout) and (not train or child.p == 0):
                continue  # the identity in eval mode or at rate 0
            elif isinstance(child, (nn.Linear, nn.LayerNorm, nn.Flatten, *ELEMENTWISE)):
                layers.append((path, child))
            else:
                return False
        return True

    return layers if walk(module, "") else None


def _columns(h: Tensor, batched: bool, weight_sets: int) -> tuple[Tensor, tuple[int, ...]]:
    """``h`` (``[B, *lead, F]``, or ``[*lead, F]`` shared) as columns ``[B, F, N]``, N =
    prod(lead), and ``lead``."""
    lead = tuple(h.shape[1:-1] if batched else h.shape[:-1])
    columns = h.reshape(weight_sets if batched else 1, -1, h.shape[-1]).transpose(1, 2)
    return columns.expand(weight_sets, -1, -1), lead


def _rows(columns: Tensor, lead: tuple[int, ...]) -> Tensor:
    """The inverse of :func:`_columns`: ``[B, F, N]`` back to ``[B, *lead, F]``."""
    return columns.transpose(1, 2).reshape(columns.shape[0], *lead, columns.shape[1])


def _layer_norm(h: Tensor, norm: nn.LayerNorm, weight: Tensor | None, bias: Tensor | None,
                batched: bool) -> Tensor:
    """``norm(h) * g_b + beta_b`` for every b: normalised once, then scaled per weight set."""
    y = F.layer_norm(h, norm.normalized_shape, None, None, norm.eps)
    dims = y.dim() + (0 if batched else 1)  # of the result, weight-set axis included

    def spread(t: Tensor) -> Tensor:  # [B, *shape] -> [B, 1, ..., 1, *shape]
        return t.view(t.shape[0], *[1] * (dims - t.dim()), *t.shape[1:])

    if weight is not None:
        y = y * spread(weight)
    if bias is not None:
        y = y + spread(bias)
    return y


def _flatten(h: Tensor, flatten: nn.Flatten, batched: bool) -> Tensor:
    # Counted from the left, the axes move one to the right behind the weight-set axis.
    shift = 1 if batched else 0
    start, end = flatten.start_dim, flatten.end_dim
    return h.flatten(start + shift if start >= 0 else start, end + shift if end >= 0 else end)


def run(layers: list[Layer], tensors: Mapping[str, Tensor], x: Tensor, x_batched: bool,
        chunk_size: int | None = None, columns: bool = True) -> Tensor:
    """``[B, *out]``: the layers of :func:`plan` under the weight sets in ``tensors`` (name ->
    ``[B, *shape]``, at least one; a name it lacks is the module's own tensor, shared by all B),
    ``chunk_size`` weight sets at a time (all at once for ``None``). ``columns``: dense layers
    work on ``[B, features, N]`` (gradients come out in the weights' own layout; best while a
    chunk's activations fit the cache), else on ``[B, N, features]`` rows (each weight set's
    product is then the plain ``addmm`` a loop would run: best for many inputs)."""
    weight_sets = next(iter(tensors.values())).shape[0]
    if chunk_size is not None and chunk_size < weight_sets:
        # one split per tensor: its backward is one concatenation (a slice per chunk would
        # write a zero-filled [B, ...] gradient per chunk, B^2 / chunk in all)
        names = list(tensors)
        pieces = list(zip(*(tensors[k].split(chunk_size) for k in names), strict=True))
        inputs = x.split(chunk_size) if x_batched else [x] * len(pieces)
        return torch.cat([run(layers, dict(zip(names, part, strict=True)), xc, x_batched,
                              columns=columns)
                          for part, xc in zip(pieces, inputs, strict=True)])

    def batched_param(path: str, module: nn.Module, name: str) -> Tensor | None:
        t = tensors.get(path + name)
        if t is not None:
            return t
        own = getattr(module, name)
        return None if own is None else own.expand(weight_sets, *own.shape)

    # Between dense layers the activations stay as columns [B, features, N]: then
    # y = W h + c is one baddbmm whose gradients come out contiguous (W's as [B, out, in],
    # exactly its slot of the flat gradient), with no transposes in the backward pass.
    h, batched, lead = x, x_batched, None  # lead: the row shape while h is in columns
    for path, layer in layers:
        if isinstance(layer, nn.Linear):
            weight, bias = (batched_param(path, layer, "weight"),
                            batched_param(path, layer, "bias"))
            if not columns:
                row_lead = h.shape[1:-1] if batched else h.shape[:-1]
                flat = h.reshape(weight_sets if batched else 1, -1, h.shape[-1])
                flat = flat.expand(weight_sets, -1, -1)
                y = torch.bmm(flat, weight.transpose(1, 2)) if bias is None else \
                    torch.baddbmm(bias.unsqueeze(1), flat, weight.transpose(1, 2))
                h, batched = y.view(weight_sets, *row_lead, y.shape[-1]), True
                continue
            if lead is None:
                h, lead = _columns(h, batched, weight_sets)
            h = torch.bmm(weight, h) if bias is None else torch.baddbmm(bias.unsqueeze(2),
                                                                         weight, h)
            batched = True
            continue
        if isinstance(layer, (nn.LayerNorm, nn.Flatten)) and lead is not None:
            h, lead = _rows(h, lead), None
        if isinstance(layer, nn.LayerNorm):
            weight = batched_param(path, layer, "weight")
            bias = batched_param(path, layer, "bias")
            h = _layer_norm(h, layer, weight, bias, batched)
            batched = batched or weight is not None or bias is not None
        elif isinstance(layer, nn.Flatten):
            h = _flatten(h, layer, batched)
        else:
            h = layer(h)  # elementwise: any layout
    if lead is not None:
        h = _rows(h, lead).contiguous()
    if not batched:  # no layer had weights: every weight set gives the same output
        h = h.expand(weight_sets, *h.shape)
    return h
