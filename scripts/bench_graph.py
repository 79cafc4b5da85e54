"""Benchmark: network -> parameter graph, GraphSpec gathers vs. building per layer per network.

Measures, side by side in one run, for ResNet-18 (CIFAR, 11.2M parameters) and ViT-Tiny/16
(5.7M parameters):

- the first ``to_graph`` of an architecture (tracing and building the spec);
- each further network of the same architecture (one flatten and one gather);
- the reference way of published repositories, in two forms:

  (a) *same graph*: for every network, a Python loop over its layers that builds each layer's
      ``edge_index`` and padded kernel features from the layer's weights and concatenates
      them into a PyG ``Data`` (vectorised within a layer). It is checked to produce the very
      same graph as ``to_graph``, so both sides do exactly the same job;
  (b) *published format* (Graph Metanetworks' conversion): one edge per kernel entry whose
      feature row ``[weight, layer, edge type, kernel row, kernel column, 0]`` is rebuilt for
      every network, against ours in ``kernel_edges="entry"`` mode, where the layer, type and
      position live in tensors shared by all networks of the architecture.

Prints median times and the ratio reference / ours; and, for a ResNet-50 (torchvision's
layout, 224 px), the first ``to_graph`` against one fx trace plus one forward pass. Usage::

    python scripts/bench_graph.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F
from torch_geometric.data import Data

import weightspace as ws
from weightspace import nets
from weightspace.graph import spec as spec_module
from weightspace.graph.blocks import NODE_DEFAULTS, DenseEdges, DiagEdges, canvas_positions


def _scalar_edges(block, tensors, n_src):
    """Diagonal edges (a norm's scale, or identity) or constant within-head attention edges."""
    if isinstance(block, DiagEdges):
        src = dst = torch.arange(n_src)
        values = (torch.ones(n_src) if block.param is None else
                  tensors[block.param].reshape(-1)[block.offset : block.offset + n_src])
        return src, dst, values
    h = n_src // block.heads
    a = torch.arange(n_src)
    src = a.repeat_interleave(h)
    dst = (a // h * h).repeat_interleave(h) + torch.arange(h).repeat(n_src)
    return src, dst, torch.ones(src.numel())


def per_layer_graph(spec, model) -> Data:
    """The published way: per network, loop over layers and build each one's edges."""
    tensors = dict(model.named_parameters())
    tensors.update(model.named_buffers())
    sets = spec.blueprint.sets
    KH, KW = spec.canvas
    F_ = spec.num_edge_features
    centre = int(canvas_positions((1, 1), spec.canvas)[0])
    x = torch.tensor([0.0 if d == "zero" else 1.0 for d in NODE_DEFAULTS]).repeat(
        spec.num_nodes, 1)
    for slot in spec.blueprint.node_slots:
        o, n = spec.set_offset[slot.set], sets[slot.set].size
        x[o : o + n, slot.slot] = tensors[slot.tensor].reshape(-1)[slot.offset : slot.offset + n]
    src_all, dst_all, attr_all, pos_all = [], [], [], []
    for block in spec.blueprint.edges:
        s0, d0 = spec.set_offset[block.src], spec.set_offset[block.dst]
        n_src, n_dst = sets[block.src].size, sets[block.dst].size
        if isinstance(block, DenseEdges):
            kh, kw = block.kernel
            w = tensors[block.param].reshape(-1)
            if block.transposed:
                w = w[block.offset : block.offset + n_src * n_dst].view(n_src, n_dst)
                src, dst = torch.meshgrid(torch.arange(n_src), torch.arange(n_dst), indexing="ij")
                kernels = w.reshape(-1, 1, 1)
            else:
                in_g, out_g = n_src // block.groups, n_dst // block.groups
                w = w[block.offset : block.offset + n_dst * in_g * kh * kw].view(
                    n_dst, in_g, kh, kw)
                dst, j = torch.meshgrid(torch.arange(n_dst), torch.arange(in_g), indexing="ij")
                src = (dst // out_g) * in_g + j
                kernels = w.reshape(-1, kh, kw)
            src, dst = src.reshape(-1), dst.reshape(-1)
            if kh > KH or kw > KW:  # one edge per kernel entry, numbered 1 + index
                K = kh * kw
                attr = torch.zeros(src.numel() * K, F_)
                attr[:, centre] = kernels.reshape(-1)
                pos = (1 + torch.arange(K)).repeat(src.numel())
                src, dst = src.repeat_interleave(K), dst.repeat_interleave(K)
            else:
                top, left = (KH - kh) // 2, (KW - kw) // 2
                attr = F.pad(kernels, (left, KW - kw - left, top, KH - kh - top)).reshape(-1, F_)
                pos = torch.zeros_like(src)
        else:
            src, dst, values = _scalar_edges(block, tensors, n_src)
            attr = torch.zeros(src.numel(), F_)
            attr[:, centre] = values
            pos = torch.zeros_like(src)
        src_all.append(src + s0)
        dst_all.append(dst + d0)
        attr_all.append(attr)
        pos_all.append(pos)
    return Data(x=x, edge_index=torch.stack([torch.cat(src_all), torch.cat(dst_all)]),
                edge_attr=torch.cat(attr_all), edge_pos=torch.cat(pos_all),
                num_nodes=spec.num_nodes)


def published_format_graph(spec, model) -> Data:
    """(b): per network and per layer, one edge per kernel entry with a 6-column feature."""
    tensors = dict(model.named_parameters())
    sets = spec.blueprint.sets
    depth = spec.layer[torch.tensor(spec.set_offset)]
    x_parts, src_all, dst_all, attr_all = [], [], [], []
    for i, s in enumerate(sets):
        feat = torch.zeros(s.size, 3)
        feat[:, 1] = float(depth[i])
        feat[:, 2] = float(s.node_type)
        x_parts.append(feat)
    for slot in spec.blueprint.node_slots:
        if slot.slot == 0 and not slot.is_buffer:
            x_parts[slot.set][:, 0] = tensors[slot.tensor].reshape(-1)[
                slot.offset : slot.offset + sets[slot.set].size]
    for block in spec.blueprint.edges:
        s0, d0 = spec.set_offset[block.src], spec.set_offset[block.dst]
        n_src, n_dst = sets[block.src].size, sets[block.dst].size
        if isinstance(block, DenseEdges) and not block.transposed:
            kh, kw = block.kernel
            in_g, out_g = n_src // block.groups, n_dst // block.groups
            w = tensors[block.param].reshape(-1)[
                block.offset : block.offset + n_dst * in_g * kh * kw].view(n_dst, in_g, kh, kw)
            o, j, r, c = torch.meshgrid(torch.arange(n_dst), torch.arange(in_g),
                                        torch.arange(kh), torch.arange(kw), indexing="ij")
            src, dst = ((o // out_g) * in_g + j).reshape(-1), o.reshape(-1)
            rows, cols, values = r.reshape(-1), c.reshape(-1), w.reshape(-1)
        elif isinstance(block, DenseEdges):
            w = tensors[block.param].reshape(-1)[block.offset : block.offset + n_src * n_dst]
            i, o = torch.meshgrid(torch.arange(n_src), torch.arange(n_dst), indexing="ij")
            src, dst, values = i.reshape(-1), o.reshape(-1), w
            rows = cols = torch.zeros_like(src)
        else:
            src, dst, values = _scalar_edges(block, tensors, n_src)
            rows = cols = torch.zeros_like(src)
        attr = torch.stack([values, torch.full_like(values, float(depth[block.dst])),
                            torch.full_like(values, float(block.edge_type)), rows.float(),
                            cols.float(), torch.zeros_like(values)], dim=1)
        src_all.append(src + s0)
        dst_all.append(dst + d0)
        attr_all.append(attr)
    return Data(x=torch.cat(x_parts),
                edge_index=torch.stack([torch.cat(src_all), torch.cat(dst_all)]),
                edge_attr=torch.cat(attr_all), num_nodes=spec.num_nodes)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _forget_specs():
    spec_module._SPECS_BY_FINGERPRINT.clear()
    spec_module._SPECS_BY_ID.clear()


def bench(name: str, make, inputs, repeats: int) -> dict:
    models = [make() for _ in range(3)]
    first = []
    for _ in range(max(3, repeats // 2)):
        _forget_specs()
        start = time.perf_counter()
        ws.to_graph(models[0], inputs)
        first.append(time.perf_counter() - start)
    spec = ws.GraphSpec.from_module(models[0], inputs)
    ours = per_layer_graph(spec, models[1])
    mine = ws.to_graph(models[1], inputs)
    assert torch.equal(ours.edge_index, mine.edge_index)
    assert torch.equal(ours.edge_attr, mine.edge_attr) and torch.equal(ours.x, mine.x)
    it = iter(range(10**9))
    further = _median_ms(lambda: ws.to_graph(models[next(it) % 3], inputs), repeats)
    reference = _median_ms(lambda: per_layer_graph(spec, models[next(it) % 3]), repeats)
    entry_spec = ws.GraphSpec.from_module(models[0], inputs, kernel_edges="entry")
    published = published_format_graph(entry_spec, models[1])
    assert published.num_edges == entry_spec.num_edges
    entry = _median_ms(lambda: ws.to_graph(models[next(it) % 3], inputs, kernel_edges="entry"),
                       repeats)
    published_ms = _median_ms(lambda: published_format_graph(entry_spec, models[next(it) % 3]),
                              repeats)
    return {
        "name": name, "params": spec.num_params, "nodes": spec.num_nodes,
        "edges": spec.num_edges, "features": spec.num_edge_features,
        "first_s": statistics.median(first), "further_ms": further,
        "reference_ms": reference, "ratio": reference / further,
        "entry_edges": entry_spec.num_edges, "entry_ms": entry,
        "published_ms": published_ms, "published_ratio": published_ms / entry,
    }


class Bottleneck(torch.nn.Module):
    """torchvision's ResNet-50 block (1x1, 3x3 with the stride, 1x1 x4; projection when the
    shape changes), written out here because torchvision does not import beside the CPU torch
    build this project uses."""

    def __init__(self, c_in: int, width: int, stride: int):
        super().__init__()
        nn_ = torch.nn
        self.conv1, self.bn1 = nn_.Conv2d(c_in, width, 1, bias=False), nn_.BatchNorm2d(width)
        self.conv2 = nn_.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn_.BatchNorm2d(width)
        self.conv3 = nn_.Conv2d(width, 4 * width, 1, bias=False)
        self.bn3 = nn_.BatchNorm2d(4 * width)
        self.downsample = nn_.Sequential(
            nn_.Conv2d(c_in, 4 * width, 1, stride, bias=False), nn_.BatchNorm2d(4 * width)
        ) if stride != 1 or c_in != 4 * width else None

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def resnet50() -> torch.nn.Module:
    """ResNet-50 (ImageNet layout, 25.6M parameters), as torchvision builds it."""
    nn_ = torch.nn
    layers, c_in = [], 64
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for b in range(blocks):
            layers.append(Bottleneck(c_in, width, stride if b == 0 else 1))
            c_in = 4 * width
    return nn_.Sequential(nn_.Conv2d(3, 64, 7, 2, 3, bias=False), nn_.BatchNorm2d(64),
                          nn_.ReLU(), nn_.MaxPool2d(3, 2, 1), *layers,
                          nn_.AdaptiveAvgPool2d(1), nn_.Flatten(), nn_.Linear(2048, 1000))


def first_call(name: str, make, inputs, repeats: int) -> dict:
    """The first ``to_graph`` of an architecture against what any reader of it must do: one
    ``torch.fx`` trace and one forward pass."""
    model = make().eval()
    ours, floor = [], []
    for _ in range(repeats):
        _forget_specs()
        start = time.perf_counter()
        ws.to_graph(model, inputs)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch.fx.symbolic_trace(model)
        with torch.no_grad():
            model(inputs)
        floor.append(time.perf_counter() - start)
    spec = ws.GraphSpec.from_module(model, inputs)
    return {"name": name, "params": spec.num_params, "edges": spec.num_edges,
            "first_s": statistics.median(ours), "floor_s": statistics.median(floor)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows = [
        bench("ResNet-18 (CIFAR)", nets.resnet18_cifar, torch.zeros(1, 3, 32, 32), args.repeats),
        bench("ViT-Tiny/16 (224)", nets.vit_tiny, torch.zeros(1, 3, 224, 224), args.repeats),
    ]
    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
               f"threads, torch {torch.__version__}")
    print(f"machine: {machine}")
    header = ("| model | params | nodes | edges x features | first call (s) | further network "
              "(ms) | per-layer reference (ms) | ratio |")
    print(header)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['params']:,} | {r['nodes']:,} | {r['edges']:,} x "
              f"{r['features']} | {r['first_s']:.2f} | {r['further_ms']:.1f} | "
              f"{r['reference_ms']:.1f} | {r['ratio']:.1f}x |")
    print()
    print("| model | edges (one per kernel entry) | ours, entry mode (ms) | published format, "
          "per layer (ms) | ratio |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['entry_edges']:,} | {r['entry_ms']:.1f} | "
              f"{r['published_ms']:.1f} | {r['published_ratio']:.1f}x |")
    print()
    firsts = [first_call("ResNet-50 (224)", resnet50, torch.zeros(1, 3, 224, 224),
                         max(3, args.repeats // 2))]
    print("| model | params | edges | first to_graph (s) | fx trace + one forward (s) | "
          "ratio |")
    print("|---|---|---|---|---|---|")
    for r in firsts:
        print(f"| {r['name']} | {r['params']:,} | {r['edges']:,} | {r['first_s']:.2f} | "
              f"{r['floor_s']:.2f} | {r['first_s'] / r['floor_s']:.1f}x |")


if __name__ == "__main__":
    main()
