"""Benchmark: training steps of GraphMetaNetwork on zoo weights, two tables.

**Step** (``--table step``): the GMN's training step as it is against the same GMN as it was
at 368d2a0 (messages in edge order, aggregated by PyG's scatter-based ``MultiAggregation``;
same parameters, outputs checked equal), in float32 and with ``precision="bf16-mixed"``, for
the networks of four zoos (digits_inr SIREN, digits_cnn Small CNN, mnist1d_mlp 40-32-32-10,
mnist1d_cnn 1-D Small CNN), the default GMN (4 x 64) and the one of the results tables (3 x 32,
MLP encoders, per-layer readout), batch 64. Prints graphs/s, the ratio to the reference, and
the activations saved for backward per graph.

**Batching** (``--table batching``): for the networks of the ``digits_inr`` zoo (SIREN
2-32-32-1) and the ``digits_cnn`` zoo (the Small CNN), batches of 64 and 256, a 4 x 64 GMN,
side by side in one run:

- ours: rows ``[B, P]`` -> ``GraphBatcher`` (one gather, cached topology) -> GMN forward,
  MSE loss, backward, AdamW step;
- reference: the same rows -> one graph built per network by a Python loop over its layers
  (``scripts/bench_graph.py``'s ``per_layer_graph`` plus the node/edge type fields, as the
  published pipelines build them) -> ``Batch.from_data_list`` -> the same GMN step.

Prints training graphs per second, the ratio, and the memory a step holds for backward: the
bytes of the storages autograd saves (``saved_tensors_hooks``; device independent) and, on CUDA,
``max_memory_allocated``. Weight values do not change the cost, so the rows are those of
freshly initialised networks of each recipe's architecture.
Usage: ``python -m scripts.bench_metanet [--steps 5] [--table step batching] [--compile]``
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.nn.aggr import MultiAggregation

import weightspace as ws
from scripts.bench_graph import per_layer_graph
from weightspace.data import GraphBatcher
from weightspace.nets import MLP, SIREN, SmallCNN
from weightspace.nn import EdgeMPNNConv, GraphMetaNetwork

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


class ScatterPNAConv(EdgeMPNNConv):
    """The reference: :class:`EdgeMPNNConv` as at 368d2a0. Messages in edge order (edges,
    then their reverse copies), gathered per message, aggregated by PyG's scatter reductions."""

    def __init__(self, hidden: int, update_edges: bool = True):
        super().__init__(hidden, update_edges)
        self.pyg_aggr = MultiAggregation(["mean", "max", "min", "std"], mode="cat")

    def forward(self, h, edge_index, e, blocks=None):
        self.edge_index = edge_index
        return super().forward(h, edge_index, e, blocks)

    def aggregate(self, hn, en, blocks):
        edge_index = self.edge_index
        first = self.message_mlp[0]
        to_i, to_j, from_e = first.weight.split(self.hidden, 1)
        pe = F.linear(en, from_e, first.bias)
        fe = self.film(en)
        src, dst = torch.cat([edge_index, edge_index.flip(0)], 1)
        pe = torch.cat([pe, pe + F.linear(self.reverse, from_e)])
        gamma, beta = torch.cat([fe, fe + F.linear(self.reverse, self.film.weight)]).chunk(2, -1)
        pre = F.linear(hn, to_i)[dst] + F.linear(hn, to_j)[src] + pe
        messages = gamma * self.message_mlp[2](self.message_mlp[1](pre)) + beta
        return self.pyg_aggr(messages, dst, dim_size=hn.shape[0])


def as_reference(gmn: GraphMetaNetwork) -> GraphMetaNetwork:
    """A copy of ``gmn`` (same parameters) whose blocks aggregate as :class:`ScatterPNAConv`."""
    ref = copy.deepcopy(gmn)
    for i, conv in enumerate(gmn.convs):
        ref.convs[i] = ScatterPNAConv(conv.hidden, conv.edge_mlp is not None)
        ref.convs[i].load_state_dict(conv.state_dict(), strict=False)
    return ref


def timed_steps(gmn, make_batch, vecs, steps: int, device) -> tuple[float, int]:
    """Median seconds of a training step (MSE to zeros, AdamW) after one warm-up, and the
    bytes it saves for backward."""
    opt = torch.optim.AdamW(gmn.parameters(), lr=1e-3)
    target = torch.zeros(len(vecs), 1, device=device)

    def step():
        with SavedBytes() as saved:
            loss = F.mse_loss(gmn(make_batch(vecs)).graph, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return saved.total

    step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        saved = step()
        times.append(time.perf_counter() - start)
    return statistics.median(times), saved


GMN_CONFIGS = {  # name -> GraphMetaNetwork keyword arguments (graph_out=1 throughout)
    "4x64": dict(hidden=64, layers=4),
    "3x32 tables": dict(hidden=32, layers=3, nonlinear=True),  # + per-layer readout, below
}


def bench_step(name, model_fn, config, batch, steps, device, compiled: bool = False
               ) -> list[dict]:
    """Ours (fp32, bf16-mixed; with ``compiled`` also each under ``torch.compile``, its first
    steps, the compilation, not timed) against the reference GMN on one zoo's networks."""
    spec, vecs = rows_of(model_fn, batch)
    vecs = vecs.to(device)
    batcher = GraphBatcher(spec, device)
    kwargs = dict(GMN_CONFIGS[config])
    if config != "4x64":
        kwargs["readout_layers"] = int(spec.layer.max()) + 1
    torch.manual_seed(0)
    gmn = GraphMetaNetwork(spec.num_edge_features, graph_out=1, **kwargs).to(device)
    ref = as_reference(gmn)
    with torch.no_grad():  # the same function
        a, b = gmn(batcher(vecs)).graph, ref(batcher(vecs)).graph
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    rows = []
    seconds, saved = timed_steps(ref, batcher, vecs, steps, device)
    base = dict(name=name, config=config, device=str(device), batch=batch)
    rows.append(dict(base, variant="as at 368d2a0 (scatter PNA), fp32", graphs=batch / seconds,
                     saved=saved / batch))
    for precision in ("32", "bf16-mixed"):
        gmn.precision = precision
        seconds, saved = timed_steps(copy.deepcopy(gmn), batcher, vecs, steps, device)
        rows.append(dict(base, variant=f"ours, {'fp32' if precision == '32' else precision}",
                         graphs=batch / seconds, saved=saved / batch))
        if compiled:
            seconds, saved = timed_steps(torch.compile(copy.deepcopy(gmn)), batcher, vecs,
                                         steps, device)
            rows.append(dict(base, variant=f"{rows[-1]['variant']}, torch.compile",
                             graphs=batch / seconds, saved=saved / batch))
    return rows


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
    out = {"name": name, "batch": batch, "device": str(device)}
    for label, fn in (("ours", ours), ("reference", reference)):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds, saved = timed_steps(gmn, fn, vecs, steps, device)
        out[label] = batch / seconds
        out[f"{label}_saved_mb"] = saved / 2**20
        if device.type == "cuda":
            out[f"{label}_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


ZOO_NETWORKS = {  # the zoo -> one network of its recipe's architecture
    "digits_inr (SIREN 2-32-32-1)": lambda: SIREN(2, (32, 32), 1, w0=30.0),
    "digits_cnn (Small CNN)": lambda: SmallCNN(1, 16, 10),
    "mnist1d_mlp (MLP 40-32-32-10)": lambda: MLP(40, [32, 32], 10),
    "mnist1d_cnn (1-D Small CNN)": lambda: SmallCNN(1, 16, 10, dims=1, kernel=5, image_size=40),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--table", nargs="+", default=["step", "batching"],
                        choices=["step", "batching"])
    parser.add_argument("--zoos", nargs="+", default=[k.split()[0] for k in ZOO_NETWORKS],
                        choices=[k.split()[0] for k in ZOO_NETWORKS],
                        help="which zoos' networks (default: all four)")
    parser.add_argument("--step-batch", type=int, default=64, help="graphs a step (step table)")
    parser.add_argument("--compile", action="store_true",
                        help="step table: also each of ours under torch.compile")
    parser.add_argument("--devices", nargs="+", default=None,
                        help="default: cpu, and cuda when present")
    args = parser.parse_args(argv)
    devices = [torch.device(d) for d in args.devices or
               ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])]
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}{gpu}")
    if "step" in args.table:
        print("\n| zoo networks | GMN | device | step | graphs/s | ratio | saved per graph (MB) |")
        print("|---|---|---|---|---|---|---|")
        for name in [k for k in ZOO_NETWORKS if k.split()[0] in args.zoos]:
            for config in GMN_CONFIGS:
                for device in devices:
                    rows = bench_step(name, ZOO_NETWORKS[name], config, args.step_batch,
                                      args.steps, device, args.compile)
                    for r in rows:
                        print(f"| {name} | {config} | {device} | {r['variant']} | "
                              f"{r['graphs']:,.1f} | {r['graphs'] / rows[0]['graphs']:.2f}x | "
                              f"{r['saved'] / 2**20:.2f} |", flush=True)
    if "batching" in args.table:
        print("\nGMN 4 layers x hidden 64")
        print("| zoo networks | device | batch | ours (graphs/s) | per-graph + from_data_list "
              "(graphs/s) | ratio | saved for backward (MB) | CUDA peak (MB) |")
        print("|---|---|---|---|---|---|---|---|")
        for name in list(ZOO_NETWORKS)[:2]:
            for device in devices:
                for batch in args.batches:
                    r = bench(name, copy.copy(ZOO_NETWORKS[name]), batch, args.steps, device)
                    peak = f"{r['ours_peak_mb']:,.0f}" if "ours_peak_mb" in r else "-"
                    print(f"| {name} | {device} | {batch} | {r['ours']:,.0f} | "
                          f"{r['reference']:,.0f} | {r['ours'] / r['reference']:.1f}x | "
                          f"{r['ours_saved_mb']:,.0f} | {peak} |", flush=True)


if __name__ == "__main__":
    main()
