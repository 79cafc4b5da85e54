"""Multiply-accumulates of a network, and of the same network with channels removed, from one
forward pass's shapes.

Torch-Pruning's counter (``count_ops_and_params``) is the measure of a speed-up here. It counts,
per call of every module of a supported type (and none of that module's children), an
operation count read off the module's attributes and its tensors' shapes: a convolution
``prod(k) * c_in * c_out / groups * N * prod(spatial_out)`` plus ``c_out`` per output position
for the bias, a linear layer ``numel(x) * f_out`` plus ``f_out`` for the bias, a norm
``numel(x)`` (twice with an affine map), an activation ``numel(y)``, a pooling ``numel(x)``;
the total is divided by the batch size. It deep-copies the network first.

:class:`MacCounter` gives the same numbers without the copy, and, since removing channels
changes only the channel sizes of those shapes, it gives the counts of the network with
``r_in[m]`` input and ``r_out[m]`` output channels removed from each module ``m`` without
pruning anything: with ``C`` channels read per call, a count linear in the channels scales by
``(C - r) / C``, a convolution's by ``(c_in - r_in)(c_out - r_out) / (c_in c_out)`` (a
depthwise one keeps one channel per group). Module types outside that list (recurrent
layers, attention, upsampling, grouped convolutions) make the counter
:attr:`~MacCounter.exact` ``False``; callers then use Torch-Pruning's own count.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# Torch-Pruning's hook for a module type -> how this counter reads that type
_KINDS = {"conv_flops_counter_hook": "conv", "linear_flops_counter_hook": "linear",
          "bn_flops_counter_hook": "norm", "ln_flops_counter_hook": "norm",
          "relu_flops_counter_hook": "activation", "pool_flops_counter_hook": "pool"}


def _kinds() -> dict[type, str | None]:
    """Each module type Torch-Pruning's counter counts (matched by exact type, as it does), with
    its kind here (``None``: not modelled)."""
    from torch_pruning.utils import op_counter

    hooks = {**op_counter.MODULES_MAPPING, **op_counter.CUSTOM_MODULES_MAPPING}
    return {t: _KINDS.get(getattr(h, "__name__", "")) for t, h in hooks.items()}


class MacCounter:
    """Records, for one forward pass of ``model``, each counted module call's shapes (and the
    autograd node of its output, which is how Torch-Pruning's dependency graph names a
    parameter-free module), then counts MACs from them.

    Use as a context manager around the forward pass to record (with autograd on where the
    nodes matter); only the first pass inside it is recorded.

    Args:
        model: the network; hooks are added to its counted modules and removed on exit.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        # per call: the module, its kind, input and output shapes, channel sizes, output node
        self.calls: list[tuple] = []
        self.exact = True
        self.batch = 1
        self._passes = 0
        self._handles = []

    def __enter__(self) -> MacCounter:
        kinds, stack, seen = _kinds(), [self.model], set()
        while stack:  # a counted module's children are not counted (Torch-Pruning's rule)
            m = stack.pop()
            if id(m) in seen:  # a module registered twice is hooked once
                continue
            seen.add(id(m))
            if type(m) in kinds:
                kind = kinds[type(m)]
                self.exact &= kind is not None and not (  # grouped, not depthwise
                    kind == "conv" and m.groups > 1
                    and not m.groups == m.in_channels == m.out_channels)
                self._handles.append(m.register_forward_hook(
                    lambda m, a, y, kind=kind: self._record(m, kind, a, y)))
            else:
                stack.extend(m.children())
        self._handles.append(self.model.register_forward_pre_hook(self._start))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _start(self, module, args) -> None:
        if self._passes == 0 and args:
            self.batch = len(args[0])
        self._passes += 1

    def _record(self, module, kind, args, output) -> None:
        if self._passes <= 1 and kind is not None:
            x = args[0] if args else output
            self.calls.append((module, kind, x.shape, output.shape,
                               self._sizes(module, kind, x.shape), output.grad_fn))

    def macs(self, removed_in: dict | None = None, removed_out: dict | None = None) -> float:
        """The count of the recorded pass, with ``removed_in[m]`` / ``removed_out[m]``
        channels taken from module ``m``'s input / output; a parameter-free module's channels
        are keyed by its call's output node (``grad_fn``), as a module called twice reads
        different channels each time."""
        r_in, r_out = removed_in or {}, removed_out or {}
        total = 0
        for m, kind, x, y, sizes, node in self.calls:
            ro = r_out.get(m, 0) + (r_out.get(node, 0) if node is not None else 0)
            if kind == "conv":
                c_in, c_out, groups = sizes
                if groups > 1:  # depthwise: channels, and groups, go together
                    c_in = c_out = groups = c_out - max(ro, r_in.get(m, 0))
                else:
                    c_in, c_out = c_in - r_in.get(m, 0), c_out - ro
                positions = y[0] * math.prod(y[2:])
                total += math.prod(m.kernel_size) * c_in * (c_out // groups) * positions
                total += c_out * positions if m.bias is not None else 0
            elif kind == "linear":
                f_in, f_out = sizes
                total += math.prod(x) // f_in * (f_in - r_in.get(m, 0)) * (f_out - ro)
                total += f_out - ro if m.bias is not None else 0
            else:
                channels, = sizes
                size = math.prod(y if kind == "activation" else x)
                kept = size // channels * (channels - ro)
                affine = getattr(m, "affine", getattr(m, "elementwise_affine", False))
                total += 2 * kept if kind == "norm" and affine else kept
        return total / self.batch

    @staticmethod
    def _sizes(m: nn.Module, kind: str, x: torch.Size) -> tuple[int, ...]:
        """The channel sizes a call's count is made of (read when the call is recorded: a
        pass pruning the module later changes them)."""
        if kind == "conv":
            return m.in_channels, m.out_channels, m.groups
        if kind == "linear":
            return m.in_features, m.out_features
        if isinstance(m, nn.LayerNorm):
            return (m.normalized_shape[-1],)
        if kind == "norm":
            return (getattr(m, "num_features", None) or m.num_channels,)
        return (x[1] if len(x) > 1 else 1,)


def count_macs(model: nn.Module, example_inputs) -> float:
    """MACs of one forward pass on ``example_inputs``, as Torch-Pruning's counter gives them,
    without copying ``model`` where every counted module is of a type :class:`MacCounter`
    models (Torch-Pruning's counter otherwise)."""
    inputs = tuple(example_inputs) if isinstance(example_inputs, list | tuple) \
        else (example_inputs,)
    was = model.training
    model.eval()
    try:
        with torch.no_grad(), MacCounter(model) as counter:
            if counter.exact:
                model(*inputs)
        if counter.exact:
            return counter.macs()
        import torch_pruning as tp

        return float(tp.utils.count_ops_and_params(model, inputs)[0])
    finally:
        model.train(was)
