"""Values a config cannot work with, refused before anything runs.

``trainer.epochs=-3`` would train nothing and still print test metrics; ``zoo.checkpoints``
beyond ``zoo.epochs`` would be dropped without a word. :func:`check_config` refuses such values
with a :class:`~weightspace.errors.ConfigError` naming the key, the value and what is accepted.
Keys a config does not have are skipped, so one table serves ``train`` and ``build_zoo``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from omegaconf import DictConfig, OmegaConf

from weightspace.errors import ConfigError


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _count(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _positive_int(v) -> bool:
    return _count(v) and v >= 1


def _positive(v) -> bool:
    return _number(v) and v > 0


def _non_negative(v) -> bool:
    return _number(v) and v >= 0


def _probability(v) -> bool:
    return _number(v) and 0 <= v < 1


def _fraction(v) -> bool:
    return _number(v) and 0 < v <= 1


def _each(rule: Callable) -> Callable:
    return lambda v: isinstance(v, list) and len(v) > 0 and all(rule(x) for x in v)


def _range(v) -> bool:  # a log-uniform range [low, high]
    return isinstance(v, list) and len(v) == 2 and all(map(_positive, v)) and v[0] <= v[1]


def _sizes(v) -> bool:  # one width, or one per layer
    return _positive_int(v) or _each(_positive_int)(v)


def _rate(v) -> bool:  # one value, or a log-uniform range to draw from
    return _positive(v) or _range(v)


def _one_of(*choices) -> Callable:
    return lambda v: v in choices


def _split(v) -> bool:  # train/val/test fractions
    return (isinstance(v, list) and len(v) == 3 and all(map(_non_negative, v))
            and v[0] > 0 and abs(sum(v) - 1) < 1e-6)


# key -> (rule, what is accepted)
RULES: dict[str, tuple[Callable, str]] = {
    "n_runs": (_positive_int, "a positive integer"),
    "chunk_size": (_positive_int, "a positive integer"),
    "workers": (_positive_int, "a positive integer"),
    "world": (_positive_int, "a positive integer"),
    "rank": (_count, "an integer 0 <= rank < world"),
    "zoo.epochs": (_positive_int, "a positive integer"),
    "zoo.steps": (_positive_int, "a positive integer"),
    "zoo.batch_size": (_positive_int, "a positive integer"),
    "zoo.channels": (_positive_int, "a positive integer"),
    "zoo.hidden": (_sizes, "a positive integer or a list of them"),
    "zoo.checkpoints": (_each(_positive_int), "a non-empty list of positive epochs or steps"),
    "zoo.lr": (_rate, "a positive number or a range [low, high] of them"),
    "zoo.weight_decay": (_rate, "a positive number or a range [low, high] of them"),
    "zoo.init_std": (_rate, "a positive number or a range [low, high] of them"),
    "zoo.dropouts": (_each(_probability), "a non-empty list of probabilities in [0, 1)"),
    "zoo.train_fractions": (_each(_fraction), "a non-empty list of fractions in (0, 1]"),
    "zoo.widths": (_each(_positive_int), "a non-empty list of positive integers"),
    "zoo.depths": (_each(_positive_int), "a non-empty list of positive integers"),
    "zoo.fractions": (_split, "three fractions train/val/test summing to 1, train > 0"),
    "trainer.epochs": (_positive_int, "a positive integer"),
    "trainer.lr": (_positive, "a positive number"),
    "trainer.weight_decay": (_non_negative, "a number >= 0"),
    "trainer.batch_size": (_positive_int, "a positive integer"),
    "trainer.num_workers": (_count, "an integer >= 0"),
    "trainer.momentum": (_probability, "a number in [0, 1)"),
    "trainer.schedule": (_one_of("constant", "cosine"), "constant or cosine"),
    "model.precision": (_one_of("32", "bf16-mixed", 32), '"32" or "bf16-mixed"'),
    "model.probe_data": (_one_of("random", "val"), "random or val"),
    "data.fractions": (_split, "three fractions train/val/test summing to 1, train > 0"),
    "model.hidden": (_sizes, "a positive integer or a list of them"),
    "model.layers": (_positive_int, "a positive integer"),
    "model.probes": (_count, "an integer >= 0"),
    "model.fourier": (_count, "an integer >= 0"),
    "augment.noise": (_non_negative, "a number >= 0"),
    "augment.dropout": (_probability, "a probability in [0, 1)"),
    "augment.mixup": (_non_negative, "a number >= 0"),
}


def _lookup(cfg: Mapping, key: str):
    node = cfg
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def check_config(cfg: DictConfig | Mapping) -> None:
    """Raise :class:`ConfigError` for the first value in ``cfg`` that cannot work."""
    plain = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    for key, (rule, accepted) in RULES.items():
        value = _lookup(plain, key)
        if value is not _MISSING and value is not None and not rule(value):
            raise ConfigError(f"{key}={value!r}: must be {accepted}")
    rank, world = _lookup(plain, "rank"), _lookup(plain, "world")
    if rank is not _MISSING and world is not _MISSING and rank >= world:
        raise ConfigError(f"rank={rank} with world={world}: must be 0 <= rank < world")
    checkpoints = _lookup(plain, "zoo.checkpoints")
    for length in ("zoo.epochs", "zoo.steps"):  # a run's length, in the checkpoints' unit
        last = _lookup(plain, length)
        if checkpoints is _MISSING or last is _MISSING:
            continue
        late = [c for c in checkpoints if c > last]
        if late:
            raise ConfigError(f"zoo.checkpoints={checkpoints}: {late} come after the last "
                              f"({length}={last}); lower them or raise {length}")
