"""The rule registry: how each module, function and method becomes node sets and edges.

A module rule is called as ``rule(reader, module, path, *args, **kwargs)`` and a function or
method rule as ``rule(reader, *args, **kwargs)``, with every fx value replaced by its descriptor
(``weightspace.graph.values``). A rule returns the descriptor of the result. Register new ones
with :func:`register_module` / :func:`register_function` / :func:`register_method`.

Layers and their graphs (``W`` a weight, ``b`` a bias, ``->`` an edge block):

- ``Linear``: ``in -> out`` with features ``W[o, i]``, node bias ``b[o]``; after a flatten of a
  ``C x h x w`` map, one edge per channel pair carrying the ``h x w`` block of ``W``;
- ``Conv1d/2d``: one edge per channel pair (within a group) carrying the kernel;
- ``BatchNorm/LayerNorm/GroupNorm``: a new set tied to its input, diagonal edges ``gamma``, node
  features ``beta``, running mean and variance;
- ``x + y`` of two feature tensors: a new set tied to both, identity edges from each;
- ``x + p`` for a parameter ``p``: per-channel -> node bias; with a token axis (positional
  embedding) -> one-hot position nodes with edges ``p[t, c]``;
- ``cat([cls, x], tokens)``: a class token is a one-hot node with edges ``cls[c]``;
- ``cat(xs, features)``: no node set of its own; a layer reading it connects each part's
  nodes to its weight columns (``DenseEdges.in_offset``), norms and activations act on each
  part, so every part keeps its own permutation;
- ``MultiheadAttention`` (and timm's fused-qkv ``Attention``): sets Q, K, V (edges typed apart,
  heads as permutation blocks, constant Q_j -> K_j and within-head K -> V edges) and the
  output projection V -> out; LeViT's attention (timm) the same, its Q, K, V rows read head by
  head, with one node per head for its learned attention biases;
- ``Embedding``: one-hot vocabulary nodes -> features, edges ``W[v, c]``;
- ``TransformerEncoder(Layer)``, ``TransformerDecoder(Layer)``, ``Transformer``: traced through a
  forward of traceable operations (:func:`register_forward`), which the rules above then read;
- activations are recorded on the set they act on; dropout, pooling, reshapes pass through.
"""


from weightspace.graph.rules import (
    activation,  # noqa: F401 -- registers its rules
    arithmetic,  # noqa: F401 -- registers its rules
    attention,  # noqa: F401 -- registers its rules
    dense,  # noqa: F401 -- registers its rules
    levit,  # noqa: F401 -- registers its rules
    norm,  # noqa: F401 -- registers its rules
    shape,  # noqa: F401 -- registers its rules
    transformer,  # noqa: F401 -- registers its forwards
)
from weightspace.graph.rules.registry import (
    function_rule,
    has_module_rule,
    module_rule,
    reads_concat,
    register_forward,
    register_function,
    register_function_name,
    register_method,
    register_module,
    register_module_name,
    supported_base,
    supported_names,
    traced_forward,
)

__all__ = ["function_rule", "has_module_rule", "module_rule", "reads_concat",
           "register_forward", "register_function", "register_function_name",
           "register_method", "register_module",
           "register_module_name", "supported_base", "supported_names", "traced_forward"]
