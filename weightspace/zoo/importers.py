"""Importers of published zoos into weightspace zoo files.

Small CNN Zoo (Unterthiner et al. 2020), a folder holding

- ``weights.npy``: ``[N, P]`` float32, every network flattened in TensorFlow order;
- ``layout.csv``: one row per variable, in order, with at least ``varname``, ``start_idx``,
  ``end_idx`` and ``shape`` (e.g. ``(3, 3, 1, 16)``); conv kernels are ``(kh, kw, in, out)``,
  dense kernels ``(in, out)``;
- ``metrics.csv`` or ``metrics.csv.gz``: one row per network (same order as the weights),
  metrics and hyperparameters; rows sharing ``modeldir`` are checkpoints of one run.

Each network becomes a :class:`~weightspace.nets.SmallCNN` (kernels transposed to PyTorch's
``(out, in, kh, kw)`` and ``(out, in)``), grouped by ``config.activation`` when present.

DWSNets / NFN INR folders: one ``.pth`` state dict per SIREN and a splits JSON
``{"train": {"path": [...], "label": [...]}, "val": ..., "test": ...}``; each file is read
with ``torch.load(weights_only=True)`` and its tensors, in order, fill a
:class:`~weightspace.nets.SIREN` of the same widths.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from weightspace.graph.spec import GraphSpec
from weightspace.nets import SIREN, SmallCNN
from weightspace.safe_load import load_tensors
from weightspace.zoo.writer import ZooWriter


def _read_csv(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        return list(csv.DictReader(f))


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", text))


def _column(values: list[str]) -> np.ndarray:
    try:
        return np.array([float(v) if v not in ("", "nan", "None") else np.nan for v in values])
    except ValueError:
        return np.array(values, dtype=object)


def _to_torch_layout(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A TensorFlow variable in PyTorch's layout (kernels transposed, biases as they are)."""
    t = array.reshape(shape)
    if len(shape) == 4:  # conv kernel (kh, kw, in, out) -> (out, in, kh, kw)
        return t.transpose(3, 2, 0, 1)
    if len(shape) == 2:  # dense kernel (in, out) -> (out, in)
        return t.T
    return t


def import_small_cnn_zoo(folder: str | os.PathLike, out: str | os.PathLike,
                         image_size: int | None = None) -> Path:
    """Convert a Small CNN Zoo folder into a zoo file at ``out`` (see the module docstring)."""
    folder = Path(folder)
    weights_path = folder / "weights.npy"
    metrics_path = next((p for p in (folder / "metrics.csv", folder / "metrics.csv.gz")
                         if p.exists()), None)
    for path, what in ((weights_path, "weights.npy"), (folder / "layout.csv", "layout.csv"),
                       (metrics_path, "metrics.csv(.gz)")):
        if path is None or not path.exists():
            raise FileNotFoundError(f"{folder}: no {what}")
    weights = np.load(weights_path, mmap_mode="r", allow_pickle=False)
    layout = _read_csv(folder / "layout.csv")
    metrics = _read_csv(metrics_path)
    if weights.ndim != 2 or len(metrics) != weights.shape[0]:
        raise ValueError(f"{folder}: weights.npy has shape {weights.shape} but metrics has "
                         f"{len(metrics)} rows")
    variables = [(row["varname"], int(row["start_idx"]), int(row["end_idx"]),
                  _shape(row["shape"])) for row in layout]
    for name, start, end, shape in variables:
        if end - start != int(np.prod(shape)) or end > weights.shape[1]:
            raise ValueError(f"{folder}/layout.csv: {name} spans {start}..{end} of "
                             f"{weights.shape[1]} but has shape {shape}")
    kernels = [v for v in variables if len(v[3]) == 4]
    dense = [v for v in variables if len(v[3]) == 2]
    if len(kernels) != 3 or len(dense) != 1:
        raise ValueError(f"{folder}/layout.csv: expected 3 conv kernels and 1 dense kernel (the "
                         f"Small CNN), found {len(kernels)} and {len(dense)}")
    in_channels, channels, classes = kernels[0][3][2], kernels[0][3][3], dense[0][3][1]
    image_size = image_size or (28 if in_channels == 1 else 32)

    columns = {name: _column([r[name] for r in metrics]) for name in metrics[0]}
    run_key = columns.get("modeldir", np.arange(len(metrics)).astype(object))
    _, run_id = np.unique(run_key.astype(str), return_inverse=True)
    step = columns.get("step", columns.get("epoch", np.zeros(len(metrics))))
    activation = columns.get("config.activation", np.array(["relu"] * len(metrics), object))
    writer = ZooWriter(out, {"name": "small_cnn_zoo", "imported_from": folder.name})
    for act in sorted(set(map(str, activation))):
        rows = np.nonzero(activation.astype(str) == act)[0]
        module = {"relu": nn.ReLU, "tanh": nn.Tanh}.get(act)
        if module is None:
            raise ValueError(f"{folder}: activation {act!r} is not read (relu, tanh)")
        model = SmallCNN(in_channels, channels, classes, module, image_size=image_size)
        spec = GraphSpec.from_module(model)
        targets = [t for t in spec.params.slots]  # conv1 w, b, conv2 w, b, conv3 w, b, head w, b
        if len(targets) != len(variables):
            raise ValueError(f"{folder}/layout.csv has {len(variables)} variables, the Small CNN "
                             f"{len(targets)}")
        block = np.asarray(weights[rows], dtype=np.float32)
        params = np.empty((rows.size, spec.num_params), dtype=np.float32)
        for (name, start, end, shape), slot in zip(variables, targets, strict=True):
            converted = np.stack([_to_torch_layout(w[start:end], shape) for w in block])
            if converted.shape[1:] != slot.shape:
                raise ValueError(f"{folder}/layout.csv: {name} of shape {shape} does not fit "
                                 f"{slot.name} {list(slot.shape)}")
            params[:, slot.offset : slot.stop] = converted.reshape(rows.size, -1)
        meta = {name: values[rows] for name, values in columns.items()}
        meta.update({"run_id": run_id[rows], "seed": np.zeros(rows.size), "step": step[rows],
                     "epoch": columns.get("epoch", step)[rows]})
        writer.write(spec, params, {k.replace("/", "_"): v for k, v in meta.items()})
    return writer.finalize()


def import_inr_folder(splits_json: str | os.PathLike, out: str | os.PathLike,
                      w0: float = 30.0) -> Path:
    """Convert a DWSNets/NFN INR dataset (one .pth per SIREN, a splits JSON) into a zoo."""
    splits_json = Path(splits_json)
    splits = json.loads(splits_json.read_text())
    paths, labels, names = [], [], []
    for split, entries in splits.items():
        for path, label in zip(entries["path"], entries["label"], strict=True):
            paths.append(path)
            labels.append(label)
            names.append(split)
    if not paths:
        raise ValueError(f"{splits_json}: no INRs listed")
    spec, rows = None, []
    for i, path in enumerate(paths):
        full = Path(path) if Path(path).is_absolute() else splits_json.parent / path
        try:
            state = load_tensors(full)
        except (OSError, ValueError) as err:
            raise ValueError(f"INR {i}: {err}") from None
        tensors = [t for t in state.values() if isinstance(t, torch.Tensor)]
        if spec is None:
            widths = [tensors[0].shape[1]] + [t.shape[0] for t in tensors[0::2]]
            model = SIREN(widths[0], tuple(widths[1:-1]), widths[-1], w0=w0)
            spec = GraphSpec.from_module(model)
        if [tuple(t.shape) for t in tensors] != [s.shape for s in spec.params.slots]:
            raise ValueError(f"{full} (INR {i}): tensor shapes "
                             f"{[tuple(t.shape) for t in tensors]} differ from the first INR's")
        rows.append(torch.cat([t.reshape(-1).float() for t in tensors]))
    n = len(paths)
    meta = {"run_id": np.arange(n), "seed": np.zeros(n), "epoch": np.zeros(n),
            "step": np.zeros(n), "label": np.asarray(labels), "split": np.asarray(names),
            "path": np.asarray(paths)}
    writer = ZooWriter(out, {"name": "inr_folder", "imported_from": splits_json.name})
    writer.write(spec, torch.stack(rows), meta)
    return writer.finalize()
