"""Which real architectures convert: torchvision's classification builders and timm models.

Each model is built with random weights (``weights=None`` / ``pretrained=False``; nothing is
downloaded) in a process of its own, under a time and memory limit, and judged:

- ``ok``: ``to_graph`` and ``from_graph`` give back every parameter and buffer bit for bit
  (``weightspace.testing.assert_round_trip``) and random symmetries of its spec leave the
  outputs as they were within ``--rtol`` (``assert_symmetries_preserve_function``, in float64);
- ``refused``: an ``UnsupportedModuleError`` naming the module and what is not read;
- ``misread``: the round trip or a symmetry changed something (must never happen);
- ``error``: any other exception; ``out of memory`` / ``timeout``: the limits were hit.

Needs torchvision (and timm for ``--source timm``) importable beside torch; the project's
own environment uses a CPU build of torch that the PyPI torchvision wheel cannot load beside,
so run it from an environment holding both. Usage::

    python scripts/check_breadth.py [--source torchvision timm] [--models resnet18 ...]
        [--size 64] [--draws 2] [--timeout 600] [--memory-gb 16] [--out breadth.json]
        [--graph-only channel|entry]   # only the first to_graph: its time and peak memory
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

# The torchvision classification builders the architecture-breadth issue names.
TORCHVISION = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
    "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201", "googlenet", "inception_v3",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0",
    "efficientnet_b1", "efficientnet_b2", "efficientnet_v2_s", "mnasnet0_5", "mnasnet0_75",
    "mnasnet1_0", "mnasnet1_3", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
    "shufflenet_v2_x1_5", "shufflenet_v2_x2_0", "squeezenet1_0", "squeezenet1_1",
    "regnet_x_400mf", "regnet_x_800mf", "regnet_y_400mf", "regnet_y_800mf", "convnext_tiny",
    "vit_b_16", "alexnet", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19",
    "vgg19_bn",
]
TIMM = ["resnet18", "vit_tiny_patch16_224", "deit_tiny_patch16_224", "convnext_atto",
        "efficientnet_b0", "mobilenetv3_small_100", "levit_128s", "poolformer_s12",
        "mixer_s32_224"]
# Input sizes a builder needs (others take --size): fixed-size position embeddings, and
# Inception's stem, which needs at least 75 px.
SIZES = {"vit_b_16": 224, "inception_v3": 299, "vit_tiny_patch16_224": 224,
         "deit_tiny_patch16_224": 224, "levit_128s": 224, "mixer_s32_224": 224}


def build(source: str, name: str):
    if source == "torchvision":
        import torchvision

        kwargs = {"aux_logits": False, "init_weights": True} if name in (
            "googlenet", "inception_v3") else {}
        return torchvision.models.get_model(name, weights=None, **kwargs)
    import timm

    return timm.create_model(name, pretrained=False)


def judge(source: str, name: str, size: int, rtol: float, draws: int = 2) -> dict:
    """Build one model and check it (the module docstring's verdicts)."""
    import torch

    from weightspace.errors import UnsupportedModuleError
    from weightspace.graph import spec as spec_module
    from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function

    torch.manual_seed(0)
    model = build(source, name).eval()
    for m in model.modules():  # running statistics other than the defaults
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    x = torch.randn(1, 3, SIZES.get(name, size), SIZES.get(name, size))
    params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    try:
        assert_round_trip(model, x)
    except UnsupportedModuleError as err:
        return {"verdict": "refused", "params": params, "why": str(err).split("\n")[0]}
    except AssertionError as err:
        return {"verdict": "misread", "params": params, "why": f"round trip: {err}"[:300]}
    # the float32 spec is not needed for the float64 check: free it (specs are cached)
    spec_module._SPECS_BY_FINGERPRINT.clear()
    spec_module._SPECS_BY_ID.clear()
    gc.collect()
    try:
        assert_symmetries_preserve_function(model, x, draws=draws, rtol=rtol)
    except AssertionError as err:
        return {"verdict": "misread", "params": params, "why": f"symmetry: {err}"[:300]}
    return {"verdict": "ok", "params": params, "seconds": round(time.perf_counter() - start, 1)}


def graph_only(source: str, name: str, size: int, kernel_edges: str) -> dict:
    """Build one model and time its first ``to_graph`` alone; the peak memory reported with
    it then counts the model, torch and the spec and graph, nothing of the checks."""
    import torch

    import weightspace as ws

    model = build(source, name).eval()
    x = torch.zeros(1, 3, SIZES.get(name, size), SIZES.get(name, size))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    graph = ws.to_graph(model, x, kernel_edges=kernel_edges)
    return {"verdict": "ok", "seconds": round(time.perf_counter() - start, 1),
            "edges": int(graph.num_edges), "before_gb": round(base, 2),
            "why": f"{kernel_edges} edges: {graph.num_edges:,} x {graph.edge_attr.shape[1]}; "
                   f"model and torch alone {base:.2f} GB"}


def _child(args) -> None:
    # the data segment (what tensors allocate), not the address space: a CUDA build of torch
    # maps gigabytes of libraries it never touches on a CPU
    limit = int(args.memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    try:
        result = (graph_only(args.source[0], args.models[0], args.size, args.graph_only)
                  if args.graph_only else
                  judge(args.source[0], args.models[0], args.size, args.rtol, args.draws))
    except MemoryError:
        result = {"verdict": "out of memory"}
    except Exception as err:  # noqa: BLE001 -- every other failure is a verdict of its own
        why = f"{type(err).__name__}: {err}".split("\n")[0][:300]
        result = {"verdict": "out of memory" if "can't allocate memory" in why else "error",
                  "why": why}
    result["peak_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print("RESULT " + json.dumps(result), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", nargs="+", default=["torchvision", "timm"],
                        choices=["torchvision", "timm"])
    parser.add_argument("--models", nargs="*", help="only these (default: the issue's list)")
    parser.add_argument("--size", type=int, default=64, help="input size where free")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--draws", type=int, default=2, help="random symmetries per model")
    parser.add_argument("--graph-only", choices=["channel", "entry"],
                        help="only time the first to_graph with these kernel edges (memory)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--memory-gb", type=float, default=16)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)
    rows = []
    for source in args.source:
        names = args.models or (TORCHVISION if source == "torchvision" else TIMM)
        for name in names:
            cmd = [sys.executable, __file__, "--child", "--source", source, "--models", name,
                   "--size", str(args.size), "--rtol", str(args.rtol), "--draws", str(args.draws),
                   "--memory-gb", str(args.memory_gb)]
            cmd += ["--graph-only", args.graph_only] if args.graph_only else []
            start = time.perf_counter()
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
                line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")),
                            None)
                result = json.loads(line[7:]) if line else {
                    "verdict": "error", "why": (done.stderr.strip().splitlines() or ["?"])[-1]}
            except subprocess.TimeoutExpired:
                result = {"verdict": "timeout"}
            result.update(source=source, model=name,
                          wall=round(time.perf_counter() - start, 1))
            rows.append(result)
            print(f"{source:12s} {name:28s} {result['verdict']:9s} {result['wall']:7.1f}s "
                  f"{result.get('peak_gb', float('nan')):6.2f} GB  {result.get('why', '')}",
                  flush=True)
    for source in args.source:
        mine = [r for r in rows if r["source"] == source]
        ok = sum(r["verdict"] == "ok" for r in mine)
        counts = {v: sum(r["verdict"] == v for r in mine) for v in sorted({r["verdict"]
                                                                          for r in mine})}
        print(f"{source}: {ok}/{len(mine)} convert ({ok / max(1, len(mine)):.0%}); {counts}")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
