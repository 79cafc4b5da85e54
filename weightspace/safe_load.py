"""``load_tensors``: read a ``.pt``/``.pth`` file without ever unpickling code.

Every file weightspace reads with ``torch.load`` goes through here, with ``weights_only=True``:
tensors, numbers, strings and containers only. A file that holds anything else (a pickled
object, a file that is not a torch file at all) is refused with one line naming the file,
rather than torch's advice to retry with ``weights_only=False``, which would run whatever the
file contains.
"""

from __future__ import annotations

import os

import torch


def load_tensors(path: str | os.PathLike, map_location="cpu"):
    """The contents of ``path`` loaded with ``torch.load(..., weights_only=True)``."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, ...: all mean "not ours"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        if "Weights only load failed" in reason:
            reason = "it holds objects other than tensors and plain data"
        raise ValueError(f"{path}: not a checkpoint of tensors ({reason[:120]}); nothing in it "
                         f"was unpickled or run") from None
