"""weightspace: learning on the weights of neural networks.

``import weightspace`` loads the graph layer alone; :func:`predict`, :func:`generate` and
:func:`prune` (from :mod:`weightspace.api`) load the rest on first use.
"""

from weightspace.errors import SpecMismatchError, UnsupportedModuleError
from weightspace.graph import GraphSpec, from_graph, random_symmetry, to_graph

__version__ = "0.1.0"

_API = ("generate", "predict", "prune")


def __getattr__(name: str):
    # The verbs of weightspace.api, themselves (their signatures and docstrings), imported on
    # first use so that `import weightspace` stays light.
    if name in _API:
        import weightspace.api

        return getattr(weightspace.api, name)
    raise AttributeError(f"module 'weightspace' has no attribute {name!r}")


__all__ = [
    "GraphSpec",
    "SpecMismatchError",
    "UnsupportedModuleError",
    "from_graph",
    "generate",
    "predict",
    "prune",
    "random_symmetry",
    "to_graph",
]
