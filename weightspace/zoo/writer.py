"""``ZooWriter``: add models to a zoo crash-safely, resume, and merge shards into one file.

A build writes each finished group of runs as a shard (``<zoo>.parts/shard-*.h5``), each
written atomically (see :mod:`weightspace.zoo.format`). :meth:`ZooWriter.finalize` merges the
main file and every shard into a new file that atomically replaces the main file, then removes
the shards. At every moment the zoo (main file plus finished shards) is complete and readable:
a build killed at any point loses only the runs it had in flight, and the next build skips
every run already stored.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from weightspace.graph.spec import GraphSpec
from weightspace.zoo.format import (
    KEY_COLUMNS,
    TMP_MARK,
    atomic_h5,
    create_arch,
    write_root_attrs,
)
from weightspace.zoo.merge import merge
from weightspace.zoo.reader import Zoo, shard_dir, zoo_parts
from weightspace.zoo.space import ensure_space


class ZooWriter:
    """Writes models into the zoo at ``path`` (see the module docstring).

    Args:
        path: the zoo file (created, or appended to).
        recipe: the build's config, stored as the zoo's ``recipe`` attribute.
    """

    def __init__(self, path: str | os.PathLike, recipe: Mapping | None = None):
        self.path = Path(path)
        self.recipe = dict(recipe or {})

    def stored_runs(self) -> set[int]:
        """Run ids with models already in the zoo (main file or finished shards)."""
        if not zoo_parts(self.path):
            return set()
        with Zoo(self.path) as zoo:
            return set(int(r) for r in zoo.metadata()["run_id"])

    def write(self, spec: GraphSpec, params: torch.Tensor | np.ndarray,
              meta: Mapping[str, Sequence], buffers: torch.Tensor | np.ndarray | None = None
              ) -> Path:
        """Store models of one architecture as a new shard; returns the shard's path.

        ``params`` is ``[N, P]`` in the spec's flat layout, ``buffers`` ``[N, Q]``; ``meta``
        maps column names to ``N`` values and must hold ``run_id``, ``seed``, ``epoch`` and
        ``step``. Non-finite weights are refused here, before they reach the zoo.
        """
        params = _numpy(params)
        buffers = None if buffers is None else _numpy(buffers).astype(np.float64, copy=False)
        if params.ndim != 2 or params.shape[1] != spec.num_params:
            raise ValueError(f"params must be [N, {spec.num_params}], got {list(params.shape)}")
        missing = [k for k in KEY_COLUMNS if k not in meta]
        if missing:
            raise ValueError(f"metadata lacks the key columns {missing}")
        bad = np.nonzero(~np.isfinite(params).all(axis=1))[0]
        if bad.size:
            runs = sorted({int(meta["run_id"][i]) for i in bad})
            raise ValueError(f"non-finite weights in runs {runs}: not stored")
        name = f"shard-{int(np.min(meta['run_id'])):08d}-{uuid.uuid4().hex[:12]}.h5"
        target = shard_dir(self.path) / name
        ensure_space(target, params.nbytes + (0 if buffers is None else buffers.nbytes)
                     + 16 * len(params) * len(meta))
        with atomic_h5(target) as f:
            write_root_attrs(f, self.recipe)
            create_arch(f, json.dumps(spec.to_dict()), params, buffers,
                        {k: np.asarray(v) for k, v in meta.items()})
        return target

    def finalize(self) -> Path:
        """Merge the main file and all shards into the main file; remove the shards."""
        parts = zoo_parts(self.path)
        d = shard_dir(self.path)
        if parts and parts != [self.path]:
            merge([self.path], self.path, recipe=self.recipe or None)
        self.remove_temporaries()
        if d.is_dir():
            for p in d.glob("*.h5"):
                p.unlink()
            d.rmdir()
        return self.path

    def remove_temporaries(self):
        """Remove temporary files left by a writer that was killed (or ran out of space)
        mid-write. Only for the zoo's one writer: another's temporary may be in use."""
        d = shard_dir(self.path)
        stale = list(self.path.parent.glob(f"{self.path.name}{TMP_MARK}*"))
        stale += list(d.glob(f"*{TMP_MARK}*")) if d.is_dir() else []
        for p in stale:
            p.unlink(missing_ok=True)


def _numpy(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
