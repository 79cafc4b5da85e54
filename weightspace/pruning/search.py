"""Which channels a Torch-Pruning pass removes at a pruning ratio, and the MACs that leaves,
computed on one dependency graph without pruning.

A pass at ratio ``r`` ranks importances computed once on the unpruned weights. Global ranking
(``group_l2``, ``group_l1``, ``random``): the ``T`` channels of all groups are ranked together
and the ``n(r) = T - floor(T (1 - r))`` lowest go, i.e. every channel whose importance is at
most the ``n``-th smallest; local ranking (``l1``): each group of ``L`` channels drops its own
``L - floor(L (1 - r))`` lowest. Groups are taken in order, and one is skipped where it would
leave a layer it reaches no channel (counting what earlier groups took). Removing ``c`` channels
of a group removes ``c * k`` entries from every layer the group reaches, ``k`` read once by
asking the graph for the group of a single channel (``k > 1`` where a flatten spreads a channel
over positions). With those counts, :meth:`MacCounter.macs` gives the MACs of the pruned network,
so the search over ``r`` costs no pass at all; the pass at the ratio found is then made once and
its MACs checked against the prediction.

Networks outside this model (attention heads, grouped convolutions, a ranking other than plain
global or per-layer) raise :class:`Unmodelled`; the caller then prunes once per trial instead.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from weightspace.pruning.macs import MacCounter


class Unmodelled(Exception):
    """The pruner does something :class:`RemovalModel` does not reproduce."""


class RemovalModel:
    """The channels a ``pruner`` (a Torch-Pruning ``BasePruner``, not stepped yet) would take
    from each module at a ratio, and the MACs left.

    Args:
        pruner: built on the network whose forward pass ``counter`` recorded (while the
            pruner traced it, so that parameter-free modules are known by their autograd node).
        counter: the recorded forward pass.
        global_pruning: whether the pruner ranks all groups together.
    """

    def __init__(self, pruner, counter: MacCounter, global_pruning: bool):
        import torch_pruning as tp

        if any(getattr(pruner, name, None) for name in
               ("num_heads", "isomorphic", "round_to", "pruning_ratio_dict")):
            raise Unmodelled("attention heads, isomorphic ranking, rounding or per-layer ratios")
        elementwise = getattr(tp.ops, "_ElementWiseOp", ())  # ops without parameters
        dg, self.counter, self.global_pruning = pruner.DG, counter, global_pruning
        grouped = set(pruner.out_channel_groups) | set(pruner.in_channel_groups)
        known = {}
        self.groups: list[tuple[list[float], list[tuple[object, bool, int, int | None]]]] = []
        for group in dg.get_all_groups(ignored_layers=pruner.ignored_layers,
                                       root_module_types=pruner.root_module_types):
            if any(dep.target.module in grouped for dep, _ in group):
                raise Unmodelled("grouped channels")
            if not self._prunable(dg, group, tp.ops.OPTYPE.PARAMETER):
                continue
            imp = known[self._key(group)] = pruner.estimate_importance(group)
            if imp is None:
                continue
            root = group[0].dep
            single = dg.get_pruning_group(root.target.module, root.handler, [0])
            reach = []
            for dep, idxs in single:
                out = dg.is_out_channel_pruning_fn(dep.handler)
                if not out and not dg.is_in_channel_pruning_fn(dep.handler):
                    continue
                target = dep.target.module
                channels = dg.get_out_channels(target) if out else dg.get_in_channels(target)
                if isinstance(target, elementwise):  # maybe a parameter-free module, known
                    target = dep.target.grad_fn     # by its call's output node
                reach.append((target, out, len(idxs), channels))
            self.groups.append((sorted(imp.float().cpu().tolist()), reach))
        self.ranked = sorted(s for imp, _ in self.groups for s in imp)
        # the pass reuses these importances: the same numbers (a random importance too), once
        compute = pruner.estimate_importance

        def reuse(group):
            key = self._key(group)
            return known[key] if key in known else compute(group)

        pruner.estimate_importance = reuse

    @staticmethod
    def _key(group) -> tuple:
        return tuple((id(dep.target.module), dep.handler) for dep, _ in group)

    @staticmethod
    def _prunable(dg, group, parameter_type) -> bool:
        """Torch-Pruning's first-step check: no layer of the group is down to one channel."""
        for dep, _ in group:
            if dep.target.type == parameter_type:
                continue
            if dg.is_out_channel_pruning_fn(dep.handler):
                channels = dg.get_out_channels(dep.target.module)
            elif dg.is_in_channel_pruning_fn(dep.handler):
                channels = dg.get_in_channels(dep.target.module)
            else:
                continue
            if channels == 1:
                return False
        return True

    def removals(self, ratio: float) -> tuple[dict, dict]:
        """``(removed_in, removed_out)``: channels taken from each module's input / output."""
        taken = {True: defaultdict(int), False: defaultdict(int)}  # by direction: out, in
        threshold = None
        if self.global_pruning:
            total = len(self.ranked)
            n = total - int(total * (1 - ratio))
            if n <= 0:
                return {}, {}
            threshold = self.ranked[n - 1]
        for imp, reach in self.groups:
            if threshold is not None:
                c = bisect.bisect_right(imp, threshold)
            else:
                c = max(len(imp) - int(len(imp) * (1 - ratio)), 0)
            if c == 0 or any(ch is not None and ch - taken[out][m] <= c * k
                             for m, out, k, ch in reach):
                continue
            for m, out, k, _ in reach:
                taken[out][m] += c * k
        return dict(taken[False]), dict(taken[True])

    def macs(self, ratio: float) -> float:
        """MACs of the network pruned at ``ratio``, by :class:`MacCounter`'s count."""
        return self.counter.macs(*self.removals(ratio))


def step_at(pruner, ratio: float) -> None:
    """Prune the pruner's network once, at ``ratio``."""
    import torch

    pruner.per_step_pruning_ratio = pruner.iterative_pruning_ratio_scheduler(
        ratio, pruner.iterative_steps)
    pruner.current_step = 0
    with torch.no_grad():
        pruner.step()
