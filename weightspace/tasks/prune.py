"""Meta pruning: edit a classifier's weights so that structural pruning costs little accuracy.

After Liu et al. (2025), "Meta Pruning via Graph Metanetworks". The zoo holds classifiers of a
recipe (``digits_resnet``, ``digits_cnn``); the metanetwork outputs ``delta [B, P]`` and the
edited network ``theta' = theta + delta`` is trained on

.. math::
    L = \\mathrm{CE}\\big(f(x; m(\\theta') \\odot \\theta'), y\\big)
        + \\lambda \\sum_g n_g(\\theta'),

the cross-entropy on a minibatch of the recipe's training images (all networks of the batch at
once, through :func:`~weightspace.functional.batched_forward`) plus the group lasso over the
spec's channel groups (:class:`~weightspace.pruning.groups.ChannelGroups`: the channels
structural pruning removes together). ``m(theta')`` is the pruning the score will apply,
simulated: it zeroes the fraction ``r`` of channel groups that a global group-norm criterion
ranks lowest (no gradient flows through the choice), with ``r = 1 - speedup^(-1/2)`` by default
(a convolution's MACs scale with its input times its output channels); with
``train_speedups = [lo, hi]`` each step draws ``r`` uniformly between the fractions of ``lo``
and ``hi``, so one edit serves several targets. BatchNorm layers normalise with the batch's
statistics, as the pruned network will after recalibration. So the edit learns to move the
function out of the channels pruning removes, and the lasso to empty them.

The score that picks the checkpoint is what the edit is for: each network of the split is
edited, pruned to ``speedup`` times fewer MACs with global group-L2 importance
(:func:`~weightspace.pruning.structural.prune_to_speedup`), its BatchNorm statistics re-estimated
on the training images, and its accuracy measured on the recipe's *validation* images
(``pruned_acc``). Beside it the same for the unedited network (``pruned_acc_unedited``: what
editing has to beat; computed once per network), and both unpruned accuracies (the edited
network's with its BatchNorm statistics re-estimated too). Test images are
left to the benchmark (``scripts/bench_prune.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from weightspace.functional import batched_forward
from weightspace.graph.spec import GraphSpec
from weightspace.pruning.evaluation import accuracy, recalibrate_batchnorm
from weightspace.pruning.groups import ChannelGroups
from weightspace.pruning.structural import prune_to_speedup
from weightspace.tasks.base import TASKS
from weightspace.tasks.zoo_task import ZooTask
from weightspace.zoo.recipe import recipe_for

RECORDS = ("acc_unedited", "acc", "pruned_acc_unedited", "pruned_acc")


@TASKS.register("meta_prune")
class MetaPrune(ZooTask):
    """Meta pruning: an equivariant edit that makes structural pruning cost little accuracy.

    Args:
        recipe: the zoo's recipe config (a classifier recipe: its images train the edit).
        archs: the architecture ids trained on.
        speedup: the MAC speed-up the score prunes to (``task.speedup``, > 1).
        sparsity: the weight ``lambda`` of the group lasso.
        batch_size: training images per step, shared by the networks of a batch.
        mask_fraction: the fraction of channel groups the loss switches off; ``None``:
            ``1 - speedup^(-1/2)``.
        seed: seeds the draws of images and fractions.
        train_speedups: ``[lo, hi]``: each step draws the fraction between those of ``lo`` and
            ``hi`` instead (exclusive with ``mask_fraction``).
    """

    name, score, maximize, equivariant = "meta_prune", "pruned_acc", True, True

    def __init__(self, recipe: dict, archs: list[str], speedup: float = 2.0,
                 sparsity: float = 1e-3, batch_size: int = 128, mask_fraction: float | None = None,
                 seed: int = 0, train_speedups: Sequence[float] | None = None):
        super().__init__(recipe, archs)
        recipe_obj = recipe_for(recipe)
        if not hasattr(recipe_obj, "data"):
            raise ValueError(f"meta pruning needs a zoo of classifiers; this one was built by "
                             f"recipe {recipe.get('recipe')!r}")
        if not speedup > 1:
            raise ValueError(f"task.speedup must be > 1 (MACs before / after), got {speedup}")
        self.speedup, self.sparsity, self.batch_size = float(speedup), float(sparsity), batch_size
        self.mask_fraction = 1 - self.speedup ** -0.5 if mask_fraction is None \
            else float(mask_fraction)
        if not 0 <= self.mask_fraction < 1:
            raise ValueError(f"task.mask_fraction must be in [0, 1), got {mask_fraction}")
        self.fraction_range = None
        if train_speedups is not None:
            if mask_fraction is not None:
                raise ValueError("task.train_speedups and task.mask_fraction both set the "
                                 "fraction the loss switches off; give one")
            lo, hi = (float(v) for v in train_speedups)
            if not 1 < lo <= hi:
                raise ValueError(f"task.train_speedups must be [lo, hi] with 1 < lo <= hi, got "
                                 f"{list(train_speedups)}")
            self.fraction_range = (1 - lo ** -0.5, 1 - hi ** -0.5)
        data = recipe_obj.data()
        self.train_x, self.train_y = data["train"]
        self.val_x, self.val_y = data["val"]
        self.networks = [recipe_obj.network_of(a) for a in archs]
        self.specs = [GraphSpec.from_module(m) for m in self.networks]
        self.groups = [ChannelGroups(s) for s in self.specs]
        self.batch_stats = [any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                                for m in net.modules()) for net in self.networks]
        self.generator = torch.Generator().manual_seed(seed)
        self._unedited: dict[bytes, float] = {}  # pruned accuracy of networks as they came

    @classmethod
    def create(cls, cfg, recipe, archs):
        return cls(recipe, archs, cfg.get("speedup", 2.0), cfg.get("sparsity", 1e-3),
                   cfg.get("batch_size", 128), cfg.get("mask_fraction"),
                   train_speedups=cfg.get("train_speedups"))

    # ---------------------------------------------------------------- training
    def _minibatch(self, device) -> tuple[Tensor, Tensor]:
        pick = torch.randint(len(self.train_x), (self.batch_size,), generator=self.generator)
        return self.train_x[pick].to(device), self.train_y[pick].to(device)

    def _mask_fraction(self) -> float:
        """The fraction of channel groups this step switches off: ``mask_fraction``, or with
        ``train_speedups = [lo, hi]`` one drawn uniformly between ``1 - lo^(-1/2)`` and
        ``1 - hi^(-1/2)`` (the fractions of those speed-ups)."""
        if self.fraction_range is None:
            return self.mask_fraction
        lo, hi = self.fraction_range
        return lo + (hi - lo) * float(torch.rand((), generator=self.generator))

    def objective(self, out, vecs, buffers, target, arch=0):
        edited = vecs + out.float()
        x, y = self._minibatch(vecs.device)
        net = self.networks[arch].to(vecs.device)
        pruned = edited * self.groups[arch].keep_mask(edited, self._mask_fraction())
        train = self.batch_stats[arch]  # BatchNorm by batch statistics (dropout is on too)
        logits = batched_forward(net, pruned, x, None if train else buffers, train=train,
                                 randomness="different")  # [B, n, classes]
        ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(edited)))
        return ce + self.sparsity * self.groups[arch].lasso(edited).mean()

    # ---------------------------------------------------------------- evaluation
    def network(self, vec: Tensor, buffers: Tensor | None, arch: int = 0) -> torch.nn.Module:
        """A copy of architecture ``arch``'s network holding weights ``vec`` (and buffers)."""
        net = copy.deepcopy(self.networks[arch]).cpu()
        state = self.specs[arch].unflatten(vec.detach().cpu().to(self.specs[arch].dtype),
                                           None if buffers is None else buffers.detach().cpu())
        net.load_state_dict(state, strict=True)
        return net.eval()

    def pruned_accuracy(self, net: torch.nn.Module) -> float:
        """Accuracy on the validation images after pruning to ``speedup`` (group-L2) and
        re-estimating BatchNorm statistics on the training images."""
        pruned = prune_to_speedup(net, self.train_x[:2], self.speedup, "group_l2")
        recalibrate_batchnorm(pruned, self.train_x)
        return accuracy(pruned, (self.val_x, self.val_y))

    def record(self, out, vecs, buffers, y, arch=0):
        """``[B, 4]``: validation accuracy unedited and edited, then both pruned (``RECORDS``);
        one network at a time, since pruning makes each a different module."""
        rows = []
        for i in range(len(vecs)):
            b = None if buffers is None else buffers[i]
            original = self.network(vecs[i], b, arch)
            # trained with batch statistics: the edited network's own are re-estimated
            edited = recalibrate_batchnorm(self.network(vecs[i] + out[i].float(), b, arch),
                                           self.train_x)
            key = vecs[i].detach().cpu().numpy().tobytes()
            if key not in self._unedited:
                self._unedited[key] = self.pruned_accuracy(original)
            rows.append([accuracy(original, (self.val_x, self.val_y)),
                         accuracy(edited, (self.val_x, self.val_y)),
                         self._unedited[key], self.pruned_accuracy(edited)])
        return torch.tensor(rows)

    def metrics(self, records, y):
        return {name: float(np.mean(records[:, i])) for i, name in enumerate(RECORDS)}

    def plot_records(self, out_dir, records, y):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4.2, 4))
        ax.scatter(records[:, 2], records[:, 3], s=12)
        lo = float(min(records[:, 2].min(), records[:, 3].min()))
        ax.plot([lo, 1], [lo, 1], "k--", lw=1)
        ax.set(xlabel="unedited, pruned", ylabel="edited by the metanetwork, pruned",
               title=f"validation accuracy at {self.speedup:g}x (test split)")
        fig.tight_layout()
        fig.savefig(Path(out_dir) / "meta_prune.png", dpi=120)
        plt.close(fig)
