"""One writer per zoo: a build holds an exclusive lock on its output while it runs.

Two builds writing one zoo would both train every run and leave duplicates for the reader to
choose between; the second is refused instead, with one line naming the lock. Each rank of a
multi-process build (``rank``/``world``, torchrun, local workers) locks its own share, so ranks
still build one zoo together. The lock is ``flock`` on a file beside the zoo: released by the
operating system when the process ends, however it ends, so a killed build never blocks the
next.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from weightspace.errors import ZooWriteError


def lock_path(out: str | os.PathLike, rank: int = 0, world: int = 1) -> Path:
    out = Path(out)
    tail = ".lock" if world == 1 else f".rank{rank}-of-{world}.lock"
    return out.with_name(out.name + tail)


@contextmanager
def build_lock(out: str | os.PathLike, rank: int = 0, world: int = 1) -> Iterator[Path]:
    """Hold the lock of ``out`` (of one rank's share when ``world > 1``) for the block."""
    path = lock_path(out, rank, world)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ZooWriteError(f"{out}: another build is writing this zoo ({holder} holds "
                            f"{path}); wait for it to finish, or build into another "
                            f"out=...") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)  # while still held: no clutter beside the zoo
        os.close(fd)
