"""Benchmark: building and reading zoos, against the sequential ways, side by side in one run.

(a) Training: B runs of the ``digits_cnn`` recipe (one vectorised group) trained together
    with ``train_vmapped`` vs. the same runs trained one after another with ``torch.optim``
    (``train_alone``), networks per minute, and beside them the arithmetic floor (one network
    trained on all B runs' minibatches at once: sequential time over it bounds the ratio any
    batched training can reach on this machine); likewise B ``digits_inr`` SIRENs fitted together
    by the recipe vs. one after another (``DigitsINR.fit_alone``).
(b) Reading: N models of the Small CNN from one zoo file (sequential blocks and random
    batches) vs. one ``.pth`` state dict per model read with ``torch.load(weights_only=True)``,
    models per second.

``--parts conv`` times why (a) stops short of its floor: each convolution of the Small CNN as
vmap runs it (one grouped convolution) and as the floor does (one plain one).

Usage: ``python scripts/bench_zoo.py [--runs 32] [--epochs 2] [--models 2000]``
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import weightspace as ws
from model_zoo.recipes.digits_cnn import DigitsCNN
from model_zoo.recipes.digits_inr import DigitsINR
from model_zoo.training import train_alone, train_vmapped
from weightspace.nets import SmallCNN
from weightspace.zoo import Zoo, ZooWriter

CNN_CONFIG = {
    "recipe": "digits_cnn", "data_seed": 0, "channels": 16, "batch_size": 32,
    "activations": ["relu"], "optimizers": ["adam"], "dropouts": [0.0], "lr": [5e-4, 5e-2],
    "weight_decay": [1e-8, 1e-2], "init_std": [1e-3, 0.5], "train_fractions": [1.0],
}


def sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_training(n_runs: int, epochs: int, alone_runs: int,
                   device: str | torch.device = "cpu") -> dict:
    device = torch.device(device)
    recipe = DigitsCNN({**CNN_CONFIG, "epochs": epochs, "checkpoints": [epochs]})
    runs = [recipe.run(i, 0) for i in range(n_runs)]
    x, y = (t.to(device) for t in recipe.data()["train"])
    models = [recipe.build(r).to(device) for r in runs]
    subsets = [torch.arange(len(y))] * n_runs
    seeds = [r.seed for r in runs]
    lr = torch.tensor([r.hparams["lr"] for r in runs])
    wd = torch.tensor([r.hparams["weight_decay"] for r in runs])
    sync(device)
    start = time.perf_counter()
    train_vmapped(models[0], models, x, y, subsets, seeds, lr, wd, "adam", epochs, 32, [epochs])
    sync(device)
    vmapped = time.perf_counter() - start
    start = time.perf_counter()
    for b in range(alone_runs):
        train_alone(models[b], x, y, subsets[b], seeds[b], float(lr[b]), float(wd[b]), "adam",
                    epochs, 32)
    sync(device)
    alone = (time.perf_counter() - start) / alone_runs * n_runs
    # The floor of any batched training: one network trained on all B runs' minibatches at
    # once (B x 32 images a step, the same number of steps) -- the same multiply-adds with one
    # weight set, as plain convolutions. Sequential time over this bounds the reachable ratio.
    start = time.perf_counter()
    train_alone(models[0], x, y, torch.arange(len(y)).repeat(n_runs), seeds[0], float(lr[0]),
                float(wd[0]), "adam", epochs, 32 * n_runs)
    sync(device)
    floor = time.perf_counter() - start
    return {"vmapped_per_min": n_runs / vmapped * 60, "alone_per_min": n_runs / alone * 60,
            "ratio": alone / vmapped, "floor_s": floor, "bound": alone / floor}


def bench_convolutions(n_runs: int, repeats: int = 50, batch: int = 32) -> list[dict]:
    """Why batched training stops short of its floor: each convolution of the Small CNN on
    the digits, forward and backward, as vmap runs it for ``n_runs`` networks (one grouped
    convolution of ``n_runs`` groups) and as the floor runs it (one plain convolution on
    ``n_runs`` times the images), the same multiply-adds; median seconds of ``repeats``."""
    import torch.nn.functional as F

    rows = []
    for c_in, side in ((1, 8), (16, 4), (16, 2)):  # the three stride-2 convolutions, 16 wide
        x_grouped = torch.randn(batch, n_runs * c_in, side, side, requires_grad=c_in > 1)
        w_grouped = torch.randn(n_runs * 16, c_in, 3, 3, requires_grad=True)
        x_plain = torch.randn(n_runs * batch, c_in, side, side, requires_grad=c_in > 1)
        w_plain = torch.randn(16, c_in, 3, 3, requires_grad=True)
        times = {}
        for name, x, w, groups in (("grouped", x_grouped, w_grouped, n_runs),
                                   ("plain", x_plain, w_plain, 1)):
            samples = []
            for _ in range(repeats):
                start = time.perf_counter()
                F.conv2d(x, w, stride=2, padding=1, groups=groups).square().sum().backward()
                samples.append(time.perf_counter() - start)
            times[name] = float(np.median(samples))
        rows.append({"shape": f"{c_in}->16, {side}x{side}", **times})
    return rows


def bench_inr(n_runs: int, steps: int, alone_runs: int) -> dict:
    recipe = DigitsINR({"recipe": "digits_inr", "hidden": [32, 32], "w0": 30.0, "copies": 1,
                        "lr": 3e-4, "steps": steps, "checkpoints": [steps]})
    runs = [recipe.run(i, 0) for i in range(n_runs)]
    start = time.perf_counter()
    recipe.train(runs)
    vmapped = time.perf_counter() - start
    start = time.perf_counter()
    for r in runs[:alone_runs]:
        recipe.fit_alone(r)
    alone = (time.perf_counter() - start) / alone_runs * n_runs
    return {"vmapped_per_min": n_runs / vmapped * 60, "alone_per_min": n_runs / alone * 60,
            "ratio": alone / vmapped}


def bench_reading(n_models: int, batch: int, tmp: Path) -> dict:
    spec = ws.GraphSpec.from_module(SmallCNN())
    g = torch.Generator().manual_seed(0)
    params = torch.randn(n_models, spec.num_params, generator=g)
    ids = np.arange(n_models)
    ZooWriter(tmp / "zoo.h5").write(spec, params, {"run_id": ids, "seed": ids, "epoch": ids * 0,
                                                   "step": ids * 0})
    ZooWriter(tmp / "zoo.h5").finalize()
    folder = tmp / "pth"
    folder.mkdir()
    for i in range(n_models):
        # clone: a view would make torch.save write the whole [N, P] storage into each file
        state = {k: v.clone() for k, v in spec.unflatten(params[i]).items()}
        torch.save(state, folder / f"model_{i}.pth")
    rng = np.random.default_rng(0)
    random_batches = [rng.choice(n_models, batch, replace=False) for _ in range(n_models // batch)]

    zoo = Zoo(tmp / "zoo.h5")
    start = time.perf_counter()
    for s in range(0, n_models, batch):
        torch.from_numpy(zoo.params(np.arange(s, min(s + batch, n_models))))
    zoo_seq = n_models / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in random_batches:
        torch.from_numpy(zoo.params(b))
    zoo_rand = len(random_batches) * batch / (time.perf_counter() - start)

    def load(i):
        return spec.flatten(torch.load(folder / f"model_{i}.pth", weights_only=True))

    start = time.perf_counter()
    for s in range(0, n_models, batch):
        torch.stack([load(i) for i in range(s, min(s + batch, n_models))])
    pth_seq = n_models / (time.perf_counter() - start)
    start = time.perf_counter()
    for b in random_batches:
        torch.stack([load(i) for i in b])
    pth_rand = len(random_batches) * batch / (time.perf_counter() - start)
    return {"zoo_seq": zoo_seq, "zoo_rand": zoo_rand, "pth_seq": pth_seq, "pth_rand": pth_rand}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--alone-runs", type=int, default=4,
                        help="runs timed in the sequential loop (its time is per network)")
    parser.add_argument("--inrs", type=int, default=256)
    parser.add_argument("--inr-steps", type=int, default=300)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu",
                        help="where the CNN zoo trains (cpu, cuda); INRs and reading: the CPU")
    parser.add_argument("--parts", nargs="+", default=["cnn", "inr", "reading"],
                        choices=["cnn", "conv", "inr", "reading"])
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    gpu = f", GPU {torch.cuda.get_device_name()}" if device.type == "cuda" else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}{gpu}")
    if "cnn" in args.parts:
        t = bench_training(args.runs, args.epochs, args.alone_runs, device)
        print(f"(a) digits_cnn on {device}, {args.runs} runs x {args.epochs} epochs: vmap "
              f"{t['vmapped_per_min']:.1f} networks/min, sequential {t['alone_per_min']:.1f} "
              f"networks/min, ratio {t['ratio']:.1f}x; one network on all runs' minibatches "
              f"{t['floor_s']:.2f} s, so at most {t['bound']:.1f}x", flush=True)
    if "conv" in args.parts:
        print(f"(a) why: each convolution for {args.runs} networks, forward + backward, as one "
              f"grouped convolution (vmap) and as one plain convolution on {args.runs}x the "
              f"images (the floor)")
        for r in bench_convolutions(args.runs):
            print(f"    {r['shape']}: grouped {1e3 * r['grouped']:.3f} ms, plain "
                  f"{1e3 * r['plain']:.3f} ms, plain / grouped {r['plain'] / r['grouped']:.2f}",
                  flush=True)
    if "inr" in args.parts:
        t = bench_inr(args.inrs, args.inr_steps, args.alone_runs)
        print(f"(a) digits_inr, {args.inrs} SIRENs x {args.inr_steps} steps: vmap "
              f"{t['vmapped_per_min']:.0f} networks/min, sequential {t['alone_per_min']:.0f} "
              f"networks/min, ratio {t['ratio']:.1f}x", flush=True)
    if "reading" not in args.parts:
        return
    with tempfile.TemporaryDirectory() as tmp:
        r = bench_reading(args.models, args.batch, Path(tmp))
    print(f"(b) {args.models} Small CNNs, batches of {args.batch}: zoo {r['zoo_seq']:.0f} "
          f"models/s sequential, {r['zoo_rand']:.0f} random; .pth files {r['pth_seq']:.0f} "
          f"sequential, {r['pth_rand']:.0f} random; ratio {r['zoo_seq'] / r['pth_seq']:.1f}x "
          f"sequential, {r['zoo_rand'] / r['pth_rand']:.1f}x random")


if __name__ == "__main__":
    main()
