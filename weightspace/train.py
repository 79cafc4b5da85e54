"""The Hydra training app: a zoo goes in, a trained metanetwork and its metrics come out.

``python scripts/train.py data.zoo=zoos/digits_cnn.h5 model=gmn task=predict_accuracy``
(or ``weightspace train ...``). The run directory (Hydra's, or ``out_dir=``) receives:

- ``.hydra/config.yaml`` (Hydra) and ``config.yaml``: the resolved config;
- ``checkpoint.pt``: model, optimiser and epoch after every epoch (a second start of the same
  run resumes from it) and ``best.pt`` (best validation score; :func:`load_trained` reads it);
- ``metrics.csv``: one row per epoch; ``metrics.json``: ``{"val": {...}, "test": {...}}`` of
  the best checkpoint;
- ``tensorboard/``: the same curves as TensorBoard events;
- PNG plots: learning curves, and the task's own (predicted vs true, a confusion matrix, edits).

Models and tasks are chosen by name (``model.name``, ``task.name``); nothing from a config or a
data file is instantiated. Hypernetwork tasks (``task=hyper_regularization``, ``hyper_inr``)
need no zoo and run :func:`weightspace.hyper.train.run_hyper` instead. ``data.arch=all``
trains on every architecture of the zoo (batches hold one architecture each; see
:mod:`weightspace.data.arch_batches`). Under
``torchrun --nproc_per_node=N`` the same app trains with DistributedDataParallel (gloo on CPU,
NCCL on GPU): each process reads its own share of every epoch's batches, gradients are
averaged, and rank 0 alone writes the run directory.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader
from tqdm import tqdm

from weightspace.checkpoint import checkpoint_payload, load_trained
from weightspace.data import Augment
from weightspace.data.arch_batches import ArchBatchSampler, ArchDataset
from weightspace.nn import WeightSpaceModel
from weightspace.runs import (
    finish_run,
    log_epoch,
    make_optimizer,
    resolve_device,
    resume,
    tensorboard_writer,
)
from weightspace.tasks import make_task
from weightspace.zoo import Zoo


def choose_archs(zoo: Zoo, arch: str | None) -> list[str]:
    """``[arch]``; every architecture for ``"all"``; by default the one with the most models."""
    if arch == "all":
        return list(zoo.archs)
    if arch:
        if arch not in zoo.archs:
            raise KeyError(f"no architecture {arch!r} in {zoo.paths[0]} (config key data.arch); "
                           f"it has {zoo.archs}, or 'all'")
        return [arch]
    counts = {a: int((zoo.metadata()["arch"] == a).sum()) for a in zoo.archs}
    return [max(counts, key=counts.get)]


def _distributed(device_name: str) -> tuple[int, int, torch.device]:
    """``(rank, world size, device)``; joins torchrun's process group when launched by it."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = resolve_device(device_name, local)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def _collate(items):
    return tuple(torch.stack(c) for c in zip(*items, strict=True))


def splits(cfg: DictConfig, zoo: Zoo, archs: list[str]) -> dict[str, ArchDataset]:
    d = cfg.data
    where = OmegaConf.to_container(d.where) if d.get("where") else None
    sets = {s: ArchDataset([zoo.dataset(s, target=cfg.task.target, arch=a,
                                        fractions=tuple(d.fractions), seed=d.split_seed,
                                        buffers=True, where=where) for a in archs])
            for s in ("train", "val", "test")}
    if min(len(v) for v in sets.values()) == 0:
        raise ValueError(f"{d.zoo}: a split is empty ({ {k: len(v) for k, v in sets.items()} })"
                         f"; build more runs or change data.fractions")
    return sets


def evaluate_split(model, task, loader, device, amp) -> tuple[dict, np.ndarray, np.ndarray]:
    """The task's metrics on one split, with the per-network records and targets."""
    model.eval()
    records, ys = [], []
    with torch.no_grad():
        for vecs, buffers, y, arch in loader:
            vecs, buffers = vecs.to(device), buffers.to(device)
            with torch.autocast(device.type, enabled=amp):
                out = model(vecs, buffers, int(arch[0]))
            records.append(task.record(out.float(), vecs, buffers, y.to(device),
                                       int(arch[0])).cpu())
            ys.append(y)
    records, ys = torch.cat(records).numpy(), torch.cat(ys).numpy()
    return task.metrics(records, ys), records, ys


def run(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Train (or resume), evaluate, write the run directory; returns ``metrics.json``'s dict."""
    if str(cfg.task.name).startswith("hyper"):  # a hypernetwork: no zoo, its own loop
        from weightspace.hyper.train import run_hyper

        return run_hyper(cfg, out_dir)
    t, d = cfg.trainer, cfg.data
    rank, world, device = _distributed(t.device)
    if world > 1:  # every rank writes where rank 0 does (Hydra's time-stamped dirs may differ)
        box = [str(out_dir)]
        dist.broadcast_object_list(box, src=0)
        out_dir = box[0]
    out, main = Path(out_dir), rank == 0
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    torch.manual_seed(t.seed)
    amp = bool(t.amp) and device.type == "cuda"
    zoo = Zoo(d.zoo)
    archs = choose_archs(zoo, d.arch)
    specs = [zoo.spec(a) for a in archs]
    task = make_task(cfg.task, zoo.recipe, archs)
    sets = splits(cfg, zoo, archs)
    task.fit(sets["train"].targets)
    model = WeightSpaceModel.from_config(cfg.model, specs, task.out_dim(), task.equivariant,
                                         zoo.recipe)
    model.fit_normalization([torch.from_numpy(zoo.params(part.indices))
                             for part in sets["train"].parts])
    model = model.to(device)
    a = cfg.get("augment", {})
    if a.get("mixup", 0) and task.equivariant:
        raise ValueError(f"augment.mixup mixes targets; task {task.name!r} has none to mix")
    generator = torch.Generator().manual_seed(t.seed + 1000 * rank)
    augments = [Augment(spec, a.get("symmetries", False), a.get("noise", 0.0),
                        a.get("dropout", 0.0), a.get("mixup", 0.0), a.get("mixup_permute", False),
                        generator) for spec in specs]
    opt = make_optimizer(model.parameters(), t)
    scaler = torch.amp.GradScaler(device.type, enabled=amp)

    start_epoch, best, history, _ = resume(out, device, model, opt)
    trained = model
    if world > 1:
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    samplers = {s: ArchBatchSampler(ds.sizes, t.batch_size, shuffle=(s == "train"), seed=t.seed,
                                    rank=rank if s == "train" else 0,
                                    world=world if s == "train" else 1)
                for s, ds in sets.items()}
    loaders = {s: DataLoader(ds, batch_sampler=samplers[s], collate_fn=_collate,
                             num_workers=t.num_workers) for s, ds in sets.items()}
    board = tensorboard_writer(out) if main else None
    bar = tqdm(range(start_epoch, t.epochs + 1), desc=f"{cfg.model.name} {task.name}",
               unit="epoch", disable=not (t.progress and main), initial=start_epoch - 1,
               total=t.epochs)
    for epoch in bar:
        samplers["train"].set_epoch(epoch)
        trained.train()
        losses, begin = [], time.perf_counter()
        for vecs, buffers, y, arch in loaders["train"]:
            vecs, buffers, y, arch = vecs.to(device), buffers.to(device), y.to(device), int(arch[0])
            vecs, buffers, target = augments[arch](vecs, buffers, task.encode(y))
            with torch.autocast(device.type, enabled=amp):
                loss = task.loss(trained(vecs, buffers, arch), vecs, buffers, target, arch)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            losses.append(loss.item())
        val, _, _ = evaluate_split(model, task, loaders["val"], device, amp)
        row = {"epoch": epoch, "train_loss": float(np.mean(losses)),
               "seconds": time.perf_counter() - begin, **{f"val_{k}": v for k, v in val.items()}}
        history.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3g}", **{task.score: f"{val[task.score]:.3f}"})
        improved = task.better(val[task.score], best)
        best = val[task.score] if improved else best
        if main:
            payload = checkpoint_payload(model, task, cfg, zoo.recipe, epoch)
            if improved:
                torch.save(payload, out / "best.pt")
            torch.save({**payload, "optimizer": opt.state_dict(), "best": best,
                        "history": history}, out / "checkpoint.pt")
            log_epoch(board, row)
    if world > 1:
        dist.barrier()  # best.pt is complete before any rank reads it

    if (out / "best.pt").exists():
        model.load_state_dict(torch.load(out / "best.pt", map_location=device,
                                         weights_only=True)["model"])
    results = {}
    for split in ("val", "test"):
        results[split], records, ys = evaluate_split(model, task, loaders[split], device, amp)
    results.update(model=cfg.model.name, task=task.name, archs=archs, world_size=world)
    if main:
        task.plot(out, records, ys)
        finish_run(out, board, history, results, task.score, t.epochs)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return results


def evaluate(ckpt: str | Path, split: str = "test", zoo: str | None = None,
             device: str = "auto") -> dict:
    """A trained metanetwork's metrics on one split of its zoo (or of ``zoo``, same arch)."""
    trained = load_trained(ckpt, resolve_device(device))
    cfg = trained.config
    if zoo is not None:
        cfg.data.zoo = zoo
    z = Zoo(cfg.data.zoo)
    archs = [s.id for s in trained.specs]
    missing = sorted(set(archs) - set(z.archs))
    if missing:
        raise ValueError(f"{cfg.data.zoo} holds no networks of architectures {missing}, which "
                         f"the metanetwork was trained on")
    ds = splits(cfg, z, archs)[split]
    loader = DataLoader(ds, batch_sampler=ArchBatchSampler(ds.sizes, cfg.trainer.batch_size),
                        collate_fn=_collate)
    dev = next(trained.model.parameters()).device
    metrics, _, _ = evaluate_split(trained.model, trained.task, loader, dev, False)
    return metrics
