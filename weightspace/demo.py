"""The quick-start demo: a model zoo, parameter graphs, and a metanetwork that reads weights.

Builds a small zoo of MLPs on MNIST-1D (generated offline; the zoo recipe, resumable), converts
networks to parameter graphs and back, and trains the graph metanetwork (GMN) and StatNN to
predict each network's test accuracy from its weights. It prints Kendall's tau of both beside
the zoo's noise ceiling (how well the zoo's own two test halves rank its networks) and the
standard error of tau over the test networks, and calls a lead smaller than that a tie.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from weightspace import nets
from weightspace.configs import compose
from weightspace.graph import EdgeType, GraphSpec, NodeType, from_graph, sample_symmetry, to_graph
from weightspace.training import run
from weightspace.zoo import Zoo
from weightspace.zoo.build import build_from_config


def _describe(name: str, model: nn.Module, inputs: tuple) -> None:
    start = time.perf_counter()
    graph = to_graph(model)
    elapsed = time.perf_counter() - start
    spec = GraphSpec.from_module(model)
    back = from_graph(graph, like=model)
    exact = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                   back.state_dict().values(), strict=True))
    t = sample_symmetry(spec, torch.Generator().manual_seed(0))
    moved = from_graph(spec.graph(t(spec.flatten(model)), t.buffers(spec.flatten_buffers(model))),
                       like=model)
    with torch.no_grad():
        drift = (moved(*inputs) - model(*inputs)).abs().max().item()
    node_kinds = ", ".join(f"{NodeType(int(k)).name.lower()} {int(c)}" for k, c in
                           zip(*torch.unique(graph.node_type, return_counts=True), strict=True))
    edge_kinds = ", ".join(f"{EdgeType(int(k)).name.lower()} {int(c)}" for k, c in
                           zip(*torch.unique(graph.edge_type, return_counts=True), strict=True))
    groups = [g for g in spec.permutation_groups if not g.fixed]
    print(f"\n{name}: {spec.num_params:,} parameters -> {graph.num_nodes:,} nodes, "
          f"{graph.num_edges:,} edges (edge features {graph.edge_attr.shape[1]}), "
          f"to_graph {elapsed * 1000:.0f} ms")
    print(f"  nodes: {node_kinds}")
    print(f"  edges: {edge_kinds}")
    print(f"  {len(groups)} permutable neuron groups; back to the network bit for bit: {exact}; "
          f"after a random symmetry the outputs move by {drift:.1e}")


def tau_standard_error(n: int) -> float:
    """The standard deviation of Kendall's tau between two unrelated rankings of ``n`` items,
    ``sqrt(2 (2n + 5) / (9 n (n - 1)))``: the scale below which two taus are not told apart."""
    return math.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1))) if n > 1 else float("inf")


# The GMN of the results tables (benchmarks/RESULTS.md), with 16 probe signals of the zoo's
# validation split read at every neuron; StatNN reads the network's outputs on the same ones.
GMN = ("model=gmn", "model.hidden=32", "model.layers=3", "model.nonlinear=true",
       "model.readout=layers", "model.stats=true", "model.outputs=true")
PROBES = ("model.probes=16", "model.probe_data=val")


def run_demo(runs: int = 400, epochs: int = 20, seed: int = 0, out: str = "outputs/demo",
             zoo_overrides: tuple[str, ...] = ()) -> int:
    """Graphs of real networks; a small mnist1d_mlp zoo; GMN vs StatNN predicting accuracy.

    The zoo's MLPs all have two hidden layers of 32 (one weight layout: every model reads every
    network), with both activations, three optimisers and sampled learning rates, weight decays,
    initialisations and training fractions; each run's final checkpoint is a target."""
    out_dir = Path(out)
    print(f"1. A zoo of MLPs on MNIST-1D (generated offline): {runs} runs, hyperparameters "
          f"sampled per run (resumes if {out_dir} already holds some)")
    zoo_path = build_from_config(compose("build_zoo", [
        "zoo=mnist1d_mlp", "zoo.depths=[2]", "zoo.widths=[32]", f"n_runs={runs}",
        f"seed={seed}", f"out={out_dir / 'mnist1d_mlp.h5'}",
        f"workers={min(2, os.cpu_count() or 1)}", *zoo_overrides]))
    zoo = Zoo(zoo_path)
    meta = zoo.metadata()
    last = meta["epoch"] == meta["epoch"].max()
    acc = meta["test_acc"][last]
    print(f"  {int(last.sum())} trained networks, test accuracy {acc.min():.2f} .. "
          f"{acc.max():.2f}")

    print("\n2. Networks as parameter graphs, and back")
    best = int(np.flatnonzero(last)[np.argmax(acc)])
    mlp = zoo.load(best, nets.MLP(40, [32, 32], 10, activation=str(meta["activation"][best])))
    torch.manual_seed(seed)
    signals, digits = torch.rand(4, 40), torch.rand(4, 1, 8, 8)
    for name, model, inputs in [
        (f"MLP from the zoo (test accuracy {acc.max():.3f})", mlp.eval(), (signals,)),
        ("ResNet with BatchNorm", nets.ResNet((1, 1), (16, 32), 1, 10, 8).eval(), (digits,)),
        ("Tiny ViT", nets.TinyViT(8, 2, 1, 32, 2, 4, 10).eval(), (digits,)),
    ]:
        _describe(name, model, inputs)

    print(f"\n3. Predicting each network's test accuracy from its weights ({epochs} epochs, "
          f"split by run 80/10/10, final checkpoints)")
    results = {}
    for name, model in (("GMN", GMN), ("StatNN", ("model=statnn",))):
        cfg = compose("train", [f"data.zoo={zoo_path}", *model, *PROBES,
                                f"+data.where.epoch=[{int(meta['epoch'].max())}]",
                                f"trainer.epochs={epochs}", "trainer.schedule=cosine",
                                f"trainer.seed={seed}"])
        results[name] = run(cfg, out_dir / "train" / name.lower())
    taus = {k: r["test"]["kendall_tau"] for k, r in results.items()}
    n = results["GMN"].get("networks", {}).get("test", 0)
    ceiling = results["GMN"].get("noise_ceiling")
    se = tau_standard_error(n)
    lead = taus["GMN"] - taus["StatNN"]
    verdict = (f"GMN ahead by {lead:.3f}" if lead > se else
               f"StatNN ahead by {-lead:.3f}" if -lead > se else
               f"a tie: the lead ({lead:+.3f}) is below the standard error")
    print(f"\n  test Kendall tau: GMN {taus['GMN']:.3f}  |  StatNN {taus['StatNN']:.3f}  "
          f"({n} test networks, standard error {se:.3f}"
          + (f"; noise ceiling {ceiling:.3f}" if ceiling is not None else "") + ")")
    print(f"  {verdict}. Larger zoos separate them: benchmarks/RESULTS.md (2,000 runs, 3 seeds)")
    print(f"  run directories (metrics, plots, TensorBoard, checkpoints): {out_dir / 'train'}")
    return 0
