"""Training a hypernetwork through the Hydra app: ``task=hyper_regularization`` or ``hyper_inr``.

``python scripts/train.py task=hyper_regularization`` (the task's config selects
``model=hyper``) writes the usual run directory: ``config.yaml``, ``checkpoint.pt`` (resumed
on a second start), ``best.pt`` (read by :func:`load_hypernetwork` and
:func:`weightspace.generate`), ``metrics.csv``, ``metrics.json``, TensorBoard events,
``learning_curves.png`` and the task's plot. No zoo is needed: the data is the task's own
(the embedded digits by default).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from weightspace.hyper.hypernetwork import HyperNetwork
from weightspace.hyper.tasks import HyperTask, make_hyper_task
from weightspace.runs import (
    finish_run,
    log_epoch,
    make_optimizer,
    resolve_device,
    resume,
    tensorboard_writer,
)


def build(cfg: DictConfig, device) -> tuple[HyperTask, HyperNetwork]:
    """The task and a fresh hypernetwork for it (the target initialised from ``trainer.seed``)."""
    if cfg.model.name != "hyper":
        raise ValueError(f"task {cfg.task.name!r} trains a hypernetwork: use model=hyper, not "
                         f"model={cfg.model.name}")
    task = make_hyper_task(cfg.task, int(cfg.data.get("split_seed", 0))).to(device)
    torch.manual_seed(cfg.trainer.seed)
    m = cfg.model
    modules = OmegaConf.to_container(m.modules) if m.get("modules") is not None else None
    hypernet = HyperNetwork(task.target(), task.cond_dim, hidden=list(m.hidden), mip=m.mip,
                            modules=modules, chunk=m.get("chunk"))
    return task, hypernet.to(device)


def train_step(task: HyperTask, hypernet: HyperNetwork, opt, batch, generator) -> float:
    """One optimiser step; returns the loss (NaN or inf when it diverged, nothing updated)."""
    loss = task.loss(hypernet, batch, generator)
    if not torch.isfinite(loss):
        return float("nan")
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss.item()


def run_hyper(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Train (or resume), evaluate, write the run directory; returns ``metrics.json``'s dict."""
    t = cfg.trainer
    if int(os.environ.get("WORLD_SIZE", 1)) > 1:
        raise NotImplementedError("hypernetwork tasks train in one process (every step already "
                                  "runs all its weight sets at once); run without torchrun")
    device = resolve_device(t.device)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    task, hypernet = build(cfg, device)
    opt = make_optimizer(hypernet.parameters(), t)
    generator = torch.Generator().manual_seed(t.seed + 1)

    start_epoch, best, history, state = resume(out, device, hypernet, opt, key="hypernet")
    if state:
        generator.set_state(state["generator"])
    board = tensorboard_writer(out)
    bar = tqdm(range(start_epoch, t.epochs + 1), desc=f"hyper {task.name}", unit="epoch",
               disable=not t.progress, initial=start_epoch - 1, total=t.epochs)
    for epoch in bar:
        hypernet.train()
        losses, begin = [], time.perf_counter()
        for batch in task.batches("train", t.batch_size, generator):
            losses.append(train_step(task, hypernet, opt, batch, generator))
        hypernet.eval()
        val = task.evaluate(hypernet, "val")
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)),
               "seconds": time.perf_counter() - begin, **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3g}", **{task.score: f"{val[task.score]:.3f}"})
        improved = task.better(val[task.score], best)
        best = val[task.score] if improved else best
        payload = {"hypernet": hypernet.state_dict(), "kind": "hypernetwork", "epoch": epoch,
                   "config": OmegaConf.to_container(cfg, resolve=True)}
        if improved:
            torch.save(payload, out / "best.pt")
        torch.save({**payload, "optimizer": opt.state_dict(), "best": best, "history": history,
                    "generator": generator.get_state()}, out / "checkpoint.pt")
        log_epoch(board, row)

    if (out / "best.pt").exists():
        hypernet.load_state_dict(load_state(out / "best.pt", device)["hypernet"])
    hypernet.eval()
    results = {s: task.evaluate(hypernet, s) for s in ("val", "test")}
    results.update(model="hyper", mip=bool(cfg.model.mip), task=task.name)
    task.plot(out, hypernet)
    finish_run(out, board, history, results, task.score, t.epochs)
    return results


def load_state(path: Path, device) -> dict:
    state = torch.load(path, map_location=device, weights_only=True)
    if state.get("kind") != "hypernetwork":
        raise ValueError(f"{path} is not a weightspace hypernetwork checkpoint (trained with "
                         f"task=hyper_regularization or hyper_inr)")
    return state


def load_hypernetwork(path: str | os.PathLike, device: str | torch.device = "cpu"
                      ) -> tuple[HyperNetwork, DictConfig]:
    """A trained hypernetwork (eval mode) and its config, from ``best.pt`` or a run directory."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    device = torch.device(device)
    state = load_state(path, device)
    cfg = OmegaConf.create(state["config"])
    _, hypernet = build(cfg, device)
    hypernet.load_state_dict(state["hypernet"])
    return hypernet.eval(), cfg
