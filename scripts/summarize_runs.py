"""Summarise training runs: mean +- std of test metrics over seeds, as a Markdown table.

``python scripts/summarize_runs.py RUN_ROOT [RUN_ROOT ...]`` finds every run directory (one
with ``metrics.json`` and ``config.yaml``) below the roots and groups runs that differ only in
``trainer.seed``. Columns: task, model (with its size), augmentations, number of seeds, each
test metric, the number of test networks, and, for a zoo with a noise ceiling
(:mod:`weightspace.zoo.ceiling`), the ceiling over the test split and tau / ceiling.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf


def describe(cfg) -> tuple[str, str, str]:
    m = cfg.model
    size = f"{m.get('layers', '?')}x{m.get('hidden', '?')}"
    a = cfg.get("augment", {}) or {}
    augs = [name for name in ("symmetries",) if a.get(name)]
    augs += [f"{name} {a[name]}" for name in ("noise", "dropout", "mixup") if a.get(name)]
    extras = [f"Fourier {m.fourier}"] if m.get("fourier") else []
    if m.get("probes"):
        extras.append(f"{'val ' if m.get('probe_data') == 'val' else ''}probes {m.probes}")
    extras += [label for key, label in (("nonlinear", "MLP encoders"), ("stats", "statistics"),
                                        ("outputs", "output states")) if m.get(key)]
    if m.get("readout") == "layers":
        extras.append("per-layer readout")
    t = cfg.get("trainer", {}) or {}
    if t.get("schedule", "constant") != "constant":
        extras.append(f"{t.get('epochs')} epochs {t.schedule}")
    model = ", ".join([f"{m.name} {size}", *extras])
    zoo = Path(str(cfg.data.zoo)).stem if cfg.get("data") and cfg.data.get("zoo") else "?"
    return f"{cfg.task.name} ({cfg.task.target}) on {zoo}", model, ", ".join(augs) or "none"


def collect(roots: list[str]) -> dict:
    groups = defaultdict(list)
    for root in roots:
        for path in sorted(Path(root).rglob("metrics.json")):
            if not (path.parent / "config.yaml").exists():
                continue
            cfg = OmegaConf.load(path.parent / "config.yaml")
            results = json.loads(path.read_text())
            row = dict(results["test"])
            # the size of the test split and the zoo's noise ceiling over it (when measured)
            row["test_networks"] = results.get("networks", {}).get("test", float("nan"))
            if "noise_ceiling" in results:
                row["noise_ceiling"] = results["noise_ceiling"]
                if "kendall_tau" in row:
                    row["tau_over_ceiling"] = row["kendall_tau"] / results["noise_ceiling"]
            groups[describe(cfg)].append(row)
    return groups


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="+")
    args = parser.parse_args(argv)
    groups = collect(args.roots)
    if not groups:
        raise SystemExit(f"no run directories (metrics.json + config.yaml) below {args.roots}")
    metrics = sorted({k for runs in groups.values() for r in runs for k in r})
    print("| task | model | augmentation | seeds | " + " | ".join(metrics) + " |")
    print("|---" * (4 + len(metrics)) + "|")
    for (task, model, aug), runs in sorted(groups.items()):
        cells = []
        for k in metrics:
            values = np.array([r[k] for r in runs if k in r], dtype=float)
            cells.append(f"{values.mean():.3f} ± {values.std():.3f}" if values.size else "-")
        print(f"| {task} | {model} | {aug} | {len(runs)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
