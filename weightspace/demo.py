"""The quick-start demo: a model zoo, parameter graphs, and a metanetwork that reads weights.

Builds a small Small CNN Zoo on the embedded digits (the zoo recipe, resumable), converts
networks to parameter graphs and back, and trains the graph metanetwork (GMN) and StatNN to
predict each network's test accuracy from its weights, printing Kendall's tau of both.
"""

from __future__ import annotations

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


def run_demo(runs: int = 80, epochs: int = 20, seed: int = 0, out: str = "outputs/demo",
             zoo_overrides: tuple[str, ...] = ()) -> int:
    """Graphs of real networks; a small digits_cnn zoo; GMN vs StatNN predicting accuracy.

    The zoo's networks all use ReLU: the recipe's activation choice makes tanh networks a second
    architecture, and the metanetworks train on one architecture at a time."""
    out_dir = Path(out)
    print(f"1. A Small CNN Zoo on scikit-learn's digits: {runs} runs, hyperparameters sampled "
          f"per run (resumes if {out_dir} already holds some)")
    zoo_path = build_from_config(compose("build_zoo", [
        "zoo=digits_cnn", "zoo.activations=[relu]", f"n_runs={runs}", f"seed={seed}",
        f"out={out_dir / 'digits_cnn.h5'}", *zoo_overrides]))
    zoo = Zoo(zoo_path)
    acc = zoo.metadata()["test_acc"]
    print(f"  {len(zoo)} trained networks, test accuracy {acc.min():.2f} .. {acc.max():.2f}")

    print("\n2. Networks as parameter graphs, and back")
    cnn = zoo.load(int(np.argmax(acc)), nets.SmallCNN(1, 16, 10)).eval()
    torch.manual_seed(seed)
    digits = torch.rand(4, 1, 8, 8)
    for name, model, inputs in [
        (f"Small CNN from the zoo (test accuracy {acc.max():.3f})", cnn, (digits,)),
        ("ResNet with BatchNorm", nets.ResNet((1, 1), (16, 32), 1, 10, 8).eval(), (digits,)),
        ("Tiny ViT", nets.TinyViT(8, 2, 1, 32, 2, 4, 10).eval(), (digits,)),
    ]:
        _describe(name, model, inputs)

    print(f"\n3. Predicting each network's test accuracy from its weights ({epochs} epochs, "
          f"split by run 80/10/10)")
    taus = {}
    for model in ("gmn", "statnn"):
        cfg = compose("train", [f"data.zoo={zoo_path}", f"model={model}",
                                f"trainer.epochs={epochs}", f"trainer.seed={seed}"])
        results = run(cfg, out_dir / "train" / model)
        taus[model] = results["test"]["kendall_tau"]
    print(f"\n  test Kendall tau: GMN {taus['gmn']:.3f}  |  StatNN {taus['statnn']:.3f}")
    print(f"  run directories (metrics, plots, TensorBoard, checkpoints): {out_dir / 'train'}")
    return 0
