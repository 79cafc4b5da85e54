"""Benchmark: the loss barrier between independently trained networks, before and after
alignment, and merged vs naively averaged networks.

For each architecture, ``--pairs`` pairs of networks are trained on the digits (embedded) from
different seeds (Adam, ``--epochs`` epochs, the same data order for both members of a pair is
*not* used: every network has its own seed). For each pair, on the test images:

- the loss and accuracy along the linear path ``(1 - a) theta_A + a theta_B`` (``--steps``
  points), with ``theta_B`` as trained (naive) and after ``ws.align(A, B)`` (weight matching);
  the barrier is the largest rise of the loss above the line between the endpoints' losses
  (and the largest drop of accuracy below theirs), Frankle et al. 2020 / Ainsworth et al. 2023;
- the merged network ``ws.merge([A, B])`` (the aligned midpoint) against the naive average
  (``align=False``) and the endpoints' mean accuracy;
- the time ``ws.align`` takes per pair.

Networks with BatchNorm have their statistics re-estimated on the training images at every
point of the path (for both paths alike), as REPAIR and Git Re-Basin do. Widths are 4x the
recipes' defaults, as in Git Re-Basin, where matching needs room.

    python scripts/bench_merge.py [--pairs 10] [--epochs 30] [--archs mlp cnn resnet]
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
from weightspace.nets import MLP, ResNet, SmallCNN

ARCHS = {
    "mlp": lambda: MLP(64, [256, 256], 10),  # digits_mlp is 64 wide at most
    "cnn": lambda: SmallCNN(1, 64, 10),  # digits_cnn: 16 channels
    "resnet": lambda: ResNet((1, 1), (64, 128), 1, 10, 8),  # digits_resnet: 16, 32
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
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    data = load_digits_splits(0)
    print(f"# bench_merge: {args.pairs} pairs per architecture, digits, {args.epochs} epochs; "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("| arch | params | loss barrier naive | loss barrier aligned | aligned / naive | "
          "acc barrier naive | acc barrier aligned | endpoints acc | naive average acc | "
          "merged (aligned) acc | align s/pair |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
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
            start = time.perf_counter()
            b_aligned = ws.align(a, b)
            seconds = time.perf_counter() - start
            naive = path(a, b, spec, x, y, x_train, args.steps)
            aligned = path(a, b_aligned, spec, x, y, x_train, args.steps)
            merged = ws.merge([a, b], data=x_train if len(spec.buffers) else None)
            averaged = ws.merge([a, b], align=False, data=x_train if len(spec.buffers) else None)
            rows.append({"naive": barriers(naive), "aligned": barriers(aligned),
                         "ends": (naive[0][1] + naive[-1][1]) / 2,
                         "merged": evaluate(merged, x, y)[1],
                         "averaged": evaluate(averaged, x, y)[1], "seconds": seconds,
                         "params": spec.num_params})
        ratio = [r["aligned"][0] / r["naive"][0] for r in rows if r["naive"][0] > 0]
        print(f"| {arch} | {rows[0]['params']:,} | {mean_std(r['naive'][0] for r in rows)} | "
              f"{mean_std(r['aligned'][0] for r in rows)} | {mean_std(ratio)} | "
              f"{mean_std(r['naive'][1] for r in rows)} | "
              f"{mean_std(r['aligned'][1] for r in rows)} | "
              f"{mean_std(r['ends'] for r in rows)} | {mean_std(r['averaged'] for r in rows)} | "
              f"{mean_std(r['merged'] for r in rows)} | {mean_std(r['seconds'] for r in rows)} |",
              flush=True)
    print(f"test images: {len(data['test'][1])}")


if __name__ == "__main__":
    main()
