"""The reference of INR classification: a classifier of the signals the INRs render.

A metanetwork that classifies INRs from their weights (``task=classify_inr``) is judged
against a plain classifier trained on what those INRs draw: every INR of the zoo is rendered
on its recipe's coordinates (all at once, with ``batched_forward``), and an MLP of about an
INR's size is trained on the rendered training split and tested on the rendered test split,
split by run exactly as the training app splits the zoo. Prints the test accuracy over
``--seeds`` seeds (mean ± std) and the size of the test split.

    python scripts/inr_reference.py ZOO [--hidden 24] [--epochs 100] [--seeds 3]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
import torch.nn.functional as F

from weightspace.functional import batched_forward
from weightspace.nets import MLP
from weightspace.zoo import Zoo
from weightspace.zoo.recipe import recipe_for


def rendered(zoo: Zoo, split: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``([n, points] signals, [n] labels)`` of one split's INRs (last checkpoint)."""
    recipe = recipe_for(zoo.recipe)
    arch = zoo.archs[0]
    meta = zoo.metadata()
    indices = np.sort(np.asarray(zoo.dataset(split, arch=arch, seed=seed).indices))
    indices = indices[meta["step"][indices] == meta["step"].max()]
    template = recipe.build(recipe.run(0, 0))
    with torch.no_grad():
        out = batched_forward(template, torch.from_numpy(zoo.params(indices)), recipe.coords())
    labels = torch.as_tensor(meta["label"][indices], dtype=torch.long)
    return out.squeeze(-1).float(), labels


def train_reference(x, y, x_test, y_test, hidden: int, epochs: int, seed: int) -> float:
    torch.manual_seed(seed)
    model = MLP(x.shape[1], [hidden], int(y.max()) + 1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(128):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    with torch.no_grad():
        return float((model(x_test).argmax(1) == y_test).float().mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("zoo")
    parser.add_argument("--hidden", type=int, default=24, help="the MLP's hidden width")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--split-seed", type=int, default=0, help="as data.split_seed")
    args = parser.parse_args(argv)
    zoo = Zoo(args.zoo)
    x, y = rendered(zoo, "train", args.split_seed)
    x_test, y_test = rendered(zoo, "test", args.split_seed)
    params = sum(p.numel() for p in MLP(x.shape[1], [args.hidden], int(y.max()) + 1)
                 .parameters())
    accs = [train_reference(x, y, x_test, y_test, args.hidden, args.epochs, s)
            for s in range(args.seeds)]
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    print(f"reference MLP {x.shape[1]}-{args.hidden}-{int(y.max()) + 1} ({params:,} parameters) "
          f"on the rendered signals: test accuracy {statistics.mean(accs):.3f} ± {sd:.3f} "
          f"({args.seeds} seeds; {len(y)} training and {len(y_test)} test INRs)")


if __name__ == "__main__":
    main()
