"""The Hydra training app: a zoo goes in, a trained metanetwork and its metrics come out.

``python scripts/train.py data.zoo=zoos/digits_cnn.h5 model=gmn task=predict_accuracy``
(or ``weightspace train ...``). The run directory (Hydra's, or ``out_dir=``) receives:

- ``.hydra/config.yaml`` (Hydra) and ``config.yaml``: the resolved config;
- ``checkpoint.pt``: model, optimiser and epoch after every epoch (a second start of the same
  run resumes from it) and ``best.pt`` (best validation Kendall tau);
- ``metrics.csv``: one row per epoch; ``metrics.json``: ``{"val": {...}, "test": {...}}`` of
  the best checkpoint;
- ``learning_curves.png`` and ``predicted_vs_true.png``.

Models are chosen by name (``model.name``: gmn, statnn, mlp); nothing from a config or a data
file is instantiated.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from weightspace.data import GraphBatcher
from weightspace.nn import GraphMetaNetwork
from weightspace.nn.baselines import FlatMLP, StatNN
from weightspace.tasks import regression_metrics
from weightspace.zoo import Zoo

MODELS = ("gmn", "statnn", "mlp")


def choose_arch(zoo: Zoo, arch: str | None) -> str:
    """``arch``, or the zoo's architecture with the most models."""
    if arch:
        return arch
    counts = {a: int((zoo.metadata()["arch"] == a).sum()) for a in zoo.archs}
    return max(counts, key=counts.get)


class Predictor(torch.nn.Module):
    """A metanetwork with its input adapter: flat weights (and buffers) -> one value each."""

    def __init__(self, cfg: DictConfig, spec, device: torch.device):
        super().__init__()
        self.kind = cfg.name
        if self.kind == "gmn":
            self.net = GraphMetaNetwork(spec.num_edge_features, cfg.hidden, cfg.layers, 1,
                                        fourier=cfg.fourier)
            self.batcher = GraphBatcher(spec, device)
        elif self.kind == "statnn":
            self.net = StatNN(spec, cfg.hidden, cfg.layers)
        elif self.kind == "mlp":
            self.net = FlatMLP(spec.num_params, cfg.hidden, cfg.layers)
        else:
            raise KeyError(f"unknown model {cfg.name!r} (config key model.name); known: {MODELS}")

    def fit_normalization(self, vecs: torch.Tensor):
        if hasattr(self.net, "fit_normalization"):
            self.net.fit_normalization(vecs)

    def forward(self, vecs, buffers=None):
        if self.kind == "gmn":
            return self.net(self.batcher(vecs, buffers)).graph.squeeze(-1)
        return self.net(vecs).squeeze(-1)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _loader(ds, batch_size, shuffle, seed, workers):
    g = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=g,
                      num_workers=workers, collate_fn=_collate)


def _collate(items):
    return tuple(torch.stack(c) for c in zip(*items, strict=True))


def _predict(model, loader, device, amp) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    preds, trues = [], []
    with torch.no_grad(), torch.autocast(device.type, enabled=amp):
        for vecs, buffers, y in loader:
            preds.append(model(vecs.to(device), buffers.to(device)).float().cpu())
            trues.append(y)
    return torch.cat(preds).numpy(), torch.cat(trues).numpy()


def run(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Train (or resume), evaluate, write the run directory; returns ``metrics.json``'s dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    t, d = cfg.trainer, cfg.data
    torch.manual_seed(t.seed)
    device = _device(t.device)
    amp = bool(t.amp) and device.type == "cuda"
    zoo = Zoo(d.zoo)
    arch = choose_arch(zoo, d.arch)
    spec = zoo.spec(arch)
    sets = {s: zoo.dataset(s, target=cfg.task.target, arch=arch, fractions=tuple(d.fractions),
                           seed=d.split_seed, buffers=True) for s in ("train", "val", "test")}
    if min(len(v) for v in sets.values()) == 0:
        raise ValueError(f"{d.zoo}: a split is empty ({ {k: len(v) for k, v in sets.items()} })"
                         f"; build more runs or change data.fractions")
    y_train = sets["train"].targets
    y_mean, y_std = float(y_train.mean()), float(y_train.std().clamp_min(1e-8))
    model = Predictor(cfg.model, spec, device).to(device)
    model.fit_normalization(torch.from_numpy(zoo.params(sets["train"].indices)).to(device))
    opt = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    start_epoch, best, history = 1, -math.inf, []
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        start_epoch, best = state["epoch"] + 1, state["best"]
        history = state["history"]

    loaders = {s: _loader(ds, t.batch_size, s == "train", t.seed, t.num_workers)
               for s, ds in sets.items()}
    bar = tqdm(range(start_epoch, t.epochs + 1), desc=f"{cfg.model.name}", unit="epoch",
               disable=not t.progress, initial=start_epoch - 1, total=t.epochs)
    for epoch in bar:
        model.train()
        losses, begin = [], time.perf_counter()
        for vecs, buffers, y in loaders["train"]:
            vecs, buffers, y = vecs.to(device), buffers.to(device), y.to(device)
            with torch.autocast(device.type, enabled=amp):
                pred = model(vecs, buffers)
                loss = torch.nn.functional.mse_loss(pred.float(), (y - y_mean) / y_std)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
        pred, true = _predict(model, loaders["val"], device, amp)
        val = regression_metrics(pred * y_std + y_mean, true)
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)),
               "seconds": time.perf_counter() - begin, **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_tau=f"{val['kendall_tau']:.3f}")
        score = val["kendall_tau"] if not math.isnan(val["kendall_tau"]) else -val["mse"]
        if score > best:
            best = score
            torch.save({"model": model.state_dict(), "epoch": epoch}, out / "best.pt")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": epoch,
                    "best": best, "history": history}, ckpt_path)
    _write_history(out / "metrics.csv", history)

    if (out / "best.pt").exists():
        best_state = torch.load(out / "best.pt", map_location=device, weights_only=True)
        model.load_state_dict(best_state["model"])
    results = {}
    for split in ("val", "test"):
        pred, true = _predict(model, loaders[split], device, amp)
        results[split] = regression_metrics(pred * y_std + y_mean, true)
        if split == "test":
            _plot(out, history, pred * y_std + y_mean, true, cfg.task.target)
    results["model"], results["arch"] = cfg.model.name, arch
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
    return results


def _write_history(path: Path, history: list[dict]):
    if not history:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def _plot(out: Path, history, pred, true, target):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if history:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        epochs = [h["epoch"] for h in history]
        ax[0].plot(epochs, [h["train_loss"] for h in history])
        ax[0].set(xlabel="epoch", ylabel="train loss (standardised MSE)", yscale="log")
        ax[1].plot(epochs, [h["val_kendall_tau"] for h in history])
        ax[1].set(xlabel="epoch", ylabel="validation Kendall tau")
        fig.tight_layout()
        fig.savefig(out / "learning_curves.png", dpi=120)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(true, pred, s=8, alpha=0.6)
    lo, hi = float(min(true.min(), pred.min())), float(max(true.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(xlabel=f"true {target}", ylabel=f"predicted {target}", title="test split")
    fig.tight_layout()
    fig.savefig(out / "predicted_vs_true.png", dpi=120)
    plt.close(fig)
