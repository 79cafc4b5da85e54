"""Pre-LN transformer blocks, a small encoder, and a Vision Transformer (Dosovitskiy et al.)."""

from __future__ import annotations

import torch
from torch import nn


class PreLNBlock(nn.Module):
    """``x + attn(ln1(x))`` then ``x + mlp(ln2(x))`` with a GELU MLP of ``mlp_ratio * dim``.

    Args:
        dim: the model width.
        heads: attention heads.
        mlp_ratio: the MLP's hidden width over ``dim``.
        dropout: attention and MLP dropout.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TransformerEncoder(nn.Module):
    """Token ids -> embeddings + learned positions -> pre-LN blocks -> mean pool -> classes.

    Args:
        vocab: the number of token ids.
        dim: the model width.
        heads: attention heads.
        depth: blocks.
        length: the sequence length (learned positions).
        classes: outputs.
    """

    def __init__(self, vocab: int = 20, dim: int = 16, heads: int = 4, depth: int = 2,
                 length: int = 6, classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.02)
        self.blocks = nn.Sequential(*[PreLNBlock(dim, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        self.length = length

    def forward(self, tokens):
        x = self.blocks(self.embed(tokens) + self.pos)
        return self.head(self.norm(x).mean(dim=1))

    def example_inputs(self):
        return (torch.zeros(2, self.length, dtype=torch.long),)


class TinyViT(nn.Module):
    """Patch embedding (a strided conv), class token, positions, pre-LN blocks, head on the
    class token.

    Args:
        image_size: the side of the square input images.
        patch: the side of a patch.
        in_channels: channels of the input images.
        dim: the model width.
        depth: blocks.
        heads: attention heads.
        classes: outputs.
        mlp_ratio: the MLP's hidden width over ``dim``.
    """

    def __init__(self, image_size: int = 16, patch: int = 4, in_channels: int = 3,
                 dim: int = 32, depth: int = 2, heads: int = 4, classes: int = 10,
                 mlp_ratio: int = 4):
        super().__init__()
        self.patch_embed = nn.Conv2d(in_channels, dim, patch, stride=patch)
        n_patches = (image_size // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n_patches + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[PreLNBlock(dim, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)
        self.in_channels, self.image_size = in_channels, image_size

    def forward(self, images):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])

    def example_inputs(self):
        return (torch.zeros(2, self.in_channels, self.image_size, self.image_size),)


def vit_tiny(classes: int = 1000) -> TinyViT:
    """ViT-Tiny/16 on 224x224 images: 192 wide, 12 blocks of 3 heads (5.7M parameters)."""
    return TinyViT(224, 16, 3, 192, 12, 3, classes)
