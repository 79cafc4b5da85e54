"""weightspace: learning on the weights of neural networks.

``import weightspace`` loads the graph layer alone; :func:`predict`, :func:`generate` and
:func:`prune` (from :mod:`weightspace.api`), :func:`align`, :func:`distance` and :func:`merge`
(from :mod:`weightspace.alignment`; the package is not named ``align`` so that the verb keeps
the name) load the rest on first use.
"""

from weightspace.errors import SpecMismatchError, UnsupportedModuleError
from weightspace.graph import GraphSpec, from_graph, random_symmetry, to_graph

__version__ = "0.1.0"

_API = {"generate": "weightspace.api", "predict": "weightspace.api", "prune": "weightspace.api",
        "align": "weightspace.alignment", "distance": "weightspace.alignment",
        "merge": "weightspace.alignment"}


def __getattr__(name: str):
    # The verbs of weightspace.api and weightspace.alignment, themselves (their signatures and
    # docstrings), imported on first use so that `import weightspace` stays light.
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'weightspace' has no attribute {name!r}")


__all__ = [
    "GraphSpec",
    "SpecMismatchError",
    "UnsupportedModuleError",
    "align",
    "distance",
    "from_graph",
    "generate",
    "merge",
    "predict",
    "prune",
    "random_symmetry",
    "to_graph",
]
