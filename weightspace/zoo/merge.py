"""``merge``: join zoos (the shards of one build, or zoos built apart from one config) into one
file, checking everything it copies.

Zoos merge only when they come from one build configuration: their ``recipe`` attributes must
agree on every key but ``n_runs`` (a zoo extended with more runs of the same seed holds the
same first runs). The same ``(architecture, run_id, step)`` in two sources must hold the same
weights (one copy is kept, the others are counted as skipped); anything else means the sources
are different builds, and nothing is written. Every copied row is read through its checksum and
must be finite. ``out`` is replaced atomically, so it may be one of the sources.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from weightspace.errors import ZooCorruptionError
from weightspace.zoo.ceiling import noise_ceiling
from weightspace.zoo.format import atomic_h5, create_arch, create_column, write_root_attrs
from weightspace.zoo.reader import Zoo, zoo_parts
from weightspace.zoo.space import ensure_space
from weightspace.zoo.verify import valid_rows

# Rows copied per read/write while merging: bounds memory for large networks.
MERGE_BYTES = 1 << 26
# Recipe keys that may differ between zoos of one build.
BUILD_KEYS = ("n_runs",)


@dataclass
class MergeReport:
    """What :func:`merge` wrote.

    Args:
        path: the merged zoo.
        models: models written.
        sources: models each source file held (identical copies included).
        skipped: identical copies of a model already taken from another source.
    """

    path: Path
    models: int = 0
    sources: dict[str, int] = field(default_factory=dict)
    skipped: int = 0

    def __str__(self) -> str:
        held = ", ".join(f"{Path(p).name}: {n}" for p, n in self.sources.items())
        return (f"merged {self.models} models into {self.path} from {len(self.sources)} files "
                f"({held}); {self.skipped} identical copies skipped")


def merge(sources: Sequence[str | os.PathLike], out: str | os.PathLike,
          recipe: Mapping | None = None) -> MergeReport:
    """Write every model of the zoos ``sources`` (with their shards) into one file ``out``
    (module docstring); the zoo is in canonical order. ``recipe`` replaces the recipe stored
    (a build finishing its shards passes its own config)."""
    missing = [str(s) for s in sources if not zoo_parts(s)]
    if missing:
        raise FileNotFoundError(f"zoo merge: no zoo at {', '.join(missing)} (nothing merged)")
    zoo = Zoo(sources)
    with zoo:
        merged_recipe = _one_recipe(zoo) if recipe is None else dict(recipe)
        report = MergeReport(Path(out))
        for part, path in enumerate(zoo.parts):
            f = zoo._file(part)
            report.sources[str(path)] = sum(g["params"].shape[0]
                                            for g in f.get("archs", {}).values())
        _check_duplicates(zoo)
        report.skipped = len(zoo.duplicates)
        ensure_space(out, sum(_bytes(zoo, arch) for arch in zoo.archs))
        meta = zoo.metadata()
        with atomic_h5(out) as f:
            write_root_attrs(f, merged_recipe, noise_ceiling(meta))
            for arch in zoo.archs:
                _copy_arch(zoo, arch, meta, f)
        report.models = len(zoo)
    return report


def _one_recipe(zoo: Zoo) -> dict:
    """The sources' common recipe (``n_runs``: the largest), or an error naming what
    differs."""
    recipes = [zoo.recipe_of(part) for part in range(len(zoo.parts))]
    first = {k: v for k, v in recipes[0].items() if k not in BUILD_KEYS}
    for part, other in enumerate(recipes[1:], start=1):
        rest = {k: v for k, v in other.items() if k not in BUILD_KEYS}
        if rest != first:
            keys = sorted(k for k in first.keys() | rest.keys() if first.get(k) != rest.get(k))
            shown = "; ".join(f"{k}: {first.get(k)!r} vs {rest.get(k)!r}" for k in keys[:4])
            raise ValueError(f"zoo merge: {zoo.parts[0]} and {zoo.parts[part]} were built from "
                             f"different configs ({shown}); merge only zoos of one build "
                             f"config (nothing merged)")
    runs = [r["n_runs"] for r in recipes if isinstance(r.get("n_runs"), int)]
    return {**recipes[0], **({"n_runs": max(runs)} if runs else {})}


def _check_duplicates(zoo: Zoo) -> None:
    for (arch, run_id, step), kept, other in zoo.duplicates:
        if not zoo.rows_equal(kept, other, arch):
            raise ValueError(f"zoo merge: run {run_id} step {step} is stored in "
                             f"{zoo.parts[kept[0]]} and {zoo.parts[other[0]]} with different "
                             f"weights: these are different builds (nothing merged)")


def _bytes(zoo: Zoo, arch: str) -> int:
    spec = zoo.spec(arch)
    return zoo.indices(arch).size * (4 * spec.num_params + 8 * len(spec.buffers) + 256)


def _copy_arch(zoo: Zoo, arch: str, meta: dict, f) -> None:
    idx = zoo.indices(arch)
    spec = zoo.spec(arch)
    g = create_arch(f, zoo.spec_json[arch], np.zeros((0, spec.num_params), np.float32),
                    np.zeros((0, len(spec.buffers))) if len(spec.buffers) else None, {})
    for name, values in meta.items():
        if name != "arch":
            create_column(g["meta"], name, values[idx], idx.size)
    step = max(1, MERGE_BYTES // max(1, 4 * spec.num_params))
    for start in range(0, idx.size, step):
        chunk = idx[start : start + step]
        for what, read in (("params", zoo.params), ("buffers", zoo.buffers)):
            if what == "buffers" and not len(spec.buffers):
                continue
            rows = read(chunk)
            bad = np.nonzero(~valid_rows(rows, what))[0]
            if bad.size:
                i = int(chunk[bad[0]])
                raise ZooCorruptionError(zoo.file_of(i), f"{what} hold NaN or infinite values "
                                         f"(nothing merged)", i)
            _append(g[what], rows)


def _append(ds, rows):
    n = ds.shape[0]
    ds.resize(n + len(rows), axis=0)
    ds[n:] = rows
