"""Is a generated network new, or a training network again? The memorisation report.

Zeng et al. (2025, "Generative modeling of weights: generalization or memorization?") found
that weight generators mostly reproduce their training checkpoints, and that simple baselines
match them. :func:`memorisation_report` measures that for samples of any generator:

- every sample's **distance to its nearest training network**, after alignment: the relative
  L2 distance ``|| theta_j - g(theta_s) || / || theta_j ||`` minimised over the training
  networks ``j`` and over the symmetries ``g`` (weight matching,
  :mod:`~weightspace.alignment.weight_matching`, of the few nearest candidates in the common
  frame the samples and the training networks share);
- the same for training networks against each other: the scale on which a distance is small;
- the samples' metric (e.g. test accuracy) and how often a sample predicts what its nearest
  training network predicts (prediction agreement);
- two baselines: each sample's nearest training network plus Gaussian noise of the sample's
  own distance (each tensor moved by that fraction of its norm), and a noise curve over
  levels, whose largest level that keeps the samples' mean metric is the distance noise can
  go "for free"; and averages of ``k`` aligned training networks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from weightspace.alignment.weight_matching import weight_matching
from weightspace.graph.spec import GraphSpec

NOISE_LEVELS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0)


@dataclass
class MemorisationReport:
    """The report's rows (one per kind of network) and the noise curve.

    Args:
        rows: per kind (``samples``, ``training``, ``noise at the samples' distance``,
            ``average of k``): ``n``, the metric's mean, std and median, the median (and 10th,
            90th percentile) distance to the nearest training network, the prediction
            agreement with it.
        noise_curve: ``(level, mean metric)`` of the noised nearest training networks.
        noise_limit: the largest level whose mean metric still reaches the samples' mean
            (interpolated on the curve; 0 when none does).
        metric: the metric's name.
    """

    rows: list[dict] = field(default_factory=list)
    noise_curve: list[tuple[float, float]] = field(default_factory=list)
    noise_limit: float = 0.0
    metric: str = "metric"

    def table(self) -> str:
        """The rows as a Markdown table."""
        head = (f"| networks | n | {self.metric} mean ± std | median | distance to nearest "
                f"training network, median [10%, 90%] | prediction agreement with it |\n"
                f"|---|---|---|---|---|---|\n")
        lines = [f"| {r['name']} | {r['n']} | {r['mean']:.3f} ± {r['std']:.3f} | "
                 f"{r['median']:.3f} | {r['distance']:.3f} [{r['distance_10']:.3f}, "
                 f"{r['distance_90']:.3f}] | {r['agreement']:.3f} |" for r in self.rows]
        curve = ", ".join(f"{s:g}: {m:.3f}" for s, m in self.noise_curve)
        return (head + "\n".join(lines) + f"\n\nNoise curve (level: mean {self.metric}): "
                f"{curve}.\nNoise keeps the samples' mean {self.metric} up to a distance of "
                f"{self.noise_limit:.3f}.")

    def to_dict(self) -> dict:
        return {"metric": self.metric, "rows": self.rows, "noise_curve": self.noise_curve,
                "noise_limit": self.noise_limit}


def nearest_training(spec: GraphSpec, train: Tensor, rows: Tensor, candidates: int = 3,
                     exclude: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(distance [B], index [B])``: each row's nearest training network after alignment
    (module docstring). ``train [N, P]`` and ``rows [B, P]`` share one frame; ``exclude [B]``
    names a training network each row may not match (itself)."""
    train, rows = train.double(), rows.double()
    norms = train.norm(dim=1).clamp_min(1e-30)
    plain = torch.cdist(rows, train) / norms
    if exclude is not None:
        plain[torch.arange(len(rows)), exclude] = float("inf")
    top = plain.topk(min(candidates, train.shape[0]), dim=1, largest=False).indices
    best = torch.empty(len(rows), dtype=torch.float64)
    index = torch.empty(len(rows), dtype=torch.long)
    for b, row in enumerate(rows):
        kept = [j for j in top[b].tolist() if exclude is None or j != int(exclude[b])]
        found = [(float(plain[b, j]), j) for j in kept]
        for j in kept:
            moved = weight_matching(spec, train[j], row)(row)
            found.append((float((train[j] - moved).norm() / norms[j]), j))
        best[b], index[b] = min(found)
    return best, index


def tensor_noise(spec: GraphSpec, rows: Tensor, level: Tensor | float,
                 generator: torch.Generator | None = None) -> Tensor:
    """``rows`` with every weight tensor moved by Gaussian noise of ``level`` times its own
    norm (so each row moves by ``level`` times its norm); ``level`` is one number or ``[B]``."""
    level = torch.as_tensor(level, dtype=rows.dtype).reshape(-1, 1).expand(len(rows), 1)
    out = rows.clone()
    for slot in spec.params.slots:
        part = rows[:, slot.offset : slot.stop]
        z = torch.randn(part.shape, generator=generator, dtype=rows.dtype)
        z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-30)
        out[:, slot.offset : slot.stop] = part + level * part.norm(dim=1, keepdim=True) * z
    return out


def _agreement(predict: Callable[[Tensor], Tensor], a: Tensor, b: Tensor) -> np.ndarray:
    return (predict(a) == predict(b)).float().mean(1).numpy()


def _row(name: str, metric: np.ndarray, distance, agreement) -> dict:
    d = np.asarray(distance, dtype=np.float64)
    finite = metric[np.isfinite(metric)]
    return {"name": name, "n": int(len(metric)), "mean": float(finite.mean()),
            "std": float(finite.std()), "median": float(np.median(finite)),
            "distance": float(np.median(d)), "distance_10": float(np.percentile(d, 10)),
            "distance_90": float(np.percentile(d, 90)),
            "agreement": float(np.mean(agreement))}


def noise_limit(curve: Sequence[tuple[float, float]], target: float) -> float:
    """The largest level at which the (falling) curve still reaches ``target``, linearly
    interpolated between the grid's levels; 0 when even the first does not."""
    if not curve or curve[0][1] < target:
        return 0.0
    for (s0, m0), (s1, m1) in zip(curve[:-1], curve[1:], strict=True):
        if m1 < target:
            return float(s0 + (s1 - s0) * (m0 - target) / max(m0 - m1, 1e-12))
    return float(curve[-1][0])


def memorisation_report(spec: GraphSpec, train: Tensor, samples: Tensor,
                        measure: Callable[[Tensor], np.ndarray],
                        predict: Callable[[Tensor], Tensor], *, metric: str = "metric",
                        train_metric: np.ndarray | None = None, candidates: int = 3,
                        scale_networks: int = 100, ks: Sequence[int] = (2, 3, 5),
                        levels: Sequence[float] = NOISE_LEVELS, seed: int = 0
                        ) -> MemorisationReport:
    """The report of ``samples [S, P]`` against the training networks ``train [N, P]``, both
    in one common frame (a :class:`~weightspace.nn.generative.WeightDiffusion`'s samples and
    its aligned training zoo).

    ``measure(rows) -> [B]`` gives the metric of networks (e.g. the recipe's test accuracy),
    ``predict(rows) -> [B, n]`` their predictions on ``n`` inputs. ``train_metric [N]``
    (the zoo's column) picks the networks averaged by the baseline: ``k`` at random from the
    upper half. ``scale_networks`` training networks measure the scale.
    """
    g = torch.Generator().manual_seed(seed)
    report = MemorisationReport(metric=metric)
    samples = samples.to(train.dtype)
    s_metric = measure(samples)
    s_dist, s_near = nearest_training(spec, train, samples, candidates)
    report.rows.append(_row("samples", s_metric, s_dist,
                            _agreement(predict, samples, train[s_near])))
    pick = torch.randperm(len(train), generator=g)[:scale_networks]
    t_dist, t_near = nearest_training(spec, train, train[pick], candidates, exclude=pick)
    report.rows.append(_row("training networks (against the nearest other)",
                            measure(train[pick]), t_dist,
                            _agreement(predict, train[pick], train[t_near])))
    sources = train[s_near]
    noised = tensor_noise(spec, sources, s_dist.to(train.dtype), g)
    report.rows.append(_row("nearest training network + noise of the sample's distance",
                            measure(noised), s_dist, _agreement(predict, noised, sources)))
    report.noise_curve = [(float(s), float(np.nanmean(measure(tensor_noise(spec, sources, s, g)))))
                          for s in levels]
    report.noise_limit = noise_limit(report.noise_curve, float(np.nanmean(s_metric)))
    upper = torch.arange(len(train)) if train_metric is None else \
        torch.from_numpy(np.nonzero(train_metric >= np.median(train_metric))[0])
    for k in ks:
        groups = torch.stack([upper[torch.randperm(len(upper), generator=g)[:k]]
                              for _ in range(len(samples))])
        averaged = train[groups].mean(1)
        d, near = nearest_training(spec, train, averaged, candidates)
        report.rows.append(_row(f"average of {k} aligned training networks (upper half)",
                                measure(averaged), d, _agreement(predict, averaged, train[near])))
    return report
