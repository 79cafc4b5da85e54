"""Free space, checked before a zoo file is written.

HDF5 does not fail cleanly when the disk fills in the middle of a write (a segmentation fault
while closing the file, a temporary file left behind), so nothing is started that does not fit:
:func:`ensure_space` refuses, with one line naming the path and the free space, a write whose
estimated size (with room for HDF5's own structures) exceeds what the disk has.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from weightspace.errors import ZooWriteError

# HDF5's structures (chunk index, checksums, attributes) on top of the raw bytes, and a
# reserve left free for everything else on the disk.
OVERHEAD, RESERVE = 1.25, 4 << 20


def _existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path.cwd()


def free_bytes(path: str | os.PathLike) -> int:
    """Bytes free on the disk that holds (or will hold) ``path``."""
    return shutil.disk_usage(_existing(Path(path).absolute())).free


def ensure_space(path: str | os.PathLike, nbytes: int) -> None:
    """Raise :class:`ZooWriteError` unless about ``nbytes`` of data fit at ``path``."""
    need = int(nbytes * OVERHEAD) + RESERVE
    free = free_bytes(path)
    if free < need:
        raise ZooWriteError(f"{path}: not enough disk space (needs about {need / 2**20:.1f} "
                            f"MiB, {free / 2**20:.1f} MiB free); free some space or write "
                            f"elsewhere (out=...), then run the same command again: finished "
                            f"runs are kept")


def is_no_space(err: BaseException) -> bool:
    """Whether ``err`` (an OSError, or h5py's RuntimeError from a failed write) means the
    disk is full."""
    return getattr(err, "errno", None) == errno.ENOSPC or "No space left" in str(err)
