"""Benchmark: training steps of GraphMetaNetwork (4 layers x hidden 64) on zoo weights.

For the networks of the ``digits_inr`` zoo (SIREN 2-32-32-1) and the ``digits_cnn`` zoo (the
Small CNN), batches of 64 and 256, side by side in one run:

- ours: rows ``[B, P]`` -> ``GraphBatcher`` (one gather, cached topology) -> GMN forward,
  MSE loss, backward, AdamW step;
- reference: the same rows -> one graph built per network by a Python loop over its layers
  (``scripts/bench_graph.py``'s ``per_layer_graph`` plus the node/edge type fields, as the
  published pipelines build them) -> ``Batch.from_data_list`` -> the same GMN step.

Prints training graphs per second, the ratio, and the memory a step holds for backward: the
bytes of the storages autograd saves (``saved_tensors_hooks``; device independent) and, on CUDA,
``max_memory_allocated``. Weight values do not change the cost, so the rows are those of
freshly initialised networks of each recipe's architecture.
Usage: ``python -m scripts.bench_metanet [--steps 5]``
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
from torch_geometric.data import Batch

import weightspace as ws
from scripts.bench_graph import per_layer_graph
from weightspace.data import GraphBatcher
from weightspace.nets import SIREN, SmallCNN
from weightspace.nn import GraphMetaNetwork

TOPOLOGY = ("node_type", "layer", "activation", "input_id", "output_id")


def rows_of(model_fn, n: int) -> tuple[ws.GraphSpec, torch.Tensor]:
    models = []
    for seed in range(n):
        torch.manual_seed(seed)
        models.append(model_fn())
    spec = ws.GraphSpec.from_module(models[0])
    return spec, torch.stack([spec.flatten(m) for m in models])


class SavedBytes:
    """Bytes of the distinct storages autograd saves for backward while the context is open
    (a tensor saved by several operations, or views of one storage, count once)."""

    def __init__(self):
        self.storages: dict[int, int] = {}

    @property
    def total(self) -> int:
        return sum(self.storages.values())

    def __enter__(self):
        def pack(t):
            storage = t.untyped_storage()
            self.storages[storage.data_ptr()] = storage.nbytes()
            return t

        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def bench(name, model_fn, batch, steps, device) -> dict:
    spec, vecs = rows_of(model_fn, batch)
    batcher = GraphBatcher(spec, device)
    template = batcher(vecs[:1])
    holder = model_fn()

    def ours(v):
        return batcher(v)

    def reference(v):
        graphs = []
        for row in v:
            holder.load_state_dict(spec.unflatten(row))
            g = per_layer_graph(spec, holder)
            for field in TOPOLOGY:
                setattr(g, field, getattr(template, field).cpu().clone())
            g.edge_type = template.edge_type.cpu().clone()
            graphs.append(g)
        return Batch.from_data_list(graphs).to(device)

    a, b = ours(vecs[:2]), reference(vecs[:2])
    assert torch.equal(a.edge_attr.cpu(), b.edge_attr.cpu()) and torch.equal(a.x.cpu(),
                                                                              b.x.cpu())
    torch.manual_seed(0)
    gmn = GraphMetaNetwork(spec.num_edge_features, hidden=64, layers=4, graph_out=1).to(device)
    opt = torch.optim.AdamW(gmn.parameters(), lr=1e-3)
    target = torch.zeros(batch, 1, device=device)

    def step(make_batch):
        with SavedBytes() as saved:
            loss = torch.nn.functional.mse_loss(gmn(make_batch(vecs)).graph, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return saved.total

    out = {"name": name, "batch": batch, "device": str(device)}
    for label, fn in (("ours", ours), ("reference", reference)):
        step(fn)  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            saved = step(fn)
            times.append(time.perf_counter() - start)
        out[label] = batch / statistics.median(times)
        out[f"{label}_saved_mb"] = saved / 2**20
        if device.type == "cuda":
            out[f"{label}_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    args = parser.parse_args(argv)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available()
                                       else [])
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}{gpu}; GMN 4 layers x hidden 64")
    print("| zoo networks | device | batch | ours (graphs/s) | per-graph + from_data_list "
          "(graphs/s) | ratio | saved for backward (MB) | CUDA peak (MB) |")
    print("|---|---|---|---|---|---|---|---|")
    archs = (("digits_inr (SIREN 2-32-32-1)", lambda: SIREN(2, (32, 32), 1, w0=30.0)),
             ("digits_cnn (Small CNN)", lambda: SmallCNN(1, 16, 10)))
    for name, fn in archs:
        for device in devices:
            for batch in args.batches:
                r = bench(name, copy.copy(fn), batch, args.steps, device)
                peak = f"{r['ours_peak_mb']:,.0f}" if "ours_peak_mb" in r else "-"
                print(f"| {name} | {device} | {batch} | {r['ours']:,.0f} | "
                      f"{r['reference']:,.0f} | {r['ours'] / r['reference']:.1f}x | "
                      f"{r['ours_saved_mb']:,.0f} | {peak} |", flush=True)


if __name__ == "__main__":
    main()
