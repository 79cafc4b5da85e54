"""The shared vocabulary of parameter graphs: node types, edge types and activations.

The integer codes are part of the on-disk format (zoos store graphs' specs), so codes are only
ever appended, never renumbered. Every architecture uses the same codes, which is what lets PyG
batch graphs of different architectures together.
"""

from __future__ import annotations

from enum import IntEnum


class NodeType(IntEnum):
    """What a node is: its layer kind (the graph's node-type feature; codes are on disk)."""

    INPUT = 0  # a feature of the network's input
    LINEAR = 1  # output neuron of a Linear layer
    CONV = 2  # output channel of a convolution
    NORM = 3  # output of a BatchNorm / LayerNorm / GroupNorm (a diagonal layer)
    ADD = 4  # output of a residual add (or a concat along tokens)
    ATTN_Q = 5  # query feature of an attention layer
    ATTN_K = 6  # key feature
    ATTN_V = 7  # value feature
    ATTN_OUT = 8  # output projection of an attention layer
    EMBEDDING = 9  # output feature of an Embedding
    TOKEN = 10  # a one-hot input: a vocabulary entry, a position, a class token
    GATE = 11  # output of a product of two feature tensors (squeeze-and-excitation, GLU)
    ATTN_HEAD = 12  # one node per attention head, holding its learned attention biases


class EdgeType(IntEnum):
    """What an edge is: the kind of weight it carries (codes are on disk)."""

    LINEAR = 0
    CONV = 1
    FLATTEN = 2  # linear layer reading a flattened conv map: the spatial weights are the feature
    NORM = 3  # the diagonal scale of a norm layer
    RESIDUAL = 4  # identity edge into an add
    ATTN_Q = 5
    ATTN_K = 6
    ATTN_V = 7
    ATTN_OUT = 8
    ATTN_QK = 9  # ties query j to key j of the same head (constant 1)
    ATTN_KV = 10  # connects keys and values of the same head (constant 1)
    EMBEDDING = 11  # vocabulary entry -> feature
    POSITION = 12  # learned positional embedding: position -> feature
    CLASS_TOKEN = 13  # learned token concatenated to the sequence -> feature
    BIAS_ADD = 14  # identity edge of a tensor added as a per-channel bias
    GATE = 15  # identity edge into a product of two feature tensors
    SUBTRACT = 16  # identity edge of the subtracted operand of a difference (weight -1)
    CONV_TRANSPOSE = 17  # transposed convolution (upsampling): the kernel W[in, out]
    TOKEN_MIX = 18  # linear map along the tokens, shared by every channel (MLP-Mixer)
    ATTN_BIAS = 19  # learned attention bias of a key position, per head: position -> head
    ATTN_HEAD = 20  # constant 1: an attention head's node -> each of its keys


class Activation(IntEnum):
    """The elementwise activation applied to a node set's values (codes are on disk)."""

    NONE = 0
    RELU = 1
    GELU = 2
    SILU = 3
    TANH = 4
    SIGMOID = 5
    LEAKY_RELU = 6
    SINE = 7
    ELU = 8
    SOFTPLUS = 9
    RELU6 = 10
    HARDTANH = 11  # symmetric clipping, min = -max
    HARDSWISH = 12
    HARDSIGMOID = 13
    MISH = 14
    GELU_TANH = 15  # GELU's tanh approximation


# f(-x) = -f(x): flipping the sign of a neuron's inputs and outputs preserves the function.
ODD_ACTIVATIONS = frozenset({Activation.NONE, Activation.TANH, Activation.SINE,
                             Activation.HARDTANH})
# f(a x) = a f(x) for a > 0: scaling a neuron's inputs by a and its outputs by 1/a preserves it.
POSITIVE_HOMOGENEOUS_ACTIVATIONS = frozenset(
    {Activation.NONE, Activation.RELU, Activation.LEAKY_RELU}
)
