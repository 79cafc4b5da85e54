"""Benchmark: the loss barrier between independently trained networks, before and after
alignment, and merged vs naively averaged networks.

For each architecture, ``--pairs`` pairs of networks are trained on the digits (embedded) from
different seeds (Adam, ``--epochs`` epochs; every network has its own seed and data order).
For each pair, on the test images:

- the loss and accuracy along the linear path ``(1 - a) theta_A + a theta_B`` (``--steps``
  points), with ``theta_B`` as trained (naive) and after ``ws.align(A, B)`` by weight matching
  and by activation matching (on the training images); the barrier is the largest rise of the
  loss above the line between the endpoints' losses (and the largest drop of accuracy below
  theirs), Frankle et al. 2020 / Ainsworth et al. 2023;
- the merged networks ``ws.merge([A, B])`` (the aligned midpoint, either alignment; and the
  Fisher-weighted merge after weight matching) against the naive average (``align=False``)
  and the endpoints' mean accuracy;
- the time ``ws.align`` takes per pair.

Networks with BatchNorm have their statistics re-estimated on the training images at every
point of either path, as REPAIR and Git Re-Basin do. Widths are 4x the recipes' defaults, as
in Git Re-Basin, where matching needs room (``resnet_8x``: 8x). ``--resnet18 N`` times weight
matching of N pairs of ResNet-18 (CIFAR layout, 11.2M parameters) at their initialisation (no
CIFAR data here).

    python scripts/bench_merge.py [--pairs 10] [--epochs 30] [--archs mlp cnn resnet vit]
    python scripts/bench_merge.py --resnet18 3 --archs
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
import torch.nn.functional as F

import weightspace as ws
from weightspace.batchnorm import recalibrate_batchnorm
from weightspace.datasets import load_digits_splits
from weightspace.nets import MLP, ResNet, SmallCNN, TinyViT, resnet18_cifar

ALIGNMENTS = ("weights", "activations")
ARCHS = {
    "mlp": lambda: MLP(64, [256, 256], 10),  # digits_mlp is 64 wide at most
    "cnn": lambda: SmallCNN(1, 64, 10),  # digits_cnn: 16 channels
    "resnet": lambda: ResNet((1, 1), (64, 128), 1, 10, 8),  # digits_resnet: 16, 32
    "resnet_8x": lambda: ResNet((1, 1), (128, 256), 1, 10, 8),
    "vit": lambda: TinyViT(8, 2, 1, 64, 2, 4, 10),  # 16 patches of 2x2, 4 heads of 16
}


def train(arch: str, seed: int, data, epochs: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = ARCHS[arch]()
    x, y = data["train"]
    if arch == "mlp":
        x = x.flatten(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def evaluate(model, x, y) -> tuple[float, float]:
    logits = model.eval()(x)
    return float(F.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())


def path(a, b, spec, x, y, x_train, steps: int) -> list[tuple[float, float]]:
    va, vb = spec.flatten(a), spec.flatten(b)
    has_bn = len(spec.buffers) > 0
    out = []
    for alpha in torch.linspace(0, 1, steps):
        net = copy.deepcopy(a)
        state = spec.unflatten((1 - alpha) * va + alpha * vb,
                               spec.flatten_buffers(a) if has_bn else None)
        net.load_state_dict(state)
        if has_bn:
            recalibrate_batchnorm(net, x_train)
        out.append(evaluate(net, x, y))
    return out


def barriers(points: list[tuple[float, float]]) -> tuple[float, float]:
    n = len(points) - 1
    (l0, a0), (l1, a1) = points[0], points[-1]
    loss = max(l - ((1 - k / n) * l0 + k / n * l1) for k, (l, _) in enumerate(points))
    acc = max(((1 - k / n) * a0 + k / n * a1) - a for k, (_, a) in enumerate(points))
    return loss, acc


def mean_std(values) -> str:
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--steps", type=int, default=11, help="points on the linear path")
    parser.add_argument("--archs", nargs="*", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--resnet18", type=int, default=0, metavar="N",
                        help="also time the weight matching of N ResNet-18 pairs")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_digits_splits(0)
    print(f"# bench_merge: {args.pairs} pairs per architecture, digits, {args.epochs} epochs; "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    results = {}
    for arch in args.archs:
        x, y = data["test"]
        x_train = data["train"][0]
        if arch == "mlp":
            x, x_train = x.flatten(1), x_train.flatten(1)
        rows = []
        for p in range(args.pairs):
            a = train(arch, 2 * p, data, args.epochs)
            b = train(arch, 2 * p + 1, data, args.epochs)
            spec = ws.GraphSpec.from_module(a)
            bn = x_train if len(spec.buffers) else None
            row = {"params": spec.num_params}
            naive = path(a, b, spec, x, y, x_train, args.steps)
            row["naive"], row["ends"] = barriers(naive), (naive[0][1] + naive[-1][1]) / 2
            row["average"] = evaluate(ws.merge([a, b], align=False, data=bn), x, y)[1]
            for how in ALIGNMENTS:
                start = time.perf_counter()
                b_aligned = ws.align(a, b, method=how, data=x_train)
                row[how, "seconds"] = time.perf_counter() - start
                row[how] = barriers(path(a, b_aligned, spec, x, y, x_train, args.steps))
                row[how, "merged"] = evaluate(ws.merge([a, b], align=how, data=x_train), x, y)[1]
            row["fisher"] = evaluate(ws.merge([a, b], method="fisher", data=x_train), x, y)[1]
            rows.append(row)
        results[arch] = rows
        print(f"{arch}: done", flush=True)
    print("\n| arch | params | loss barrier naive | weight matching | activation matching | "
          "weights / naive | activations / naive | acc barrier naive | weight matching | "
          "activation matching |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for arch, rows in results.items():
        ratios = [mean_std(r[how][0] / r["naive"][0] for r in rows if r["naive"][0] > 0)
                  for how in ALIGNMENTS]
        print(f"| {arch} | {rows[0]['params']:,} | {mean_std(r['naive'][0] for r in rows)} | "
              + " | ".join(mean_std(r[how][0] for r in rows) for how in ALIGNMENTS) + " | "
              + " | ".join(ratios) + f" | {mean_std(r['naive'][1] for r in rows)} | "
              + " | ".join(mean_std(r[how][1] for r in rows) for how in ALIGNMENTS) + " |")
    print("\n| arch | endpoints acc | naive average | average, weight matching | "
          "average, activation matching | Fisher, weight matching | weight matching s/pair | "
          "activation matching s/pair |")
    print("|---|---|---|---|---|---|---|---|")
    for arch, rows in results.items():
        print(f"| {arch} | {mean_std(r['ends'] for r in rows)} | "
              f"{mean_std(r['average'] for r in rows)} | "
              + " | ".join(mean_std(r[how, "merged"] for r in rows) for how in ALIGNMENTS)
              + f" | {mean_std(r['fisher'] for r in rows)} | "
              + " | ".join(mean_std(r[how, "seconds"] for r in rows) for how in ALIGNMENTS)
              + " |")
    print(f"test images: {len(data['test'][1])}; activation matching and Fisher on the "
          f"{len(data['train'][1])} training images")
    if args.resnet18:
        time_resnet18(args.resnet18)


def time_resnet18(pairs: int):
    """Seconds of ``ws.align`` per ResNet-18 pair: the first (building the matching index of
    the architecture) and the rest."""
    seconds = []
    for p in range(pairs):
        torch.manual_seed(2 * p)
        a = resnet18_cifar()
        torch.manual_seed(2 * p + 1)
        b = resnet18_cifar()
        start = time.perf_counter()
        ws.align(a, b)
        seconds.append(time.perf_counter() - start)
    spec = ws.GraphSpec.from_module(a)
    print(f"\nResNet-18 ({spec.num_params:,} parameters), ws.align by weight matching: first "
          f"pair {seconds[0]:.1f} s (with the spec's matching index), then "
          f"{mean_std(seconds[1:]) if pairs > 1 else '-'} s per pair")


if __name__ == "__main__":
    main()
