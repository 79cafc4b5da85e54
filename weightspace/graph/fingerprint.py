"""The cache key of a network's architecture: what decides its GraphSpec without tracing.

:meth:`GraphSpec.from_module` traces a network once per architecture and looks later networks
up by this key. It must change whenever the traced graph could: the class, the module tree
(``repr``), every submodule's plain attributes (which ``repr`` may leave out and ``forward`` may
read, such as an activation passed in as a function), the parameter and buffer shapes (and
which parameters are tied), the example inputs and the graph options. Two networks that differ
only in weight values share it.
"""

from __future__ import annotations

import hashlib
import json

from torch import Tensor, nn

from weightspace.graph.shared_weights import parameter_aliases


def _code_of(value) -> str:
    """What a non-module attribute contributes to the cache key: a function's code (two
    lambdas differ), a plain value's repr, else its type."""
    code = getattr(value, "__code__", None)
    if code is not None:
        return hashlib.sha256(code.co_code + repr(code.co_consts).encode()).hexdigest()[:16]
    if callable(value):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}" \
               f"{type(value).__qualname__}"
    if isinstance(value, bool | int | float | str | tuple | type(None)):
        return repr(value)
    return type(value).__qualname__


def _attributes(model: nn.Module) -> list:
    """The plain attributes of every submodule (functions, flags, sizes): what ``repr`` may
    leave out and ``forward`` may read, e.g. an activation passed in as a function."""
    return [(path, sorted((k, _code_of(v)) for k, v in vars(m).items()
                          if not k.startswith("_") and k != "training"
                          and not isinstance(v, Tensor | nn.Module)))
            for path, m in model.named_modules()]


def module_fingerprint(model: nn.Module, inputs: tuple, kernel_edges: str, canvas) -> str:
    """The cache key (module docstring) of ``model`` traced with ``inputs``."""
    key = {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "repr": repr(model),
        "attributes": _attributes(model),
        "params": [(n, list(p.shape), str(p.dtype)) for n, p in model.named_parameters()],
        "tied": sorted(parameter_aliases(model).items()),
        "buffers": [(n, list(b.shape), str(b.dtype)) for n, b in model.named_buffers()],
        "inputs": [(list(x.shape), str(x.dtype)) for x in inputs],
        "kernel_edges": kernel_edges,
        "canvas": list(canvas) if canvas else None,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
