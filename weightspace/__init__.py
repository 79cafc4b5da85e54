"""weightspace: learning on the weights of neural networks."""

from weightspace.errors import SpecMismatchError, UnsupportedModuleError
from weightspace.graph import GraphSpec, from_graph, random_symmetry, to_graph

__version__ = "0.1.0"


def predict(checkpoint, models, **kwargs):
    """A trained metanetwork's output for each network: see
    :func:`weightspace.inference.predict` (imported on first use: ``import weightspace`` stays
    light)."""
    from weightspace.inference import predict as _predict

    return _predict(checkpoint, models, **kwargs)



__all__ = [
    "GraphSpec",
    "SpecMismatchError",
    "UnsupportedModuleError",
    "from_graph",
    "predict",
    "random_symmetry",
    "to_graph",
]
