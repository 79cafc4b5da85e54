"""Expected failures as one line on stderr, for the command line and the scripts.

A config typo, a bad value, a missing or damaged file or an unsupported module is the user's to
fix, so it is reported as ``weightspace: error: <what is wrong and what to do>`` with exit
status 2 (usage: the command line or the config) or 1 (data: files, networks, values met while
running). ``--traceback`` on the command line, or ``WEIGHTSPACE_TRACEBACK=1``, shows the full
stack instead, for debugging. Anything else is a bug in weightspace: one line that says so,
exit 1.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from weightspace.errors import ConfigError

USAGE, DATA, INTERRUPTED = 2, 1, 130
# Lines of Hydra's and OmegaConf's messages that repeat what the first lines say.
NOISE = ("full_key:", "object_type=", "reference_type=", "Config search path",
         "provider=", "See https://hydra.cc")


def traceback_wanted() -> bool:
    return os.environ.get("WEIGHTSPACE_TRACEBACK", "") not in ("", "0")


def _usage_types() -> tuple[type[BaseException], ...]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return ConfigError, HydraException, OmegaConfBaseException


def one_line(err: BaseException) -> str:
    """The message of ``err`` (and of the error that caused it, when that says more) on one
    line, without the parts that only repeat it."""
    parts = []
    for e in (err, err.__cause__):
        if e is None:
            continue
        text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        lines = [line.strip() for line in str(text).splitlines()]
        for line in lines:
            if line.startswith("Config search path"):
                break
            if line and not line.startswith(NOISE) and line not in parts:
                parts.append(line)
    message, listing = "", False
    for part in parts:  # a list after "...:" (Hydra's available options) joins with commas
        sep = " " if message.endswith((".", ":")) else (", " if listing else "; ")
        message = f"{message}{sep}{part}" if message else part
        listing = listing or part.endswith(":")
    return message or type(err).__name__


def exit_status(err: BaseException) -> int:
    if isinstance(err, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(err, _usage_types()):
        return USAGE
    return DATA


def report(err: BaseException) -> int:
    """Print ``err`` as one line on stderr; its exit status."""
    status = exit_status(err)
    if isinstance(err, KeyboardInterrupt):
        message = "interrupted (a zoo build resumes where it stopped when run again)"
    elif isinstance(err, (*_usage_types(), OSError, ValueError, TypeError, LookupError,
                          ImportError)):
        message = one_line(err)
    else:
        message = (f"internal error ({type(err).__name__}: {one_line(err)}); rerun with "
                   f"--traceback and report it")
    print(f"weightspace: error: {message}", file=sys.stderr)
    return status


def call_reporting_errors(fn: Callable[[], int | None], traceback: bool = False) -> int:
    """``fn()``'s exit status, or an expected failure reported on one line (module
    docstring); with ``traceback`` (or ``WEIGHTSPACE_TRACEBACK=1``) errors propagate."""
    if traceback or traceback_wanted():
        return fn() or 0
    try:
        return fn() or 0
    except SystemExit:
        raise
    except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - reported, not swallowed
        return report(err)
