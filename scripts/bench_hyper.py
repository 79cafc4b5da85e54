"""Benchmark: batched weight-set evaluation, and MIP against the proportional hypernetwork.

(a) ``batched_forward`` (vmap over ``functional_call``) against a Python loop calling the
    module once per weight set, on the same ``[B, P]`` weights and inputs, forward and
    forward + backward. Beside them, the arithmetic floor: one plain call of the module on all
    B x n inputs (the same multiply-adds with one weight set); loop time over that time bounds
    the ratio any batched evaluation can reach on this machine. Targets: the digits MLP of
    ``task=hyper_regularization`` and the Small CNN.
(s) ``--only sweep``: the same for a 2-64-64-1 MLP (an INR) over weight sets B and inputs n,
    with the chunks ``batched_forward`` chooses by itself and with all weight sets at once;
    beside them the per-weight-set loops of hyperlight and hypnettorch where installed
    (``pip install -e .[bench]``).
(b) ``task=hyper_regularization`` trained with a MIP hypernetwork and with the classic
    proportional one, same seeds, same batches, with Adam and with SGD + momentum: steps until
    the (smoothed) training loss reaches ``--target``, final loss, diverged runs; a
    convergence plot.

    python scripts/bench_hyper.py [--weight-sets 64] [--inputs 8 64 256] [--steps 600]
        [--seeds 3] [--plot PATH]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import time

import torch
from omegaconf import OmegaConf
from torch.func import functional_call

from weightspace.functional import batched_forward
from weightspace.graph import GraphSpec
from weightspace.hyper import HyperNetwork
from weightspace.nets import MLP, SmallCNN
from weightspace.tasks.hyper import HyperRegularization
from weightspace.training import make_optimizer


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (vmap tracing, allocator)
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def bench_batched(name: str, module: torch.nn.Module, x: torch.Tensor, weight_sets: int,
                  repeats: int):
    spec = GraphSpec.from_module(module)
    base = spec.flatten(module)
    flat = (base + 0.01 * torch.randn(weight_sets, base.numel())).to(x.device)
    flat.requires_grad_(True)
    module = module.to(x.device)
    names = spec.params

    def looped():
        return torch.stack([functional_call(module, names.unflatten(row), (x,)) for row in flat])

    def batched():
        return batched_forward(module, flat, x)

    # The floor of any batched evaluation: the same arithmetic with one weight set for all,
    # as one plain call on all B x n inputs (a dense matmul, no per-set work at all).
    many = x.repeat(weight_sets, *([1] * (x.dim() - 1)))

    def shared():
        return module(many)

    torch.testing.assert_close(batched(), looped(), rtol=1e-4, atol=1e-5)
    for mode in ("forward", "forward+backward"):
        def run(f, mode=mode):
            if mode == "forward":
                with torch.no_grad():
                    f()
            else:
                f().square().mean().backward()
                flat.grad = None

        t_loop, t_batch = timed(lambda: run(looped), repeats), timed(lambda: run(batched), repeats)
        t_shared = timed(lambda: run(shared), repeats)
        module.zero_grad(set_to_none=True)
        print(f"(a) {name} on {x.device.type}, {weight_sets} weight sets x {len(x)} inputs, "
              f"{mode}: "
              f"loop {1e3 * t_loop:.1f} ms, batched {1e3 * t_batch:.1f} ms, "
              f"ratio {t_loop / t_batch:.1f}x; one weight set on all inputs "
              f"{1e3 * t_shared:.1f} ms, so at most {t_loop / t_shared:.1f}x", flush=True)


PEERS = ("hyperlight", "hypnettorch")


def peer_loops(module: torch.nn.Module, flat: torch.Tensor, x: torch.Tensor) -> dict:
    """The per-weight-set evaluation of the published hypernetwork libraries, where installed
    (``pip install -e .[bench]``), for an MLP of ``Linear`` and ``ReLU`` layers: hyperlight's
    external parameters (``using_externals``) and hypnettorch's ``MLP.forward(x, weights=)``,
    each called once per row of ``flat``. Outputs are checked equal to the module's."""
    import copy

    names = GraphSpec.from_module(module).params
    linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    loops = {}
    try:
        import hyperlight

        twin = copy.deepcopy(module)
        hyper = hyperlight.hypernetize(
            twin, modules=[m for m in twin.modules() if isinstance(m, torch.nn.Linear)])

        def hyperlight_loop():
            outs = []
            for row in flat:
                with hyper.using_externals(names.unflatten(row)):
                    outs.append(hyper(x))
            return torch.stack(outs)

        loops["hyperlight"] = hyperlight_loop
    except ImportError:
        pass
    try:
        from hypnettorch.mnets import MLP as HypnetMLP

        net = HypnetMLP(n_in=linears[0].in_features, n_out=linears[-1].out_features,
                        hidden_layers=[m.out_features for m in linears[:-1]],
                        activation_fn=torch.nn.ReLU(), no_weights=True, verbose=False)
        net = net.to(x.device)

        def hypnettorch_loop():
            return torch.stack([net.forward(x, weights=list(names.unflatten(row).values()))
                                for row in flat])

        loops["hypnettorch"] = hypnettorch_loop
    except ImportError:
        pass
    with torch.no_grad():
        for name, loop in loops.items():
            torch.testing.assert_close(loop(), batched_forward(module, flat, x),
                                       rtol=1e-4, atol=1e-5, msg=f"{name} differs")
    return loops


def _sweep_point(module, flat: torch.Tensor, x: torch.Tensor, repeats: int) -> dict:
    """Forward + backward times of the loop, auto chunks, all at once and the peers' loops,
    for one (B, n), interleaved."""
    names = GraphSpec.from_module(module).params

    def step(f):
        f().square().mean().backward()
        flat.grad = None

    loop = [lambda: torch.stack([functional_call(module, names.unflatten(row), (x,))
                                 for row in flat])]
    runs = {"loop": lambda: step(loop[0]),
            "auto": lambda: step(lambda: batched_forward(module, flat, x)),
            "all": lambda: step(lambda: batched_forward(module, flat, x, chunk_size=None))}
    for name, peer in peer_loops(module, flat, x).items():
        runs[name] = lambda peer=peer: step(peer)
    return interleaved(runs, repeats)


def interleaved(runs: dict, repeats: int) -> dict:
    """Median seconds of each of ``runs``, timed in turn within each repeat (after one warm-up
    each), so that a machine whose speed drifts over seconds (a shared host) moves them all
    alike."""
    times = {name: [] for name in runs}
    for f in runs.values():
        f()
    for _ in range(repeats):
        for name, f in runs.items():
            begin = time.perf_counter()
            f()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - begin)
    return {name: statistics.median(t) for name, t in times.items()}


def bench_sweep(weight_sets: list[int], inputs: list[int], repeats: int, device: str):
    """batched_forward (chunks chosen automatically, and all weight sets at once) against the
    loop over weight sets, forward + backward, for a 2-64-64-1 MLP (an INR) over B and n."""
    from weightspace.functional.batched_sequential import auto_chunk, plan

    module = MLP(2, [64, 64], 1).to(device)
    base = GraphSpec.from_module(module).flatten(module).to(device)
    peers = [p for p in PEERS if importlib.util.find_spec(p)]
    print("| weight sets B | inputs n | loop fwd+bwd (ms) | batched, auto chunk (ms) | "
          "chunk, layout | ratio | batched, all at once (ms) | ratio |"
          + "".join(f" {p} loop (ms) | auto vs {p} |" for p in peers))
    print("|---|---|---|---|---|---|---|---|" + "---|---|" * len(peers))
    for B in weight_sets:
        for n in inputs:
            flat = (base + 0.01 * torch.randn(B, base.numel(), device=device)).requires_grad_()
            x = torch.rand(n, 2, device=device)
            t = _sweep_point(module, flat, x, repeats)
            chunk, columns = auto_chunk(plan(module, False), x, False, B)
            chunk = f"{chunk or B} {'columns' if columns else 'rows'}"
            print(f"| {B} | {n} | {1e3 * t['loop']:.1f} | {1e3 * t['auto']:.1f} | {chunk} | "
                  f"{t['loop'] / t['auto']:.2f}x | {1e3 * t['all']:.1f} | "
                  f"{t['loop'] / t['all']:.2f}x |"
                  + "".join(f" {1e3 * t[p]:.1f} | {t[p] / t['auto']:.2f}x |" for p in peers),
                  flush=True)


def smooth(values: list[float], alpha: float = 0.1) -> list[float]:
    out, s = [], None
    for v in values:
        s = v if s is None or not math.isfinite(s) else (1 - alpha) * s + alpha * v
        out.append(s)
    return out


def train_curve(task: HyperRegularization, mip: bool, optimizer: str, lr: float, seed: int,
                steps: int, batch_size: int) -> list[float]:
    torch.manual_seed(seed)
    target = task.target()  # the same target initialisation for both variants of a seed
    hypernet = HyperNetwork(target, 1, hidden=(64, 64), mip=mip)
    opt = make_optimizer(hypernet.parameters(), OmegaConf.create(
        {"optimizer": optimizer, "lr": lr, "weight_decay": 0.0, "momentum": 0.9}))
    data_gen = torch.Generator().manual_seed(seed)  # identical batches and conditions
    losses = []
    while len(losses) < steps:
        for batch in task.minibatches("train", batch_size, data_gen):
            loss = task.objective(hypernet, batch, data_gen)
            if not torch.isfinite(loss) or loss.item() > 1e4:
                return losses + [math.inf] * (steps - len(losses))  # diverged
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def bench_mip(steps: int, seeds: int, target_loss: float, plot: str | None):
    task = HyperRegularization("mlp", strength=0.01, conditions=8)
    setups = {"adam": 1e-3, "sgd": 0.05}
    curves = {}
    for optimizer, lr in setups.items():
        for mip in (True, False):
            for seed in range(seeds):
                curves[optimizer, mip, seed] = train_curve(task, mip, optimizer, lr, seed, steps,
                                                           64)
    print(f"(b) hyper_regularization (digits MLP 64-64-64-10, L2 strength 0.01, 8 conditions "
          f"per step, batch 64), {steps} steps, {seeds} seeds; target loss {target_loss} "
          f"(smoothed, EMA 0.1)")
    print("| optimizer | lr | hypernetwork | steps to target (per seed) | final loss "
          "(mean ± std) | diverged |")
    print("|---|---|---|---|---|---|")
    reached = {}
    for optimizer, lr in setups.items():
        for mip in (True, False):
            runs = [curves[optimizer, mip, s] for s in range(seeds)]
            hits = []
            for c in runs:
                sm = smooth(c)
                hits.append(next((i + 1 for i, v in enumerate(sm) if v <= target_loss), None))
            finals = [statistics.mean(c[-20:]) for c in runs if math.isfinite(c[-1])]
            diverged = sum(not math.isfinite(c[-1]) for c in runs)
            reached[optimizer, mip] = hits
            final = (f"{statistics.mean(finals):.3f} ± {statistics.pstdev(finals):.3f}"
                     if finals else "-")
            print(f"| {optimizer} | {lr:g} | {'MIP' if mip else 'proportional'} | "
                  f"{', '.join(str(h) if h else f'>{steps}' for h in hits)} | {final} | "
                  f"{diverged}/{seeds} |")
    for optimizer in setups:
        mip_steps = [h or steps for h in reached[optimizer, True]]
        plain_steps = [h or steps for h in reached[optimizer, False]]
        ratio = statistics.mean(mip_steps) / statistics.mean(plain_steps)
        bound = "" if all(reached[optimizer, False]) else " (at most: some proportional runs " \
                                                           "never reached it)"
        print(f"(b) {optimizer}: MIP needs {ratio:.2f}x the steps of the proportional "
              f"hypernetwork to reach {target_loss}{bound}")
    if plot:
        _plot(curves, setups, seeds, steps, target_loss, plot)
        print(f"plot: {plot}")


def _plot(curves, setups, seeds, steps, target_loss, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(setups), figsize=(5 * len(setups), 3.6), squeeze=False)
    for ax, (optimizer, lr) in zip(axes[0], setups.items(), strict=True):
        for mip, color in ((True, "tab:blue"), (False, "tab:orange")):
            for seed in range(seeds):
                sm = smooth(curves[optimizer, mip, seed])
                ax.plot(range(1, len(sm) + 1), sm, color=color, alpha=0.8, lw=1,
                        label=("MIP" if mip else "proportional") if seed == 0 else None)
        ax.axhline(target_loss, color="gray", ls="--", lw=0.8, label="target")
        ax.set(xlabel="step", ylabel="training loss (EMA)", yscale="log",
               title=f"{optimizer} (lr {lr:g}), {seeds} seeds")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--weight-sets", type=int, default=64)
    p.add_argument("--inputs", type=int, nargs="+", default=[8, 64, 256],
                   help="images per weight set (a minibatch shared by all weight sets)")
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--target", type=float, default=0.6)
    p.add_argument("--plot", default=None, help="where to save the convergence plot (PNG)")
    p.add_argument("--only", choices=("batched", "mip", "sweep"), default=None)
    p.add_argument("--sweep-sets", type=int, nargs="+", default=[16, 64, 256])
    p.add_argument("--sweep-inputs", type=int, nargs="+", default=[64, 256, 1024, 4096])
    p.add_argument("--device", default="cpu", help="where (a) runs: cpu or cuda")
    a = p.parse_args()
    torch.manual_seed(0)
    if a.only in (None, "batched"):
        task = HyperRegularization("mlp")
        for n in a.inputs:
            x = task.data["train"][0][:n].to(a.device)
            bench_batched("digits MLP 64-64-64-10", task.target().eval(), x, a.weight_sets,
                          a.repeats)
            bench_batched("Small CNN (3x16 channels)", SmallCNN().eval(), x, a.weight_sets,
                          a.repeats)
    if a.only in (None, "sweep"):
        bench_sweep(a.sweep_sets, a.sweep_inputs, a.repeats, a.device)
    if a.only in (None, "mip"):
        bench_mip(a.steps, a.seeds, a.target, a.plot)


if __name__ == "__main__":
    main()
