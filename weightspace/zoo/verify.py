"""``verify`` and ``info``: check a zoo model by model, and summarise it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from weightspace.errors import ZooCorruptionError
from weightspace.zoo.reader import Zoo

BLOCK = 256  # models read at once; a block that fails is re-read model by model


@dataclass
class Problem:
    """One problem found by :func:`verify`.

    Args:
        file: the zoo file.
        index: the model index, when the problem is one model's.
        message: what is wrong.
    """

    file: str
    index: int | None  # model index in the zoo's canonical order, when known
    message: str

    def __str__(self) -> str:
        where = self.file + (f", model {self.index}" if self.index is not None else "")
        return f"{where}: {self.message}"


@dataclass
class VerifyReport:
    """What :func:`verify` checked and found.

    Args:
        models: models stored.
        checked: models whose checksums and values were checked.
        problems: the problems found (none: the zoo is sound).
    """

    models: int = 0
    checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(path: str | os.PathLike) -> VerifyReport:
    """Check everything the reader trusts: every file's attributes parse, the zoo holds
    models, every key ``(architecture, run_id, step)`` is stored once (or in identical copies
    across the files of an unfinished build), row counts agree, and every model's checksums,
    values and shapes."""
    report = VerifyReport()
    try:
        zoo = Zoo(path)
    except ZooCorruptionError as err:
        report.problems.append(Problem(err.path, err.index, str(err).split(": ", 1)[-1]))
        return report
    with zoo:
        report.models = len(zoo)
        if not len(zoo):
            report.problems.append(Problem(str(path), None, "holds no models"))
        _verify_attributes(zoo, report)
        _verify_keys(zoo, report)
        for arch in zoo.archs:
            _verify_arch(zoo, arch, report)
    return report


def _verify_attributes(zoo: Zoo, report: VerifyReport):
    for part, path in enumerate(zoo.parts):
        try:
            zoo.recipe_of(part)
        except ZooCorruptionError as err:
            report.problems.append(Problem(str(path), None, str(err).split(": ", 1)[-1]))
        text = zoo._file(part).attrs.get("noise_ceiling")
        try:
            if text is not None and not isinstance(json.loads(text), dict):
                raise ValueError("not a mapping")
        except (TypeError, ValueError) as err:
            report.problems.append(Problem(str(path), None, f"the noise_ceiling attribute is "
                                           f"not a JSON mapping ({err})"))


def _verify_keys(zoo: Zoo, report: VerifyReport):
    for (arch, run_id, step), kept, other in zoo.duplicates:
        where = f"run {run_id} step {step} of architecture {arch}"
        if kept[0] == other[0]:
            report.problems.append(Problem(str(zoo.parts[kept[0]]), None,
                                           f"{where} is stored twice (rows {kept[1]} and "
                                           f"{other[1]})"))
        elif not zoo.rows_equal(kept, other, arch):
            report.problems.append(Problem(str(zoo.parts[other[0]]), None,
                                           f"{where} differs from its copy in "
                                           f"{zoo.parts[kept[0]]}"))


def _verify_arch(zoo: Zoo, arch: str, report: VerifyReport):
    idx = zoo.indices(arch)
    try:
        spec = zoo.spec(arch)
    except Exception as err:  # a spec that does not rebuild is reported, not raised
        report.problems.append(Problem(str(zoo.parts[0]), None,
                                       f"architecture {arch}: unreadable spec ({err})"))
        return
    if spec.id != arch:
        report.problems.append(Problem(str(zoo.parts[0]), None,
                                       f"architecture {arch}: its spec has id {spec.id}"))
    expected = {"params": spec.num_params, "buffers": len(spec.buffers)}
    for part, widths in zoo.stored_widths(arch).items():
        for what, width in expected.items():
            if widths[what] != width:
                report.problems.append(Problem(
                    str(part), None,
                    f"architecture {arch}: {what} have {widths[what]} columns, the spec {width}"))
                return
        if widths["buffer_rows"] not in (None, widths["rows"]):
            report.problems.append(Problem(
                str(part), None, f"architecture {arch}: {widths['rows']} weight rows but "
                                 f"{widths['buffer_rows']} buffer rows"))
            return
    for start in range(0, idx.size, BLOCK):
        block = idx[start : start + BLOCK]
        for what in ("params", "buffers") if len(spec.buffers) else ("params",):
            rows = _read_or_split(zoo, block, what, report)
            for i, row in rows:
                if not valid_rows(row, what):
                    report.problems.append(Problem(str(zoo.file_of(i)), int(i),
                                                   f"{what} hold NaN or infinite values"))
        report.checked += block.size


def valid_rows(rows: np.ndarray, what: str) -> np.ndarray:
    """Weights must be finite; a buffer may hold -inf or inf (an attention mask), never NaN."""
    if what == "params":
        return np.isfinite(rows).all(axis=-1)
    return ~np.isnan(rows).any(axis=-1)


def _read_or_split(zoo, block, what, report):
    read = zoo.params if what == "params" else zoo.buffers
    try:
        return list(zip(block, read(block), strict=True))
    except ZooCorruptionError:
        pass
    rows = []
    for i in block:
        try:
            rows.append((i, read([i])[0]))
        except ZooCorruptionError as err:
            report.problems.append(Problem(err.path, int(i), f"{what} fail their checksum"))
    return rows


def info(path: str | os.PathLike) -> dict:
    """Architectures, model counts and the range of every numeric metadata column."""
    with Zoo(path) as zoo:
        meta = zoo.metadata()
        archs = []
        for arch in zoo.archs:
            spec = zoo.spec(arch)
            archs.append({"id": arch, "models": int((meta["arch"] == arch).sum()),
                          "params": spec.num_params, "buffers": len(spec.buffers),
                          "nodes": spec.num_nodes, "edges": spec.num_edges})
        columns = {}
        for name, values in meta.items():
            if name == "arch":
                continue
            if values.dtype.kind in "fi" and values.size:
                finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values
                if finite.size:
                    columns[name] = {"min": float(finite.min()), "max": float(finite.max()),
                                     "mean": float(finite.mean())}
            elif values.dtype == object:
                columns[name] = {"values": sorted(set(map(str, values)))[:10]}
        return {"path": str(path), "models": len(zoo), "runs": len(set(meta["run_id"])),
                "files": len(zoo.parts), "recipe": zoo.recipe.get("name"), "archs": archs,
                "columns": columns, "noise_ceiling": zoo.noise_ceiling}
