"""torch's own transformer modules are read through traceable forwards: a GPT-style model
(``nn.TransformerEncoder``, causal float mask, tied embedding and head) and an encoder-decoder
``nn.Transformer`` convert exactly and keep their function under their symmetries."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import weightspace as ws
from weightspace.graph.vocab import NodeType
from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function

VOCAB, WIDTH, HEADS, TOKENS = 30, 16, 4, 8


class GPT(nn.Module):
    """Decoder-only language model on ``nn.TransformerEncoder`` with a causal ``-inf`` mask
    buffer and the embedding matrix tied to the output head."""

    def __init__(self, norm_first: bool, activation="relu", layers: int = 2):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, WIDTH)
        self.pos = nn.Parameter(torch.randn(TOKENS, WIDTH) * 0.1)
        layer = nn.TransformerEncoderLayer(WIDTH, HEADS, 32, dropout=0.1, batch_first=True,
                                           norm_first=norm_first, activation=activation)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, VOCAB, bias=False)
        self.head.weight = self.tok.weight
        self.register_buffer("mask", torch.triu(torch.full((TOKENS, TOKENS), float("-inf")), 1))

    def forward(self, ids):
        x = self.tok(ids) + self.pos
        return self.head(self.norm(self.blocks(x, mask=self.mask, is_causal=True)))


IDS = torch.randint(0, VOCAB, (2, TOKENS), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-LN", "post-LN"])
def test_gpt_with_tied_head_and_causal_mask_round_trips(norm_first):
    model = GPT(norm_first).eval()
    graph = ws.to_graph(model, IDS)
    # the mask is no weight: it travels with the buffers, -inf and all
    assert torch.isinf(graph.extra_buffers).sum() == TOKENS * (TOKENS - 1) // 2
    back = ws.from_graph(graph, GPT(norm_first)).eval()
    assert back.head.weight is back.tok.weight
    torch.testing.assert_close(back(IDS), model(IDS), rtol=0, atol=0)
    assert_round_trip(model, IDS)
    assert_symmetries_preserve_function(model, IDS)


def test_encoder_layers_are_read_as_attention_norms_and_linears():
    model = GPT(norm_first=True, activation="gelu", layers=3).eval()
    spec = ws.GraphSpec.from_module(model, IDS)
    names = [s.name for s in spec.blueprint.sets]
    for i in range(3):
        assert {f"blocks.layers.{i}.self_attn.q", f"blocks.layers.{i}.linear1",
                f"blocks.layers.{i}.norm2"} <= set(names)
    assert sum(s.node_type == NodeType.ATTN_OUT for s in spec.blueprint.sets) == 3
    # one residual stream: the embedding, every block's output and the final norm move together
    stream = next(g for g in spec.permutation_groups if names.index("tok") in g.sets)
    assert names.index("norm") in stream.sets and not stream.fixed
    assert_symmetries_preserve_function(model, IDS)


def test_key_padding_masks_pass_through():
    layer = nn.TransformerEncoderLayer(WIDTH, HEADS, 32, dropout=0.0, batch_first=True)
    model = Padded(nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)).eval()
    x = torch.randn(4, TOKENS, WIDTH)  # the padding buffer's batch, as random_inputs draws
    assert_round_trip(model, x)
    assert_symmetries_preserve_function(model, x)


class Padded(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder, self.out = encoder, nn.Linear(WIDTH, 3)
        padding = torch.zeros(4, TOKENS, dtype=torch.bool)
        padding[1, -3:] = True
        self.register_buffer("padding", padding)

    def forward(self, x):
        return self.out(self.encoder(x, src_key_padding_mask=self.padding).mean(1))


class Seq2Seq(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Transformer(WIDTH, HEADS, 1, 2, 32, dropout=0.0, batch_first=True)
        self.out = nn.Linear(WIDTH, 5)

    def forward(self, src, tgt):
        return self.out(self.net(src, tgt))


def test_encoder_decoder_transformer_round_trips():
    model = Seq2Seq().eval()
    inputs = (torch.randn(2, 6, WIDTH), torch.randn(2, 4, WIDTH))
    assert_round_trip(model, inputs)
    assert_symmetries_preserve_function(model, inputs)
