"""The training app: one loop for every task, metanetworks on a zoo and hypernetworks alike.

``python scripts/train.py data.zoo=zoos/digits_cnn.h5 model=gmn task=predict_accuracy`` (or
``weightspace train ...``; ``task=hyper_regularization`` needs no zoo). The task
(:class:`~weightspace.tasks.Task`, found by ``task.name``) builds batches, the loss, metrics and
plots; this loop owns the device, DistributedDataParallel, mixed precision, checkpoints, resume
and logging. The run directory (Hydra's, or ``out_dir=``) receives:

- ``.hydra/config.yaml`` (Hydra) and ``config.yaml``: the resolved config;
- ``checkpoint.pt``: model, optimiser, task state and epoch after every epoch (a second start of
  the same run resumes from it) and ``best.pt`` (best validation score;
  :func:`~weightspace.training.checkpoint.load_trained` reads it);
- ``metrics.csv``: one row per epoch; ``metrics.json``: ``{"val": {...}, "test": {...}}`` of
  the best checkpoint;
- ``tensorboard/``: the same curves as TensorBoard events;
- PNG plots: learning curves, and the task's own (predicted vs true, a confusion matrix, edits).

Models and tasks are chosen by name; nothing from a config or a data file is instantiated.
Under ``torchrun --nproc_per_node=N`` the same app trains with DistributedDataParallel (gloo on
CPU, NCCL on GPU): each process reads its own share of every epoch's batches, gradients are
averaged, and rank 0 alone writes the run directory. A step whose loss is not finite updates
nothing (its NaN is logged).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm import tqdm

from weightspace.configs.checks import check_config
from weightspace.safe_load import load_tensors
from weightspace.tasks import TASKS, Evaluation, Task
from weightspace.training.checkpoint import Trained, checkpoint_payload, load_trained
from weightspace.training.device import distributed, resolve_device
from weightspace.training.optim import make_optimizer, make_scheduler
from weightspace.training.run_dir import finish_run, log_epoch, resume, tensorboard_writer
from weightspace.zoo.reader import Zoo


@dataclass
class Session:
    """What one training process holds: where it runs and what it trains.

    Args:
        cfg: the run's resolved config.
        out: the run directory.
        rank: this process's rank; rank 0 writes the run directory.
        world: the number of processes.
        device: this process's device.
        amp: whether mixed precision is on (CUDA only).
        task: the task.
        model: the model (unwrapped).
        trained: what the steps call: the model, or its DistributedDataParallel wrapper.
        optimizer: the optimizer.
    """

    cfg: DictConfig
    out: Path
    rank: int
    world: int
    device: torch.device
    amp: bool
    task: Task
    model: nn.Module
    trained: nn.Module
    optimizer: torch.optim.Optimizer

    @property
    def main(self) -> bool:
        return self.rank == 0

    def autocast(self):
        return torch.autocast(self.device.type, enabled=self.amp)

    def evaluate(self, split: str) -> Evaluation:
        self.model.eval()
        with torch.no_grad(), self.autocast():
            return self.task.evaluate(self.model, split)


def start(cfg: DictConfig, out_dir: str | Path) -> Session:
    """Join the process group, write the config, build the task, model and optimizer."""
    check_config(cfg)
    t = cfg.trainer
    rank, world, device = distributed(t.device)
    if world > 1:  # every rank writes where rank 0 does (Hydra's time-stamped dirs may differ)
        box = [str(out_dir)]
        dist.broadcast_object_list(box, src=0)
        out_dir = box[0]
    out = Path(out_dir)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(t.seed)
    task = TASKS[cfg.task.name].from_config(cfg)
    if world > 1 and not task.distributed:
        raise ValueError(f"task {task.name!r} trains in one process; run it without torchrun")
    task.setup(device, rank, world, int(t.seed))
    model = task.build_model(cfg.model).to(device)
    trained = model
    if world > 1:
        trained = nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    amp = bool(t.get("amp", False)) and device.type == "cuda"
    return Session(cfg, out, rank, world, device, amp, task, model, trained,
                   make_optimizer(model.parameters(), t))


def train_epoch(s: Session, epoch: int, scaler: torch.amp.GradScaler) -> float:
    """One epoch of steps; the mean training loss (NaN where a step diverged)."""
    s.trained.train()
    losses = []
    for batch in s.task.batches(epoch):
        with s.autocast():
            loss = s.task.loss(s.trained, batch)
        if not torch.isfinite(loss):  # diverged: nothing is updated
            losses.append(float("nan"))
            continue
        s.optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(s.optimizer)
        scaler.update()
        losses.append(loss.item())
    return float(np.mean(losses)) if losses else float("nan")


def run(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Train (or resume), evaluate, write the run directory; returns ``metrics.json``'s dict."""
    s = start(cfg, out_dir)
    t, task, out = cfg.trainer, s.task, s.out
    scaler = torch.amp.GradScaler(s.device.type, enabled=s.amp)
    start_epoch, best, history, state = resume(out, s.device, s.model, s.optimizer)
    scheduler = make_scheduler(s.optimizer, t)
    if state:
        task.load_state(state)
        if scheduler is not None and "scheduler" in state:
            scheduler.load_state_dict(state["scheduler"])
    board = tensorboard_writer(out) if s.main else None
    bar = tqdm(range(start_epoch, t.epochs + 1), desc=f"{cfg.model.name} {task.name}",
               unit="epoch", disable=not (t.progress and s.main), initial=start_epoch - 1,
               total=t.epochs)
    for epoch in bar:
        begin = time.perf_counter()
        loss = train_epoch(s, epoch, scaler)
        if scheduler is not None:
            scheduler.step()
        val = s.evaluate("val").metrics
        row = {"epoch": epoch, "train_loss": loss, "seconds": time.perf_counter() - begin,
               **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        bar.set_postfix(loss=f"{loss:.3g}", **{task.score: f"{val[task.score]:.3f}"})
        improved = task.better(val[task.score], best)
        best = val[task.score] if improved else best
        if s.main:
            payload = checkpoint_payload(s.model, task, cfg, epoch)
            if improved:
                torch.save(payload, out / "best.pt")
            if scheduler is not None:
                payload["scheduler"] = scheduler.state_dict()
            torch.save({**payload, "optimizer": s.optimizer.state_dict(), "best": best,
                        "history": history}, out / "checkpoint.pt")
            log_epoch(board, row)
    if s.world > 1:
        dist.barrier()  # best.pt is complete before any rank reads it
    if (out / "best.pt").exists():
        s.model.load_state_dict(load_tensors(out / "best.pt", map_location=s.device)["model"])
    results = {split: s.evaluate(split) for split in ("val", "test")}
    test = results["test"]
    results = {split: e.metrics for split, e in results.items()}
    results.update(model=cfg.model.name, task=task.name, world_size=s.world, **task.summary())
    if s.main:
        s.model.eval()
        task.plot(out, s.model, test)
        finish_run(out, board, history, results, task.score, t.epochs)
    if s.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return results


def evaluate(ckpt: str | Path | Trained, split: str = "test", zoo: str | None = None,
             device: str = "auto") -> dict:
    """A trained metanetwork's metrics on one split of its zoo (or of ``zoo``, same arch);
    ``ckpt``: a run directory, a ``best.pt``, or a loaded checkpoint (then on its device)."""
    trained = load_trained(ckpt, resolve_device(device), kind="metanetwork")
    cfg = trained.config
    if zoo is not None:
        cfg.data.zoo = zoo
    z = Zoo(cfg.data.zoo)
    archs = [s.id for s in trained.specs]
    missing = sorted(set(archs) - set(z.archs))
    if missing:
        raise ValueError(f"{cfg.data.zoo} holds no networks of architectures {missing}, which "
                         f"the metanetwork was trained on")
    task = type(trained.task).create(cfg.task, trained.recipe, archs)
    task.attach(cfg, z)
    task.load_stats(trained.task.stats())  # the statistics it was trained with
    with torch.no_grad():
        return task.evaluate(trained.model, split,
                             task.loader(split, cfg.trainer.batch_size)).metrics
