"""The zoo file format (HDF5), and the one way any zoo file is ever written: atomically.

Layout of one file (a zoo, or a shard of one)::

    /                       attrs: schema_version, recipe (JSON), created_by
    /archs/<spec id>/       attrs: spec (JSON of GraphSpec.to_dict)
        params   (N, P) float32   resizable, chunked by rows, fletcher32 checksums
        buffers  (N, Q) float64   the same (absent when Q = 0)
        meta/<column>  (N,)       one 1-D dataset per metadata column, fletcher32:
                                  run_id, seed, epoch, step (int64), sampled hyperparameters
                                  and metrics (float64, int64 or UTF-8 strings)

Nothing is pickled: attributes hold JSON, strings are UTF-8. A file is written under a
temporary name, flushed and fsynced, then renamed over its final name, so a file with a final
name is always complete; a writer killed at any moment leaves at most a stray temporary file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from weightspace.errors import ZooWriteError
from weightspace.graph.spec import spec_id_of
from weightspace.zoo.space import free_bytes, is_no_space

SCHEMA_VERSION = 1
KEY_COLUMNS = ("run_id", "seed", "epoch", "step")
# Rows per chunk: about 16 KiB, and never more than one model for large networks, so that a
# checksum failure points at as few models as possible.
CHUNK_BYTES = 1 << 14
TMP_MARK = ".tmp-"


def rows_per_chunk(width: int, itemsize: int) -> int:
    return max(1, CHUNK_BYTES // max(1, width * itemsize))


@contextmanager
def atomic_h5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Open ``path`` for writing such that it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")
    try:
        try:
            with h5py.File(tmp, "w") as f:
                yield f
                f.flush()
        except (OSError, RuntimeError) as err:
            if is_no_space(err):  # the disk filled after ensure_space's check
                raise ZooWriteError(f"{path}: no space left on the device ({free_bytes(path)} "
                                    f"bytes free); free some space and run the same command "
                                    f"again") from None
            raise
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_root_attrs(f: h5py.File, recipe: Mapping | None, ceiling: Mapping | None = None):
    f.attrs["schema_version"] = SCHEMA_VERSION
    f.attrs["recipe"] = json.dumps(recipe or {}, sort_keys=True)
    f.attrs["created_by"] = "weightspace"
    if ceiling:  # see weightspace.zoo.ceiling
        f.attrs["noise_ceiling"] = json.dumps(dict(ceiling), sort_keys=True)


def _column_array(name: str, values) -> np.ndarray:
    arr = np.asarray(values)
    if name in KEY_COLUMNS:
        return arr.astype(np.int64)
    if arr.dtype.kind in "USO":
        # Fixed-length UTF-8, so that checksums cover text columns too.
        encoded = [str(v).encode() for v in arr.reshape(-1)]
        width = max([1, *(len(b) for b in encoded)])
        return np.array(encoded, dtype=f"S{width}").reshape(arr.shape)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        return arr.astype(np.float64)
    raise TypeError(f"metadata column of dtype {arr.dtype} cannot be stored")


def create_arch(f: h5py.File, spec_json: str, params: np.ndarray, buffers: np.ndarray | None,
                meta: Mapping[str, np.ndarray]) -> h5py.Group:
    """Write one architecture's rows (params [N, P], buffers [N, Q], columns [N])."""
    spec = json.loads(spec_json)
    g = f.require_group("archs").create_group(spec_id_of(spec))
    g.attrs["spec"] = spec_json
    n, p = params.shape
    g.create_dataset("params", data=params.astype(np.float32, copy=False),
                     maxshape=(None, p), chunks=(min(max(n, 1), rows_per_chunk(p, 4)), p),
                     fletcher32=True)
    q = sum(int(np.prod(b["shape"])) for b in spec["buffers"])
    if q:
        if buffers is None or buffers.shape != (n, q):
            raise ValueError(f"buffers must have shape ({n}, {q})")
        g.create_dataset("buffers", data=buffers.astype(np.float64, copy=False),
                         maxshape=(None, q), chunks=(min(max(n, 1), rows_per_chunk(q, 8)), q),
                         fletcher32=True)
    mg = g.create_group("meta")
    for name, values in meta.items():
        create_column(mg, name, values, n)
    return g


def create_column(group: h5py.Group, name: str, values, n: int) -> h5py.Dataset:
    """One checksummed metadata column of ``n`` values."""
    arr = _column_array(name, values)
    if arr.shape != (n,):
        raise ValueError(f"metadata column {name!r} has shape {arr.shape}, expected ({n},)")
    return group.create_dataset(name, data=arr, maxshape=(None,),
                                chunks=(min(max(n, 1), 4096),), fletcher32=True)

