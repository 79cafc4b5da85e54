"""Importers read published zoo formats exactly (files written here in those formats)."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pytest
import torch

from weightspace.cli import main as cli
from weightspace.nets import SIREN, SmallCNN
from weightspace.zoo import Zoo
from weightspace.zoo.importers import import_inr_folder, import_small_cnn_zoo


def to_tensorflow(model: SmallCNN) -> tuple[np.ndarray, list[dict]]:
    """A network flattened the way the Small CNN Zoo ships it, and its layout rows."""
    parts, layout, start = [], [], 0
    for name, p in model.named_parameters():
        a = p.detach().numpy()
        if a.ndim == 4:
            a = a.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
        elif a.ndim == 2:
            a = a.T
        parts.append(a.reshape(-1))
        layout.append({"varname": f"sequential/{name}:0", "start_idx": start,
                       "end_idx": start + a.size, "size": a.size, "shape": str(a.shape)})
        start += a.size
    return np.concatenate(parts), layout


def write_small_cnn_zoo(folder, models, activations):
    flat = [to_tensorflow(m) for m in models]
    np.save(folder / "weights.npy", np.stack([f[0] for f in flat]).astype(np.float32))
    with open(folder / "layout.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(flat[0][1][0]))
        w.writeheader()
        w.writerows(flat[0][1])
    with gzip.open(folder / "metrics.csv.gz", "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["modeldir", "step", "test_accuracy", "config.activation",
                    "config.learning_rate"])
        for i, act in enumerate(activations):
            w.writerow([f"run{i // 2}", 100 * (i % 2 + 1), 0.1 * i, act, 0.01])


def test_small_cnn_zoo_import_recovers_the_networks(tmp_path):
    torch.manual_seed(0)
    models = [SmallCNN(1, 16, 10, torch.nn.ReLU if i < 2 else torch.nn.Tanh) for i in range(4)]
    write_small_cnn_zoo(tmp_path, models, ["relu", "relu", "tanh", "tanh"])
    zoo = Zoo(import_small_cnn_zoo(tmp_path, tmp_path / "zoo.h5"))
    meta = zoo.metadata()
    assert len(zoo) == 4 and len(zoo.archs) == 2  # relu and tanh networks
    assert sorted(meta["run_id"]) == [0, 0, 1, 1]
    for i in range(4):
        original = models[int(round(meta["test_accuracy"][i] * 10))]
        loaded = zoo.load(i, original)
        x = torch.randn(2, 1, 28, 28)
        assert torch.equal(loaded(x), original(x))
    assert set(meta["config.activation"]) == {"relu", "tanh"}


def test_small_cnn_zoo_with_a_mismatched_layout_is_refused(tmp_path):
    write_small_cnn_zoo(tmp_path, [SmallCNN()], ["relu"])
    rows = list(csv.DictReader(open(tmp_path / "layout.csv")))
    rows[0]["shape"] = "(3, 3, 2, 16)"
    with open(tmp_path / "layout.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with pytest.raises(ValueError, match="layout.csv"):
        import_small_cnn_zoo(tmp_path, tmp_path / "zoo.h5")


def write_inr_folder(folder, n=5):
    torch.manual_seed(0)
    models = [SIREN() for _ in range(n)]
    entries = {"train": {"path": [], "label": []}, "test": {"path": [], "label": []}}
    for i, m in enumerate(models):
        # DWSNets-style key names: anything, in layer order
        state = {f"seq.{j}.{k}": v for j, (k, v) in enumerate(
            (name.split(".")[-1], p.detach()) for name, p in m.named_parameters())}
        torch.save(state, folder / f"inr_{i}.pth")
        split = "train" if i < 3 else "test"
        entries[split]["path"].append(f"inr_{i}.pth")
        entries[split]["label"].append(i % 10)
    (folder / "splits.json").write_text(json.dumps(entries))
    return models


def test_inr_folder_import(tmp_path):
    models = write_inr_folder(tmp_path)
    assert cli(["zoo", "import", "inr", str(tmp_path / "splits.json"),
                str(tmp_path / "zoo.h5")]) == 0
    zoo = Zoo(tmp_path / "zoo.h5")
    meta = zoo.metadata()
    assert list(meta["split"]) == ["train"] * 3 + ["test"] * 2
    coords = torch.rand(7, 2)
    for i in range(5):
        assert torch.equal(zoo.load(i, SIREN())(coords), models[i](coords))


def test_inr_folder_refuses_pickled_objects(tmp_path):
    write_inr_folder(tmp_path, n=2)
    torch.save({"weights": object()}, tmp_path / "inr_1.pth")  # not loadable with weights_only
    with pytest.raises(ValueError, match="inr_1.pth"):
        import_inr_folder(tmp_path / "splits.json", tmp_path / "zoo.h5")
