"""Parameter graphs: any traceable PyTorch network <-> graph, exactly, with its symmetries."""

from weightspace.graph.convert import from_graph, to_graph
from weightspace.graph.spec import GraphSpec, default_example_inputs
from weightspace.graph.symmetry import (
    PermutationGroup,
    SymmetryTransform,
    random_symmetry,
    sample_symmetries,
    sample_symmetry,
)
from weightspace.graph.vocab import Activation, EdgeType, NodeType

__all__ = [
    "Activation",
    "EdgeType",
    "GraphSpec",
    "NodeType",
    "PermutationGroup",
    "SymmetryTransform",
    "default_example_inputs",
    "from_graph",
    "random_symmetry",
    "sample_symmetries",
    "sample_symmetry",
    "to_graph",
]
