"""Errors a user can act on: each names the module path, the key, the file or the model index."""

from __future__ import annotations


class UnsupportedModuleError(TypeError):
    """A module or operation that the graph layer cannot read.

    Raised rather than guessing: a network is either read exactly or refused. The message names
    the qualified module path and its type, and lists what is supported.

    Args:
        path: the qualified module path (or fx node name) that cannot be read.
        kind: its type or operation, e.g. ``"LSTM"``.
        reason: why it is refused.
        supported: what is supported instead, listed in the message.
    """

    def __init__(self, path: str, kind: str, reason: str, supported: list[str] | None = None):
        self.path = path or "<root>"
        self.kind = kind
        self.reason = reason
        message = f"cannot read {self.path!r} ({kind}): {reason}"
        if supported:
            message += "\nsupported: " + ", ".join(sorted(supported))
        super().__init__(message)


class ConfigError(ValueError):
    """A config value or command-line option that cannot work (``trainer.epochs=-3``).

    The message names the key, the value given and what is accepted; the command line reports
    it as a usage error (exit status 2).
    """


class UnknownNameError(ConfigError, KeyError):
    """A name a config looks up in a registry (``model.name``, ``zoo.recipe``) that is not
    there; the message lists the known names."""


class ZooWriteError(OSError):
    """A zoo that cannot be written: no space left, no permission, another build writing it.

    The message names the path and what to do; nothing partial is left under a final name,
    and the build resumes when run again.
    """


class SpecMismatchError(ValueError):
    """A state dict, flat vector or graph that does not fit the GraphSpec it was given to."""


class ZooCorruptionError(OSError):
    """A zoo file whose data fails its checksum, is truncated, or does not fit its spec.

    Names the file and, where the damage can be located, the model index.

    Args:
        path: the zoo file.
        message: what is wrong.
        index: the model index where the damage is, when known.
    """

    def __init__(self, path, message: str, index: int | None = None):
        self.path = str(path)
        self.index = index
        where = f"{self.path}" + (f", model {index}" if index is not None else "")
        super().__init__(f"{where}: {message}")
