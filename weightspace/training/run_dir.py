"""The files of a run directory: ``metrics.csv``, TensorBoard events, ``learning_curves.png``,
``metrics.json``; and resuming from its ``checkpoint.pt``."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from torch.utils.tensorboard import SummaryWriter

from weightspace.safe_load import load_tensors


def tensorboard_writer(out: Path):
    return SummaryWriter(str(out / "tensorboard"))


def write_history(path: Path, history: list[dict]):
    """One CSV row per epoch."""
    if not history:
        return
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(history[0]))
        w.writeheader()
        w.writerows(history)


def plot_learning_curves(out: Path, history: list[dict], score: str):
    """``learning_curves.png``: training loss and the validation score per epoch."""
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = [h["epoch"] for h in history]
    ax[0].plot(epochs, [h["train_loss"] for h in history])
    ax[0].set(xlabel="epoch", ylabel="train loss", yscale="log")
    ax[1].plot(epochs, [h[f"val_{score}"] for h in history])
    ax[1].set(xlabel="epoch", ylabel=f"validation {score}")
    fig.tight_layout()
    fig.savefig(out / "learning_curves.png", dpi=120)
    plt.close(fig)


def resume(out: Path, device, model, optimizer) -> tuple[int, float, list, dict]:
    """``(first epoch, best score, history, checkpoint)`` of a run directory: from its
    ``checkpoint.pt`` (loading ``model`` and ``optimizer``) when there is one, else a fresh
    start ``(1, nan, [], {})``."""
    path = out / "checkpoint.pt"
    if not path.exists():
        return 1, math.nan, [], {}
    state = load_tensors(path, map_location=device)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"] + 1, state["best"], state["history"], state


def log_epoch(board, row: dict):
    """One epoch's row (``epoch`` and ``split_metric`` values) as TensorBoard scalars."""
    for k, v in row.items():
        if k != "epoch":
            board.add_scalar(k.replace("_", "/", 1), v, row["epoch"])


def finish_run(out: Path, board, history: list[dict], results: dict, score: str, step: int):
    """The run directory's closing files: ``metrics.csv``, the test metrics in TensorBoard,
    ``learning_curves.png`` and ``metrics.json``."""
    write_history(out / "metrics.csv", history)
    for k, v in results["test"].items():
        board.add_scalar(f"test/{k}", v, step)
    board.close()
    plot_learning_curves(out, history, score)
    (out / "metrics.json").write_text(json.dumps(results, indent=2))
