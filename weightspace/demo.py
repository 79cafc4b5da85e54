"""The quick-start demo: real networks become parameter graphs and come back exactly."""

from __future__ import annotations

import time

import torch
from torch import nn

from weightspace.graph import EdgeType, GraphSpec, NodeType, from_graph, sample_symmetry, to_graph


def _train_digits_cnn(epochs: int, seed: int) -> tuple[nn.Module, float]:
    from model_zoo.datasets import load_digits_splits
    from model_zoo.nets import SmallCNN

    torch.manual_seed(seed)
    splits = load_digits_splits(seed, (0.75, 0.0, 0.25))
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    model = SmallCNN(in_channels=1, channels=16, classes=10)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(y_train)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(x_test).argmax(1) == y_test).float().mean().item()
    return model, acc


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


def run_demo(epochs: int = 15, seed: int = 0) -> int:
    from model_zoo import nets

    print("Training the Small CNN Zoo network on scikit-learn's digits ...")
    cnn, acc = _train_digits_cnn(epochs, seed)
    print(f"  test accuracy {acc:.3f}")
    torch.manual_seed(seed)
    digits = torch.rand(4, 1, 8, 8)
    for name, model, inputs in [
        ("Small CNN (trained on digits)", cnn, (digits,)),
        ("SIREN 2-32-32-1", nets.SIREN(), (torch.rand(16, 2),)),
        ("ResNet with BatchNorm", nets.ResNet((1, 1), (16, 32), 1, 10, 8).eval(), (digits,)),
        ("Tiny ViT", nets.TinyViT(8, 2, 1, 32, 2, 4, 10).eval(), (digits,)),
    ]:
        _describe(name, model, inputs)
    return 0
