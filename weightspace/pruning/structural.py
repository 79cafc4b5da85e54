"""Structural pruning to a target speed-up, on Torch-Pruning's dependency graph (DepGraph).

Channels are removed physically: a pruned network is an ordinary, smaller ``nn.Module``. Torch-
Pruning groups every set of channels that must go together (a convolution's output channels,
the BatchNorm after it, the next layer's input channels, both sides of a residual add) and
scores each group; the speed-up is measured in multiply-accumulates,

.. math::
    \\text{speed-up} = \\mathrm{MACs}(\\text{original}) / \\mathrm{MACs}(\\text{pruned}),

counted by a forward pass on ``example_inputs``. The importances are computed once, on the
original weights, so pruning a larger fraction ``r`` of the channels removes a superset of what
a smaller one removes and the speed-up grows with ``r``: a bisection over ``r`` finds the
smallest fraction that reaches the requested speed-up, to the granularity of single channels.
The bisection runs on MACs predicted from one dependency graph (:mod:`.search`), and one pass
prunes at the fraction found.

Importances (``importance=``): ``group_l2`` / ``group_l1`` -- the L2 / L1 norm of every weight a
group removes, ranked across all layers (DepGraph's group-norm criterion, global); ``l1`` --
the L1 norm of each layer's own filters, each layer pruned by the same fraction (the classic
per-layer magnitude criterion); ``random``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from weightspace.graph.spec import GraphSpec
from weightspace.pruning import macs
from weightspace.pruning.search import RemovalModel, Unmodelled, step_at

IMPORTANCES = ("group_l2", "group_l1", "l1", "random")
BISECTIONS = 14  # halvings of the pruning-ratio interval: finer than one channel in 16k


def count_macs(model: nn.Module, example_inputs) -> tuple[float, int]:
    """``(MACs, parameters)`` of one forward pass on ``example_inputs``: Torch-Pruning's count
    (:func:`weightspace.pruning.macs.count_macs`)."""
    return macs.count_macs(model, example_inputs), sum(p.numel() for p in model.parameters())


def layer_widths(model: nn.Module) -> dict[str, int]:
    """Output channels / features of every convolution and linear layer, by module path."""
    conv = nn.modules.conv._ConvNd
    return {name: (m.out_channels if isinstance(m, conv) else m.out_features)
            for name, m in model.named_modules() if isinstance(m, conv | nn.Linear)}


def _importance(name: str):
    import torch_pruning as tp

    if name == "group_l2":
        return tp.importance.GroupMagnitudeImportance(p=2), True
    if name == "group_l1":
        return tp.importance.GroupMagnitudeImportance(p=1), True
    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1, group_reduction="first"), False
    if name == "random":
        return tp.importance.RandomImportance(), True
    raise ValueError(f"unknown importance {name!r}; known: {IMPORTANCES}")


def _output_layers(model: nn.Module, example_inputs) -> list[nn.Module]:
    """The layer that produces the network's output (its width is the task's: never pruned):
    the last Linear/conv in module order whose width equals the output's second dimension. Other
    heads can be kept with ``ignored_layers``."""
    with torch.no_grad():
        out = model(*example_inputs)
    width = out.shape[1] if out.dim() > 1 else 1
    layers = [m for m in model.modules()
              if isinstance(m, nn.Linear) and m.out_features == width
              or isinstance(m, nn.modules.conv._ConvNd) and m.out_channels == width]
    return layers[-1:]


def _runnable_macs(net: nn.Module, inputs, ratio: float) -> float:
    """The MACs of a network Torch-Pruning pruned at ``ratio``, or a one-line error when the
    pass left it unable to run (it cut channels on one side of a dependency it missed)."""
    try:
        return count_macs(net, inputs)[0]
    except RuntimeError as err:
        reason = str(err).splitlines()[0]
        raise ValueError(f"Torch-Pruning's pass at ratio {ratio:.3g} left {type(net).__name__} "
                         f"unable to run ({reason}): keep the layers before the failing one "
                         f"with ignored_layers=[...]") from None


def prune_to_speedup(model: nn.Module, example_inputs, speedup: float,
                     importance: str = "group_l2", ignored_layers=None,
                     max_ratio: float = 0.95) -> nn.Module:
    """A pruned copy of ``model`` whose MACs are at most ``1 / speedup`` of the original's.

    ``ignored_layers``: modules (or their paths) whose output channels stay; the output layer
    always stays. ``max_ratio``: the largest fraction of any layer's channels removed. An
    unreachable ``speedup`` raises a ``ValueError`` naming the best one reached.
    """
    return prune_search(model, example_inputs, speedup, importance, ignored_layers,
                        max_ratio)[0]


def _trials(max_ratio: float) -> list[float]:
    """The upper ends of the bracket tried in turn: near ``max_ratio``, rounding can make
    Torch-Pruning skip whole layers (16 channels x 0.95 leaves none to keep), so lower fractions
    are tried after it."""
    return [max_ratio] + [k / 10 for k in range(9, 0, -1) if k / 10 < max_ratio]


def _bisect(reached, speedup: float, max_ratio: float):
    """``(ratio, result, calls)``: the smallest ratio, to :data:`BISECTIONS` halvings, whose
    ``reached(ratio) -> (speed-up, result)`` reaches ``speedup``, that ratio's result, and the
    calls it took; ``(None, best speed-up, calls)`` where no bracket's upper end reaches it."""
    best, high, calls = 1.0, None, 0
    for trial in _trials(max_ratio):
        got, result = reached(trial)
        calls += 1
        best = max(best, got)
        if got >= speedup:
            high, kept = trial, result
            break
    if high is None:
        return None, best, calls
    low = 0.0
    for _ in range(BISECTIONS):
        mid = (low + high) / 2
        got, result = reached(mid)
        calls += 1
        if got >= speedup:
            high, kept = mid, result
        else:
            low = mid
    return high, kept, calls


def _copy(model: nn.Module, inputs, ignored_layers) -> tuple[nn.Module, list[str]]:
    """An eval-mode copy of ``model`` and the paths of the layers whose channels stay: the
    output layer and ``ignored_layers`` (modules of ``model``, or paths)."""
    net = copy.deepcopy(model).eval()
    paths = dict(net.named_modules())
    index = {m: p for p, m in paths.items()}
    kept = [index[m] for m in _output_layers(net, inputs)]
    for layer in ignored_layers or []:
        if isinstance(layer, str):
            if layer not in paths:
                raise KeyError(f"ignored_layers: {type(model).__name__} has no module {layer!r}")
            kept.append(layer)
            continue
        path = next((p for p, m in model.named_modules() if m is layer), None)
        if path is None:
            raise KeyError(f"ignored_layers: {type(layer).__name__} is not a module of the model")
        kept.append(path)
    return net, kept


def _pruner(net: nn.Module, inputs, imp, global_pruning: bool, ratio: float, max_ratio: float,
            kept: list[str]):
    import torch_pruning as tp

    paths = dict(net.named_modules())
    with torch.enable_grad():  # DepGraph traces through autograd (callers may not)
        return tp.pruner.BasePruner(
            net, inputs, importance=imp, global_pruning=global_pruning, pruning_ratio=ratio,
            max_pruning_ratio=max_ratio, iterative_steps=1, ignored_layers=[paths[p] for p in kept])


def _search_on_one_graph(net, inputs, speedup, imp, global_pruning, max_ratio, kept):
    """:func:`prune_search` with one dependency graph and one pass
    (:mod:`weightspace.pruning.search`): ``(net pruned, ratio)``, or ``None`` where the
    network is outside the removal model or the pass's MACs differ from its prediction (``net``
    may then be pruned already)."""
    with macs.MacCounter(net) as counter:
        if not counter.exact:  # known from the module types, before any graph is built
            return None
        pruner = _pruner(net, inputs, imp, global_pruning, max_ratio, max_ratio, kept)
    try:
        plan = RemovalModel(pruner, counter, global_pruning)
    except (Unmodelled, AttributeError):  # AttributeError: a Torch-Pruning of other internals
        return None
    base = counter.macs()
    ratio, _, _ = _bisect(lambda r: (base / plan.macs(r), None), speedup, max_ratio)
    if ratio is None:  # the per-pass search names the best speed-up reached
        return None
    predicted = plan.macs(ratio)
    step_at(pruner, ratio)
    if _runnable_macs(net, inputs, ratio) != predicted:
        return None
    return net, ratio


def prune_search(model: nn.Module, example_inputs, speedup: float, importance: str = "group_l2",
                 ignored_layers=None, max_ratio: float = 0.95, ratio: float | None = None,
                 one_graph: bool = True) -> tuple[nn.Module, float, int]:
    """:func:`prune_to_speedup`, also returning the pruning ratio it found and the pruning
    passes that took. Given the ``ratio`` (of an earlier search), it prunes once at that ratio
    instead of searching, and checks the speed-up is still reached.

    The search bisects over the ratio on MACs predicted from one dependency graph and makes one
    pass at the ratio found (:mod:`weightspace.pruning.search`); where the network is outside
    that prediction, or the pass's MACs differ from it, it prunes a copy at every trial ratio
    instead (the same bisection, the same result). ``one_graph=False`` always does the latter:
    the reference the one-graph search is checked and timed against."""
    if not speedup >= 1:
        raise ValueError(f"speedup must be >= 1 (MACs before / after), got {speedup}")
    inputs = tuple(example_inputs) if isinstance(example_inputs, list | tuple) \
        else (example_inputs,)
    GraphSpec.from_module(model, inputs)  # a network the graph layer cannot read stops here
    pruned, kept = _copy(model, inputs, ignored_layers)
    if speedup == 1:
        return pruned, 0.0, 0
    imp, global_pruning = _importance(importance)
    if ratio is not None and not 0 <= ratio <= max_ratio:
        raise ValueError(f"ratio must be in [0, {max_ratio}], got {ratio}")
    if ratio is None and one_graph:
        found = _search_on_one_graph(pruned, inputs, speedup, imp, global_pruning, max_ratio,
                                     kept)
        if found is not None:
            return found[0], found[1], 1
        pruned = _copy(model, inputs, ignored_layers)[0]
    base_macs, _ = count_macs(pruned, inputs)

    def pruned_at(ratio: float) -> tuple[float, nn.Module]:
        net = copy.deepcopy(pruned)
        if ratio > 0:
            pruner = _pruner(net, inputs, imp, global_pruning, ratio, max_ratio, kept)
            with torch.no_grad():
                pruner.step()
        return base_macs / _runnable_macs(net, inputs, ratio), net

    if ratio is not None:
        reached, net = pruned_at(ratio)
        if reached < speedup:
            raise ValueError(f"ratio {ratio:g} gives a {reached:.3f}x speed-up, short of "
                             f"{speedup:g}x: was it found for another network?")
        return net, ratio, 1
    ratio, result, passes = _bisect(pruned_at, speedup, max_ratio)
    if ratio is None:
        raise ValueError(f"a {speedup:g}x speed-up is not reachable for {type(model).__name__} "
                         f"with importance {importance!r} (at most {max_ratio:.0%} of a layer's "
                         f"channels removed; output layers kept): the best is {result:.2f}x")
    return result, ratio, passes
