"""Benchmark: zoo -> batched parameter graphs, GraphBatcher vs. the published pipeline.

Side by side in one run, for the Small CNN (digits_cnn) and a small ViT, 64 networks a batch:

- ours: a batch of rows read from the zoo, then ``GraphBatcher`` (one gather, cached
  topology) -- on the CPU, and on CUDA when one is present;
- reference: the same rows, a graph built per network by a Python loop over its layers
  (``scripts/bench_graph.py``'s ``per_layer_graph``, checked there to build the identical
  graph), then ``Batch.from_data_list``.

Each is timed twice: reading every batch's rows from the zoo file (random rows), and from rows
already in memory (the batching step alone). Beside them the floor on the device: a copy of as
many bytes as one batch holds (``clone`` of its tensors). Prints graphs per second and the
ratios; ``ours / copy time`` is how many copies of the batch's bytes one batching costs.
Usage: ``python -m scripts.bench_batching``
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

import weightspace as ws
from scripts.bench_graph import per_layer_graph
from weightspace.data import GraphBatcher
from weightspace.nets import SmallCNN, TinyViT
from weightspace.zoo import Zoo, ZooWriter


def make_zoo(path: Path, model, n: int) -> Zoo:
    spec = ws.GraphSpec.from_module(model)
    params = torch.randn(n, spec.num_params, generator=torch.Generator().manual_seed(0))
    ids = np.arange(n)
    ZooWriter(path).write(spec, params, {"run_id": ids, "seed": ids, "epoch": ids * 0,
                                         "step": ids * 0})
    return Zoo(path)


def bench(name, model, n_models, batch, repeats, device, tmp) -> dict:
    zoo = make_zoo(tmp / f"{name}.h5", model, n_models)
    spec = zoo.spec(zoo.archs[0])
    batcher = GraphBatcher(spec, device)
    rng = np.random.default_rng(0)
    batches = [rng.choice(n_models, batch, replace=False) for _ in range(repeats)]

    in_memory = torch.from_numpy(zoo.params(np.arange(n_models)))

    def rows(idx, from_file):
        return torch.from_numpy(zoo.params(idx)) if from_file else in_memory[idx]

    def ours(idx, from_file):
        out = batcher(rows(idx, from_file))
        if out.x.is_cuda:
            torch.cuda.synchronize()
        return out

    holder = copy.deepcopy(model)

    def reference(idx, from_file):
        graphs = []
        for row in rows(idx, from_file):
            holder.load_state_dict(spec.unflatten(row))
            graphs.append(per_layer_graph(spec, holder))
        return Batch.from_data_list(graphs)

    a, b = ours(batches[0], True), reference(batches[0], True)
    assert torch.equal(a.edge_attr.cpu(), b.edge_attr) and torch.equal(a.x.cpu(), b.x)
    # The floor on the device: copying as many bytes as one batch holds, rows already there.
    held = [v for v in a.to_dict().values() if torch.is_tensor(v)]

    def raw_copy(idx, from_file):
        out = [v.clone() for v in held]
        if out[0].is_cuda:
            torch.cuda.synchronize()
        return out

    out = {"name": name, "device": str(device), "nodes": spec.num_nodes, "edges": spec.num_edges,
           "mb": sum(v.numel() * v.element_size() for v in held) / 2**20}
    for from_file in (True, False):
        for label, fn in (("ours", ours), ("reference", reference), ("copy", raw_copy)):
            t = []
            for idx in batches:
                start = time.perf_counter()
                fn(idx, from_file)
                t.append(time.perf_counter() - start)
            out[(label, from_file)] = batch / statistics.median(t)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, and cuda when present")
    args = parser.parse_args(argv)
    devices = args.devices or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}{gpu}")
    print("| model | device | graph nodes x edges | rows from | ours (graphs/s) | per-graph + "
          "from_data_list (graphs/s) | ratio | copy of the batch's bytes on the device "
          "(graphs/s) | ours / copy time |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in (("Small CNN", SmallCNN()),
                            ("ViT (16px, 2 blocks, 32 wide)", TinyViT(16, 4, 3, 32, 2, 4, 10))):
            for device in devices:
                r = bench(name, model, args.models, args.batch, args.repeats, device,
                          Path(tmp))
                for from_file, where in ((True, "zoo file"), (False, "memory")):
                    ours, ref = r[("ours", from_file)], r[("reference", from_file)]
                    floor = r[("copy", from_file)]
                    print(f"| {r['name']} | {r['device']} | {r['nodes']:,} x {r['edges']:,} | "
                          f"{where} | {ours:,.0f} | {ref:,.0f} | {ours / ref:.0f}x | "
                          f"{floor:,.0f} ({r['mb']:.1f} MB) | {floor / ours:.1f}x |",
                          flush=True)


if __name__ == "__main__":
    main()
