"""weightspace: learning on the weights of neural networks."""

from weightspace.errors import SpecMismatchError, UnsupportedModuleError
from weightspace.graph import GraphSpec, from_graph, random_symmetry, to_graph

__version__ = "0.1.0"

__all__ = [
    "GraphSpec",
    "SpecMismatchError",
    "UnsupportedModuleError",
    "from_graph",
    "random_symmetry",
    "to_graph",
]
