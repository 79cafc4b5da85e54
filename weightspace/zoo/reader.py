"""``Zoo``: read a model zoo -- its main file and any finished shards of a build in progress.

Models are indexed in one canonical order, sorted by ``(architecture, run_id, step)``, so an
index means the same model whether the zoo is still in shards or already merged. A model found
in several parts (a build killed after merging but before removing its shards) is read once;
``Zoo.duplicates`` lists the other copies, which ``verify`` and ``merge`` check are identical.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from weightspace.errors import ZooCorruptionError
from weightspace.graph.spec import GraphSpec
from weightspace.zoo.ceiling import noise_ceiling
from weightspace.zoo.dataset import ZooDataset
from weightspace.zoo.format import KEY_COLUMNS, SCHEMA_VERSION, TMP_MARK


def shard_dir(path: str | os.PathLike) -> Path:
    """Where a build writes the finished shards of the zoo at ``path``."""
    path = Path(path)
    return path.with_name(path.name + ".parts")


def zoo_parts(path: str | os.PathLike) -> list[Path]:
    """The main file (if any) and the finished shards (temporary files are never read)."""
    path = Path(path)
    parts = [path] if path.exists() else []
    d = shard_dir(path)
    if d.is_dir():
        parts += sorted(p for p in d.glob("*.h5") if TMP_MARK not in p.name)
    return parts


class Zoo:
    """A model zoo on disk (one path, or several to read as one).

    ``len(zoo)`` models; ``zoo.metadata()`` columns; ``zoo.params(indices)`` weight rows;
    ``zoo.dataset(...)`` a torch Dataset (see :mod:`weightspace.zoo.dataset`).

    Args:
        path: a zoo file, or several files (e.g. shards) read as one.
    """

    def __init__(self, path: str | os.PathLike | Sequence[str | os.PathLike]):
        paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
        self.paths = [Path(p) for p in paths]
        self.parts: list[Path] = [p for zp in self.paths for p in zoo_parts(zp)]
        if not self.parts:
            raise FileNotFoundError(f"no zoo at {', '.join(map(str, self.paths))}")
        self._files: dict[int, h5py.File] = {}
        self._matrices: dict[tuple[int, str, str], h5py.Dataset] = {}
        self._pid = os.getpid()
        self._specs: dict[str, GraphSpec] = {}
        self.spec_json: dict[str, str] = {}
        self._index()

    # ------------------------------------------------------------------ opening
    def _file(self, part: int) -> h5py.File:
        if self._pid != os.getpid():  # a DataLoader worker: h5py handles do not survive fork
            self._files, self._matrices, self._pid = {}, {}, os.getpid()
        f = self._files.get(part)
        if f is None:
            path = self.parts[part]
            try:
                f = h5py.File(path, "r")
            except FileNotFoundError:
                raise ZooCorruptionError(path, "the file went away (the zoo was merged while "
                                         "being read): open the zoo again") from None
            except OSError as err:
                raise ZooCorruptionError(path, f"not a readable HDF5 file, truncated or "
                                         f"corrupt ({err})") from None
            version = f.attrs.get("schema_version")
            if version is None or int(version) > SCHEMA_VERSION:
                found = "no schema version" if version is None else (
                    f"zoo schema version {int(version)}")
                raise ZooCorruptionError(path, f"{found}; this version of weightspace reads up "
                                         f"to {SCHEMA_VERSION}")
            self._files[part] = f
        return f

    def _matrix(self, part: int, arch: str, what: str) -> h5py.Dataset:
        """The ``params`` or ``buffers`` matrix of one architecture in one part, kept open:
        looking it up through the groups costs as much as reading a few rows."""
        key = (part, arch, what)
        ds = self._matrices.get(key) if self._pid == os.getpid() else None
        if ds is None:
            ds = self._matrices[key] = self._file(part)["archs"][arch][what]
        return ds

    def close(self):
        for f in self._files.values():
            f.close()
        self._files, self._matrices = {}, {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):  # pickled into DataLoader workers: paths only, no open handles
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    # ------------------------------------------------------------------ index
    def _read_column(self, part: int, ds: h5py.Dataset, name: str) -> np.ndarray:
        try:
            values = ds[()]
        except OSError as err:
            raise ZooCorruptionError(self.parts[part], f"metadata column {name!r} fails its "
                                     f"checksum ({err})") from None
        if values.dtype.kind in "SO":
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values],
                              dtype=object)
        return values

    def _index(self):
        seen: dict[tuple, tuple[int, int]] = {}
        entries = []  # (arch, run_id, step, part, row)
        # Rows whose key another row already holds: (key, (part, row) read, (part, row) not).
        self.duplicates: list[tuple[tuple, tuple[int, int], tuple[int, int]]] = []
        self._columns: dict[tuple[int, str], dict[str, np.ndarray]] = {}
        for part in range(len(self.parts)):
            f = self._file(part)
            for arch, g in f.get("archs", {}).items():
                self.spec_json.setdefault(arch, g.attrs["spec"])
                cols = {name: self._read_column(part, ds, name) for name, ds in g["meta"].items()}
                missing = [k for k in KEY_COLUMNS if k not in cols]
                if missing:
                    raise ZooCorruptionError(self.parts[part], f"architecture {arch} lacks "
                                             f"metadata columns {missing}")
                n = g["params"].shape[0]
                if any(len(v) != n for v in cols.values()):
                    raise ZooCorruptionError(self.parts[part], f"architecture {arch}: columns "
                                             f"and weights disagree on the number of models")
                self._columns[(part, arch)] = cols
                for row in range(n):
                    key = (arch, int(cols["run_id"][row]), int(cols["step"][row]))
                    if key in seen:
                        self.duplicates.append((key, seen[key], (part, row)))
                    else:
                        seen[key] = (part, row)
                        entries.append((*key, part, row))
        entries.sort()
        self._entries = entries
        self.archs = sorted({e[0] for e in entries})
        self._arch_of = np.array([e[0] for e in entries], dtype=object)
        self._part_of = np.array([e[3] for e in entries], dtype=np.int64)
        self._row_of = np.array([e[4] for e in entries], dtype=np.int64)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return (f"Zoo({', '.join(map(str, self.paths))}: {len(self)} models, "
                f"{len(self.archs)} architectures, {len(self.parts)} files)")

    @property
    def recipe(self) -> dict:
        return self.recipe_of(0)

    def recipe_of(self, part: int) -> dict:
        """The config that built file ``part`` (its ``recipe`` attribute)."""
        text = self._file(part).attrs.get("recipe", "{}")
        try:
            recipe = json.loads(text)
        except (TypeError, ValueError) as err:
            raise ZooCorruptionError(self.parts[part], f"the recipe attribute is not JSON "
                                     f"({err})") from None
        if not isinstance(recipe, dict):
            raise ZooCorruptionError(self.parts[part], "the recipe attribute is not a mapping")
        return recipe

    def rows_equal(self, a: tuple[int, int], b: tuple[int, int], arch: str) -> bool:
        """Whether rows ``a`` and ``b`` (each ``(part, row)``) of ``arch`` hold the same
        weights and buffers."""
        for what in ("params", "buffers") if len(self.spec(arch).buffers) else ("params",):
            x = self._matrix(a[0], arch, what)[a[1]]
            y = self._matrix(b[0], arch, what)[b[1]]
            if x.shape != y.shape or not np.array_equal(x, y, equal_nan=True):
                return False
        return True

    @property
    def noise_ceiling(self) -> dict[str, float]:
        """Kendall tau between the two test halves of each metric measured on both (see
        :mod:`weightspace.zoo.ceiling`): stored in a single-file zoo, computed otherwise."""
        stored = self._file(0).attrs.get("noise_ceiling") if len(self.parts) == 1 else None
        return json.loads(stored) if stored else noise_ceiling(self.metadata())

    def spec(self, arch: str) -> GraphSpec:
        if arch not in self._specs:
            self._specs[arch] = GraphSpec.from_dict(json.loads(self.spec_json[arch]))
        return self._specs[arch]

    def metadata(self) -> dict[str, np.ndarray]:
        """Column name -> array over all models (canonical order), with an ``arch`` column.

        A column some parts lack is filled with NaN (floats), -1 (integers) or "" (text).
        """
        names = sorted({n for cols in self._columns.values() for n in cols})
        out = {"arch": self._arch_of.copy()}
        blocks = {key: np.nonzero((self._part_of == key[0]) & (self._arch_of == key[1]))[0]
                  for key in self._columns}
        for name in names:
            values = np.full(len(self), _missing_like(self._columns, name),
                             dtype=_column_dtype(self._columns, name))
            for key, positions in blocks.items():
                col = self._columns[key].get(name)
                if col is not None and positions.size:
                    values[positions] = col[self._row_of[positions]]
            out[name] = values
        return out

    def arch_of(self, index: int) -> str:
        return self._arch_of[index]

    def indices(self, arch: str | None = None) -> np.ndarray:
        all_ = np.arange(len(self))
        return all_ if arch is None else all_[self._arch_of == arch]

    def file_of(self, index: int) -> Path:
        """The file (the zoo itself or one of its shards) that stores model ``index``."""
        return self.parts[int(self._part_of[index])]

    def stored_widths(self, arch: str) -> dict[Path, dict[str, int]]:
        """For each file holding models of ``arch``: how many columns its ``params`` and
        ``buffers`` matrices have (0 where there is no buffer matrix), and their rows
        (``rows``, ``buffer_rows``: ``None`` without a buffer matrix)."""
        out = {}
        for part in np.unique(self._part_of[self._arch_of == arch]):
            ds = self._file(int(part))["archs"][arch]
            out[self.parts[int(part)]] = {
                **{what: ds[what].shape[1] if what in ds else 0 for what in ("params", "buffers")},
                "rows": ds["params"].shape[0],
                "buffer_rows": ds["buffers"].shape[0] if "buffers" in ds else None}
        return out

    # ------------------------------------------------------------------ weights
    def _read_rows(self, indices, what: str) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if indices.size == 0:
            raise IndexError("no models requested")
        if indices.min() < 0 or indices.max() >= len(self):
            raise IndexError(f"model index out of range 0..{len(self) - 1}")
        archs = set(self._arch_of[indices])
        if len(archs) > 1:
            raise ValueError(f"models of {len(archs)} architectures requested at once; read "
                             f"one architecture at a time (zoo.indices(arch))")
        arch = archs.pop()
        spec_q = len(self.spec(arch).buffers) if what == "buffers" else None
        if what == "buffers" and spec_q == 0:
            return np.zeros((indices.size, 0))
        out = None
        for part in np.unique(self._part_of[indices]):
            sel = np.nonzero(self._part_of[indices] == part)[0]
            rows = self._row_of[indices[sel]]
            ds = self._matrix(int(part), arch, what)
            if out is None:
                out = np.empty((indices.size, ds.shape[1]), dtype=ds.dtype)
            order = np.argsort(rows, kind="stable")
            rows_sorted, dst_sorted = rows[order], sel[order]
            # Runs of consecutive rows: one read each (duplicates repeat the previous row).
            breaks = np.nonzero(np.diff(rows_sorted) != 1)[0] + 1
            bounds = np.concatenate([[0], breaks, [rows_sorted.size]])
            for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
                start, stop = int(rows_sorted[a]), int(rows_sorted[b - 1]) + 1
                try:
                    block = ds[start:stop]
                except OSError as err:
                    bad = self._locate(int(part), arch, what, start, stop)
                    raise ZooCorruptionError(self.parts[int(part)], f"{what} fail their "
                                             f"checksum ({err})", bad) from None
                out[dst_sorted[a:b]] = block if b - a == stop - start else block[
                    rows_sorted[a:b] - start]
        return out

    def _locate(self, part: int, arch: str, what: str, start: int, stop: int) -> int | None:
        """The index of the first unreadable model among rows start..stop of one part."""
        ds = self._file(part)["archs"][arch][what]
        for row in range(start, stop):
            try:
                ds[row : row + 1]
            except OSError:
                hit = np.nonzero((self._part_of == part) & (self._row_of == row) &
                                 (self._arch_of == arch))[0]
                return int(hit[0]) if hit.size else None
        return None

    def params(self, indices) -> np.ndarray:
        """Weight rows ``[len(indices), P]`` (float32) of models of one architecture."""
        return self._read_rows(indices, "params")

    def buffers(self, indices) -> np.ndarray:
        """Buffer rows ``[len(indices), Q]`` (float64)."""
        return self._read_rows(indices, "buffers")

    def load(self, index: int, like: nn.Module) -> nn.Module:
        """Model ``index`` as a copy of ``like`` (which supplies the architecture)."""
        import copy

        from weightspace.graph.convert import load_flat

        spec = self.spec(self.arch_of(index))
        vec = torch.from_numpy(self.params([index])[0])
        buffers = torch.from_numpy(self.buffers([index])[0]) if len(spec.buffers) else None
        return load_flat(copy.deepcopy(like), spec, vec, buffers)

    def dataset(self, split: str = "train", target: str | None = None, arch: str | None = None,
                **kwargs):
        """A torch Dataset of flat weight vectors (see :class:`ZooDataset`)."""
        return ZooDataset(self, split=split, target=target, arch=arch, **kwargs)


def _column_dtype(columns: dict, name: str):
    for cols in columns.values():
        if name in cols:
            return cols[name].dtype
    return object


def _missing_like(columns: dict, name: str):
    kind = np.dtype(_column_dtype(columns, name)).kind
    return {"f": np.nan, "i": -1, "u": 0}.get(kind, "")
