"""``nn.Transformer`` and its encoder and decoder stacks, traced through.

Their own forwards take fused fast paths and check masks by comparing tensors, which torch.fx
cannot trace. The forwards below compute what the modules' slow (reference) paths compute, in
operations fx records: each layer becomes its attention, norm, linear and activation modules and
its residual adds, which the rules of those read. Masks and key-padding masks are passed on to
``MultiheadAttention`` untouched: they act along the token axis and never move a feature, so
they change no symmetry (a float ``-inf`` mask is a buffer, never an edge).

The layers' ``_sa_block``, ``_mha_block`` and ``_ff_block`` are torch's own slow-path pieces
(dropout, attention with ``need_weights=False``, the feed-forward), called as torch calls them.
"""

from __future__ import annotations

from torch import nn

from weightspace.graph.rules.registry import register_forward


@register_forward(nn.TransformerEncoderLayer)
def _encoder_layer(m, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
    x = src
    if m.norm_first:
        x = x + m._sa_block(m.norm1(x), src_mask, src_key_padding_mask, is_causal=is_causal)
        return x + m._ff_block(m.norm2(x))
    x = m.norm1(x + m._sa_block(x, src_mask, src_key_padding_mask, is_causal=is_causal))
    return m.norm2(x + m._ff_block(x))


@register_forward(nn.TransformerDecoderLayer)
def _decoder_layer(m, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                   memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
    x = tgt
    if m.norm_first:
        x = x + m._sa_block(m.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
        x = x + m._mha_block(m.norm2(x), memory, memory_mask, memory_key_padding_mask,
                             memory_is_causal)
        return x + m._ff_block(m.norm3(x))
    x = m.norm1(x + m._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
    x = m.norm2(x + m._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                 memory_is_causal))
    return m.norm3(x + m._ff_block(x))


# torch decides ``is_causal`` from the mask when it is None; with a mask given, attention uses
# the mask whatever the flag says, so passing False reads the same function.
@register_forward(nn.TransformerEncoder)
def _encoder(m, src, mask=None, src_key_padding_mask=None, is_causal=None):
    x = src
    for layer in m.layers:
        x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                  is_causal=bool(is_causal))
    return x if m.norm is None else m.norm(x)


@register_forward(nn.TransformerDecoder)
def _decoder(m, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
             memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
    x = tgt
    for layer in m.layers:
        x = layer(x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                  tgt_key_padding_mask=tgt_key_padding_mask,
                  memory_key_padding_mask=memory_key_padding_mask,
                  tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal)
    return x if m.norm is None else m.norm(x)


@register_forward(nn.Transformer)
def _transformer(m, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                 src_key_padding_mask=None, tgt_key_padding_mask=None,
                 memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                 memory_is_causal=False):
    memory = m.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                       is_causal=src_is_causal)
    return m.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                     tgt_key_padding_mask=tgt_key_padding_mask,
                     memory_key_padding_mask=memory_key_padding_mask,
                     tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)
