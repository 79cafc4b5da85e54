"""Benchmark: structural pruning of held-out zoo networks at several speed-ups, side by side.

For each held-out network (the zoo's test split, final checkpoint) and each speed-up, the
accuracy on the recipe's test images right after pruning and after an equal fine-tune budget
(``--finetune-epochs`` of Adam on the recipe's training images), for the methods below. After
pruning, every method's BatchNorm statistics are re-estimated on the training images (no
labels, no gradients; ``--no-calibrate`` skips it). Methods:
(a) per-layer L1 filter magnitude, (b) DepGraph group-L2, global, (c) DepGraph after sparse
training (``--sparse-epochs`` with Torch-Pruning's group-norm regulariser, then group-L2),
(d) meta pruning: the weights edited by a ``task=meta_prune`` metanetwork (``--metanetwork``,
a run directory or ``best.pt`` trained on this zoo), then group-L2. With a metanetwork the
held-out networks are its own test split (its architectures, ``data.fractions`` and
``data.split_seed``). ``--train-edited plain``: also (d) as Liu et al. run it, the edited
network trained ``--sparse-epochs`` epochs of Adam before pruning (their fine-tuning after the
metanetwork), so it spends what (c) spends in every stage; ``sparse``: those epochs with (c)'s
regulariser.
``--equal-total-budget``: the epochs (c) trains before pruning count against its budget, so
every method that trains only after pruning fine-tunes ``--sparse-epochs`` epochs more (the
metanetwork's own training is shared by all networks and not counted).

    python scripts/train.py data.zoo=zoos/digits_resnet.h5 model=gmn task=meta_prune \
        out_dir=runs/meta_prune
    python scripts/bench_prune.py --timing   # the search against one Torch-Pruning pass
    python scripts/bench_prune.py --zoo zoos/digits_resnet.h5 [--networks 8]
        [--metanetwork runs/meta_prune] [--min-accuracy 0.5] [--speedups 1.5 2 3]
        [--finetune-epochs 1]
        [--sparse-epochs 3] [--train-edited plain] [--equal-total-budget] [--split val]
        [--plot PATH] [--no-calibrate]
"""

from __future__ import annotations

import argparse
import copy
import statistics

import numpy as np

from weightspace.api import metanetwork_edit, prune
from weightspace.pruning import accuracy, finetune_epochs
from weightspace.training import load_trained
from weightspace.zoo import Zoo
from weightspace.zoo.recipe import recipe_for


def held_out(zoo: Zoo, count: int, fractions=(0.8, 0.1, 0.1), seed: int = 0,
             archs=None, min_accuracy: float = 0.0, split: str = "test") -> list[int]:
    """Indices of the ``split``'s networks at their last checkpoint whose recorded
    ``test_acc`` is at least ``min_accuracy``; with ``archs``, of those architectures only,
    each split as the training app splits it (by run, per architecture)."""
    meta = zoo.metadata()
    last = meta["epoch"].max()
    parts = [zoo.dataset(split, arch=a, fractions=tuple(fractions), seed=seed)
             for a in archs] if archs else [zoo.dataset(split, fractions=tuple(fractions),
                                                        seed=seed)]
    return [int(i) for ds in parts for i in ds.indices
            if meta["epoch"][i] == last and meta["test_acc"][i] >= min_accuracy][:count]


def sparse_train(model, example_inputs, data, epochs: int, lr: float = 1e-3, reg: float = 5e-4,
                 seed: int = 0):
    """``epochs`` of Adam with Torch-Pruning's group-norm (group-lasso) regulariser."""
    import torch_pruning as tp

    model = copy.deepcopy(model)
    pruner = tp.pruner.GroupNormPruner(model, example_inputs,
                                       importance=tp.importance.GroupMagnitudeImportance(p=2),
                                       reg=reg, global_pruning=True)
    pruner.update_regularizer()
    return finetune_epochs(model, data, epochs, lr, seed=seed, after_backward=pruner.regularize)


def print_paired(results: dict, methods: dict, speedups: list[float]):
    """Each meta-pruning method against each other method on the same networks: the mean of
    the per-network differences, its standard error, and how many networks the meta-pruning
    method is ahead on / level / behind."""
    metas = [name for name, method in methods.items() if method.startswith("meta")]
    for meta in metas:
        print(f"| {meta} minus | speed-up | right after pruning | after fine-tuning "
              f"| ahead / level / behind (fine-tuned) |")
        print("|---|---|---|---|---|")
        for name in methods:
            if name == meta:
                continue
            for s in speedups:
                diffs = {stage: np.subtract(results[meta, s, stage], results[name, s, stage])
                         for stage in ("pruned", "tuned")}
                cells = []
                for diff in diffs.values():
                    sem = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 \
                        else float("nan")
                    cells.append(f"{diff.mean():+.3f} ± {sem:.3f}")
                tuned = diffs["tuned"]
                cells.append(f"{(tuned > 0).sum()} / {(tuned == 0).sum()} / "
                             f"{(tuned < 0).sum()}")
                print(f"| {name} | {s:g}x | " + " | ".join(cells) + " |")


def _seconds(f, repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``f``."""
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _time_one(model, x, speedup: float, repeats: int) -> str:
    """One row of :func:`time_search`'s table (without the network's name)."""
    import torch
    import torch_pruning as tp

    from weightspace.pruning import structural

    ratio, passes = structural.prune_search(model, x, speedup)[1:]

    def one_pass():
        net = copy.deepcopy(model)
        with torch.enable_grad():
            pruner = tp.pruner.BasePruner(
                net, (x,), importance=tp.importance.GroupMagnitudeImportance(p=2),
                global_pruning=True, pruning_ratio=ratio, max_pruning_ratio=0.95,
                iterative_steps=1, ignored_layers=[net.fc])
        with torch.no_grad():
            pruner.step()

    one = _seconds(one_pass, repeats)
    search = _seconds(lambda: structural.prune_search(model, x, speedup), repeats)
    api = _seconds(lambda: prune(model, x, speedup), repeats)
    # the search as it was: a copy pruned and counted at every trial ratio
    old = _seconds(lambda: structural.prune_search(model, x, speedup, one_graph=False), repeats)
    params = sum(q.numel() for q in model.parameters())
    return (f"{params:,} | {one:.4f} | {search:.4f} | {passes} | {search / one:.2f}x "
            f"| {api:.4f} | {api / one:.2f}x | {old:.3f} | {old / one:.0f}x |")


def time_search(speedup: float = 2.0, repeats: int = 5):
    """Seconds of ``ws.prune``'s search, and of ``ws.prune`` itself (the search plus the MAC
    counts and widths of its report), against one Torch-Pruning pass at the ratio it finds
    (BasePruner built and stepped once, as when the ratio is known), median of ``repeats``;
    beside them the search as it was, one pass per trial ratio."""
    import torch

    from weightspace.nets import ResNet

    print("| network | params | one Torch-Pruning pass (s) | search (s) | passes | search / pass "
          "| ws.prune (s) | ws.prune / pass | a pass per trial (s) | a pass per trial / pass |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, make, size in (("digits ResNet (16, 32)", lambda: ResNet((1, 1), (16, 32), 1, 10, 8),
                              8),
                             ("ResNet (64, 128, 256)", lambda: ResNet((1, 1, 1), (64, 128, 256),
                                                                      3, 10, 32), 32)):
        torch.manual_seed(0)
        model = make().eval()
        x = torch.rand(1, model.conv1.in_channels, size, size)
        print(f"| {name} | {_time_one(model, x, speedup, repeats)}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--zoo", default=None, help="the zoo whose held-out networks are pruned")
    p.add_argument("--timing", action="store_true",
                   help="only time ws.prune's search against one Torch-Pruning pass")
    p.add_argument("--networks", type=int, default=8)
    p.add_argument("--speedups", type=float, nargs="+", default=[1.5, 2.0, 3.0])
    p.add_argument("--min-accuracy", type=float, default=0.0,
                   help="skip held-out networks below this test accuracy (failed runs)")
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--equal-total-budget", action="store_true",
                   help="methods other than (c) fine-tune --sparse-epochs epochs more")
    p.add_argument("--sparse-epochs", type=int, default=3)
    p.add_argument("--metanetwork", default=None,
                   help="a task=meta_prune run directory or best.pt trained on this zoo: (d)")
    p.add_argument("--train-edited", choices=["sparse", "plain"], nargs="*", default=[],
                   help="also (d) with (c)'s pre-pruning epochs spent on the edited network: "
                        "sparse training as (c), or plain Adam")
    p.add_argument("--split", choices=["test", "val"], default="test",
                   help="networks of this split, accuracy on the recipe's images of this split "
                        "(val: for choosing between variants without looking at test)")
    p.add_argument("--plot", default=None)
    p.add_argument("--no-calibrate", action="store_true",
                   help="keep the stale BatchNorm statistics after pruning")
    a = p.parse_args()
    if a.timing:
        return time_search()
    if a.zoo is None:
        p.error("--zoo is required (or --timing)")
    zoo = Zoo(a.zoo)
    recipe = recipe_for(zoo.recipe)
    data = recipe.data()
    example = data["train"][0][:2]
    methods = {"(a) l1, per layer": "l1", "(b) group-L2, global": "group_l2",
               "(c) sparse training + group-L2": "sparse"}
    fractions, split_seed, archs = (0.8, 0.1, 0.1), 0, None
    if a.metanetwork:
        trained = load_trained(a.metanetwork)
        methods["(d) meta pruning + group-L2"] = "meta"
        fractions, split_seed = trained.config.data.fractions, trained.config.data.split_seed
        archs = [s.id for s in trained.specs]
        for kind in a.train_edited:
            methods[f"(d) meta pruning + {kind} training + group-L2"] = f"meta_{kind}"
    extra = a.sparse_epochs if a.equal_total_budget else 0
    pretrained = ("sparse", "meta_sparse", "meta_plain")  # spend --sparse-epochs before pruning
    budget = {name: a.finetune_epochs + (0 if method in pretrained else extra)
              for name, method in methods.items()}
    results = {(m, s, k): [] for m in methods for s in a.speedups for k in ("pruned", "tuned")}
    base = []
    indices = held_out(zoo, a.networks, fractions, split_seed, archs, a.min_accuracy, a.split)
    images = data[a.split]
    print(f"{zoo.recipe['recipe']}: {len(indices)} held-out networks; fine-tune epochs of "
          f"Adam (lr 1e-3) after pruning: {budget}; before pruning, (c) trains "
          f"{a.sparse_epochs} epochs with the group regulariser"
          + (", and (d) + training as many on the edited network" if a.train_edited else ""),
          flush=True)
    for index in indices:
        net = zoo.load(index, recipe.network_of(zoo.arch_of(index))).eval()
        base.append(accuracy(net, images))
        sparse = edited = None
        for name, method in methods.items():
            source = net
            if method == "sparse":
                if sparse is None:  # (not `or`: a Sequential's truth value is its length)
                    sparse = sparse_train(net, example, data["train"], a.sparse_epochs)
                source = sparse
            elif method.startswith("meta"):
                if edited is None:
                    edited = metanetwork_edit(net, example, trained)
                source = edited
                if method == "meta_sparse":
                    source = sparse_train(edited, example, data["train"], a.sparse_epochs)
                elif method == "meta_plain":
                    source = finetune_epochs(copy.deepcopy(edited), data["train"],
                                             a.sparse_epochs)
            method = "l1" if method == "l1" else "group_l2"
            for s in a.speedups:
                pruned, _ = prune(source, example, s, importance=method,
                                  calibrate=None if a.no_calibrate else data["train"][0])
                results[name, s, "pruned"].append(accuracy(pruned, images))
                tuned = finetune_epochs(pruned, data["train"], epochs=budget[name])
                results[name, s, "tuned"].append(accuracy(tuned, images))
        print(f"  network {index}: accuracy {base[-1]:.3f}", flush=True)

    print(f"unpruned: {np.mean(base):.3f} ± {np.std(base):.3f}")
    print("| method | speed-up | accuracy right after pruning | after fine-tuning |")
    print("|---|---|---|---|")
    for name in methods:
        for s in a.speedups:
            pr, tu = results[name, s, "pruned"], results[name, s, "tuned"]
            print(f"| {name} | {s:g}x | {statistics.mean(pr):.3f} ± {statistics.pstdev(pr):.3f} "
                  f"| {statistics.mean(tu):.3f} ± {statistics.pstdev(tu):.3f} |")
    if not a.metanetwork:
        print("| (d) meta pruning | - | needs --metanetwork | - |")
    else:
        print_paired(results, methods, a.speedups)
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
        for i, stage in enumerate(("pruned", "tuned")):
            for name in methods:
                ax[i].errorbar(a.speedups, [np.mean(results[name, s, stage]) for s in a.speedups],
                               [np.std(results[name, s, stage]) for s in a.speedups],
                               marker="o", capsize=3, label=name)
            ax[i].axhline(np.mean(base), color="gray", ls="--", lw=0.8, label="unpruned")
            ax[i].set(xlabel="MAC speed-up", title="right after pruning" if i == 0
                      else "after fine-tuning (" + ("equal total budget" if extra else
                                                    f"{a.finetune_epochs} epoch(s)") + ")")
        ax[0].set_ylabel("test accuracy")
        ax[1].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=120)
        print(f"plot: {a.plot}")


if __name__ == "__main__":
    main()
