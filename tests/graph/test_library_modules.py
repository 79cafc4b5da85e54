"""Modules of other libraries, as they are written there (timm's norm subclasses with forwards
of their own, its fused-qkv attention, PoolFormer's pooling, torchvision's stochastic depth):
read exactly, with their symmetries, without importing the library."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import weightspace as ws
from weightspace.graph.vocab import EdgeType
from weightspace.testing import assert_round_trip, assert_symmetries_preserve_function


class LayerNorm2d(nn.LayerNorm):
    """A channels-first LayerNorm with a forward of its own (as timm writes it)."""

    def forward(self, x):
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias,
                         self.eps)
        return x.permute(0, 3, 1, 2)


class BatchNormAct2d(nn.BatchNorm2d):
    """BatchNorm and activation in one module, calling F.batch_norm itself."""

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                         self.training, self.momentum, self.eps)
        return F.silu(x)


class GroupNorm1(nn.GroupNorm):
    def __init__(self, channels):
        super().__init__(1, channels)

    def forward(self, x):
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class ConvNorms(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.norm1 = nn.Conv2d(3, 8, 3, padding=1), BatchNormAct2d(8)
        self.conv2, self.norm2 = nn.Conv2d(8, 8, 3, padding=1), LayerNorm2d(8)
        self.conv3, self.norm3 = nn.Conv2d(8, 6, 1), GroupNorm1(6)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = self.norm2(self.conv2(self.norm1(self.conv1(x))))
        return self.fc(self.norm3(self.conv3(F.gelu(x))).mean((2, 3)))


class Attention(nn.Module):
    """timm's ViT attention: one qkv Linear reshaped to [B, N, 3, H, D]."""

    def __init__(self, dim=16, num_heads=4, qkv_bias=True):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm, self.k_norm, self.norm = nn.Identity(), nn.Identity(), nn.Identity()
        self.gate = None
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, attn_mask=None):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.proj(self.norm(x.transpose(1, 2).reshape(B, N, C)))


Attention.__module__ = "timm.layers.attention"  # the class the rule is registered under


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.norm, self.attn = nn.Linear(5, 16), nn.LayerNorm(16), Attention()
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        x = self.embed(x)
        return self.head(x + self.attn(self.norm(x)))


class Pooling(nn.Module):
    """PoolFormer's token mixer, and a difference of two layers."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 1), nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
        self.fc = nn.Linear(8, 2)

    def forward(self, x):
        y = self.a(x) - self.b(x)
        return self.fc((y + (self.pool(y) - y)).mean((2, 3)))


def stochastic_depth(x, p: float, mode: str, training: bool = True):
    """torchvision's stochastic depth (the identity in eval mode), recorded by fx as a call."""
    if not training or p == 0.0:
        return x
    keep = torch.empty([x.shape[0]] + [1] * (x.dim() - 1)).bernoulli_(1 - p)
    return x * keep / (1 - p)


stochastic_depth.__module__ = "torchvision.ops.stochastic_depth"
torch.fx.wrap("stochastic_depth")


class MBConv(nn.Module):
    """EfficientNet's block: expand, depthwise, squeeze-and-excitation, project, and a
    residual through stochastic depth."""

    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.expand = nn.Sequential(nn.Conv2d(c, 4 * c, 1), nn.BatchNorm2d(4 * c), nn.SiLU())
        self.dw = nn.Sequential(nn.Conv2d(4 * c, 4 * c, 3, padding=1, groups=4 * c), nn.SiLU())
        self.se1, self.se2 = nn.Conv2d(4 * c, 2, 1), nn.Conv2d(2, 4 * c, 1)
        self.project = nn.Conv2d(4 * c, c, 1)
        self.fc = nn.Linear(c, 3)

    def forward(self, x):
        x = self.stem(x)
        h = self.dw(self.expand(x))
        h = h * torch.sigmoid(self.se2(F.silu(self.se1(h.mean((2, 3), keepdim=True)))))
        x = x + stochastic_depth(self.project(h), 0.2, "row", self.training)
        return self.fc(x.mean((2, 3)))


class LinearNorm(nn.Module):
    """LeViT's linear layer with a BatchNorm over all tokens (flatten, norm, reshape_as)."""

    def __init__(self):
        super().__init__()
        self.linear, self.bn, self.head = nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)

    def forward(self, x):
        h = self.linear(x)
        return self.head(F.hardswish(self.bn(h.flatten(0, 1)).reshape_as(h)))


class Mlp(nn.Module):
    """timm's Mlp: fc1, activation, dropout, fc2."""

    def __init__(self, features, hidden):
        super().__init__()
        self.fc1, self.act, self.drop = nn.Linear(features, hidden), nn.GELU(), nn.Dropout(0.1)
        self.fc2 = nn.Linear(hidden, features)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


class Mixer(nn.Module):
    """MLP-Mixer as timm writes it: a patch stem, blocks that mix the tokens with an Mlp on
    the transposed tensor and then the channels, a norm, a mean over tokens, a head."""

    def __init__(self, dim=6, tokens=16, token_hidden=5, blocks=2):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 2, 2)
        self.norms1 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(blocks))
        self.mlp_tokens = nn.ModuleList(Mlp(tokens, token_hidden) for _ in range(blocks))
        self.norms2 = nn.ModuleList(nn.LayerNorm(dim) for _ in range(blocks))
        self.mlp_channels = nn.ModuleList(Mlp(dim, 2 * dim) for _ in range(blocks))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, 3)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        for n1, tok, n2, ch in zip(self.norms1, self.mlp_tokens, self.norms2,
                                   self.mlp_channels, strict=True):
            x = x + tok(n1(x).transpose(1, 2)).transpose(1, 2)
            x = x + ch(n2(x))
        return self.head(self.norm(x).mean(1))


class TokenLinear(nn.Module):
    """One Linear along the tokens (gMLP's spatial projection), added to its input."""

    def __init__(self):
        super().__init__()
        self.fc, self.proj, self.head = nn.Linear(5, 8), nn.Linear(6, 6), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.fc(x))
        return self.head(h + self.proj(h.transpose(-1, -2)).transpose(-1, -2))

    def example_inputs(self):  # the token count is part of the architecture
        return (torch.zeros(2, 6, 5),)


class LevitLinearNorm(nn.Module):
    """LeViT's LinearNorm: a bias-free Linear and a BatchNorm over every token."""

    def __init__(self, a, b):
        super().__init__()
        self.linear, self.bn = nn.Linear(a, b, bias=False), nn.BatchNorm1d(b)

    def forward(self, x):
        x = self.linear(x)
        return self.bn(x.flatten(0, 1)).reshape_as(x)


def _bias_index(res, stride):
    q = torch.stack(torch.meshgrid(torch.arange(0, res, stride), torch.arange(0, res, stride),
                                   indexing="ij")).flatten(1)
    k = torch.stack(torch.meshgrid(torch.arange(res), torch.arange(res), indexing="ij")).flatten(1)
    rel = (q[:, :, None] - k[:, None, :]).abs()
    return rel[0] * res + rel[1]


class LevitAttention(nn.Module):
    """LeViT's attention as timm writes it: q, k, v rows interleaved head by head in one
    LinearNorm, learned attention biases per head and relative position, a Hardswish and a
    LinearNorm as projection; with ``stride`` the downsampling variant (``kv`` and a ``q`` of
    the subsampled tokens)."""

    def __init__(self, dim=8, key_dim=2, heads=3, ratio=2, res=4, stride=1):
        super().__init__()
        self.num_heads, self.key_dim, self.val_dim = heads, key_dim, ratio * key_dim
        self.stride, self.res, self.scale = stride, res, key_dim ** -0.5
        if stride == 1:
            self.qkv = LevitLinearNorm(dim, heads * (2 * key_dim + self.val_dim))
        else:
            self.kv = LevitLinearNorm(dim, heads * (key_dim + self.val_dim))
            self.q = nn.Sequential()
            self.q.add_module("ln", LevitLinearNorm(dim, heads * key_dim))
        self.proj = nn.Sequential()
        self.proj.add_module("act", nn.Hardswish())
        self.proj.add_module("ln", LevitLinearNorm(heads * self.val_dim, dim))
        self.attention_biases = nn.Parameter(torch.randn(heads, res * res))
        self.register_buffer("idx", _bias_index(res, stride), persistent=False)

    def forward(self, x):
        B, N, C = x.shape
        H = self.num_heads
        if self.stride == 1:
            q, k, v = self.qkv(x).view(B, N, H, -1).split([self.key_dim, self.key_dim,
                                                            self.val_dim], dim=3)
            q = q.permute(0, 2, 1, 3)
        else:
            k, v = self.kv(x).view(B, N, H, -1).split([self.key_dim, self.val_dim], dim=3)
            sub = x.view(B, self.res, self.res, C)[:, ::self.stride, ::self.stride]
            q = self.q.ln(sub.reshape(B, -1, C)).view(B, -1, H, self.key_dim).permute(0, 2, 1, 3)
        attn = q @ k.permute(0, 2, 3, 1) * self.scale + self.attention_biases[:, self.idx]
        x = (attn.softmax(-1) @ v.permute(0, 2, 1, 3)).transpose(1, 2)
        return self.proj(x.reshape(B, -1, H * self.val_dim))


class LevitPlain(LevitAttention):
    pass


class LevitDownsample(LevitAttention):
    def __init__(self):
        super().__init__(stride=2)


# named as timm names them (the rules match the qualified class name)
for _cls, _name in ((LevitPlain, "Attention"), (LevitDownsample, "AttentionDownsample"),
                    (LevitLinearNorm, "LinearNorm")):
    _cls.__module__, _cls.__qualname__, _cls.__name__ = "timm.models.levit", _name, _name


class Levit(nn.Module):
    """A LeViT: a patch stem, an attention block and an MLP with residuals, a downsampling
    attention, a mean over tokens, two heads averaged (the distilled head, in eval mode)."""

    def __init__(self):
        super().__init__()
        self.stem, self.attn, self.down = nn.Conv2d(3, 8, 2, 2), LevitPlain(), LevitDownsample()
        self.mlp = nn.Sequential(LevitLinearNorm(8, 16), nn.Hardswish(), LevitLinearNorm(16, 8))
        self.head, self.head_dist = nn.Linear(8, 3), nn.Linear(8, 3)

    def forward(self, x):
        x = self.stem(x).flatten(2).transpose(1, 2)
        x = x + self.attn(x)
        x = x + self.mlp(x)
        x = self.down(x).mean(1)
        return (self.head(x) + self.head_dist(x)) / 2


IMAGE = torch.zeros(2, 3, 8, 8)


@pytest.mark.parametrize("make,inputs", [(ConvNorms, IMAGE), (Block, torch.zeros(2, 6, 5)),
                                         (Pooling, IMAGE), (MBConv, IMAGE),
                                         (LinearNorm, torch.zeros(2, 6, 5)),
                                         (Mixer, IMAGE), (TokenLinear, torch.zeros(2, 6, 5)),
                                         (Levit, IMAGE)],
                         ids=["norms", "attention", "pool", "stochastic-depth", "linear-norm",
                              "mixer", "token-linear", "levit"])
def test_library_modules_round_trip_with_their_symmetries(make, inputs):
    torch.manual_seed(0)
    model = make().eval()
    assert_round_trip(model, inputs)
    assert_symmetries_preserve_function(model, inputs)


def test_functional_norms_read_their_module_tensors():
    spec = ws.GraphSpec.from_module(ConvNorms(), IMAGE)
    read = {s.tensor for s in spec.blueprint.node_slots}
    assert {"norm1.bias", "norm1.running_mean", "norm1.running_var", "norm2.bias",
            "norm3.bias"} <= read
    assert {"norm1", "norm2", "norm3"} <= {s.name for s in spec.blueprint.sets}


def test_fused_qkv_attention_reads_heads_like_multihead_attention():
    spec = ws.GraphSpec.from_module(Block(), torch.zeros(2, 6, 5))
    names = [s.name for s in spec.blueprint.sets]
    assert {"attn.q", "attn.k", "attn.v", "attn.out_proj"} <= set(names)
    q = names.index("attn.q")
    group = next(g for g in spec.permutation_groups if q in g.sets)
    assert group.blocks == 4 and names.index("attn.k") in group.sets


def test_a_difference_marks_its_subtracted_edges():
    spec = ws.GraphSpec.from_module(Pooling(), IMAGE)
    assert int((spec.edge_type == EdgeType.SUBTRACT).sum()) == 8


def test_fused_attention_with_query_norms_is_refused_by_name():
    from weightspace.errors import UnsupportedModuleError

    model = Block()
    model.attn.q_norm = nn.LayerNorm(4)
    with pytest.raises(UnsupportedModuleError, match=r"cannot read 'attn' \(Attention\).*q/k "
                                                     r"norms"):
        ws.GraphSpec.from_module(model, torch.zeros(2, 6, 5))


def test_stochastic_depth_in_training_mode_is_refused():
    from weightspace.errors import UnsupportedModuleError

    class Training(MBConv):  # an architecture of its own: specs are cached by architecture
        pass

    with pytest.raises(UnsupportedModuleError, match=r"stochastic depth in training mode.*"
                                                     r"\.eval\(\)"):
        ws.GraphSpec.from_module(Training().train(), IMAGE)


def test_token_mixing_moves_its_hidden_tokens_and_fixes_the_positions():
    """A Linear along the tokens is one map shared by every channel: its hidden tokens
    permute, the positions it reads and writes do not, the channels pass through it."""
    spec = ws.GraphSpec.from_module(Mixer(), IMAGE)
    names = [s.name for s in spec.blueprint.sets]
    assert int((spec.edge_type == EdgeType.TOKEN_MIX).sum()) == 2 * (2 * 16 * 5)

    def group(name):
        return next(g for g in spec.permutation_groups if names.index(name) in g.sets)

    hidden = group("mlp_tokens.0.fc1")
    assert not hidden.fixed and hidden.blocks == 1 and hidden.size == 5
    assert group("mlp_tokens.0.fc1.positions").fixed
    out = group("mlp_tokens.0.fc2")
    assert out.block_group == "fixed" and out.blocks == out.size  # positions: no move
    # the token MLP's output carries the channels of norms1.0, tied to the residual stream
    assert names.index("stem") in group("norms1.0").sets


def test_a_token_mixed_tensor_read_before_it_is_transposed_back_is_refused():
    from weightspace.errors import UnsupportedModuleError

    class Unfinished(Mixer):
        def forward(self, x):
            x = self.stem(x).flatten(2).transpose(1, 2)
            return self.head(self.mlp_tokens[0](x.transpose(1, 2)).sum(-1))

    with pytest.raises(UnsupportedModuleError, match="mixed along an axis other than its "
                                                     "features"):
        ws.GraphSpec.from_module(Unfinished(), IMAGE)


def test_levit_attention_reads_interleaved_heads_with_their_biases():
    spec = ws.GraphSpec.from_module(Levit(), IMAGE)
    names = [s.name for s in spec.blueprint.sets]

    def group(name):
        return next(g for g in spec.permutation_groups if names.index(name) in g.sets)

    heads = group("attn.qkv.bn.q")
    assert heads.blocks == 3 and not heads.fixed
    assert names.index("attn.qkv.bn.k") in heads.sets  # q and k permute together
    assert group("attn.head").block_group == heads.block_group  # the biases move with heads
    assert group("attn.qkv.bn.v").block_group == heads.block_group
    assert group("attn.positions").fixed
    assert int((spec.edge_type == EdgeType.ATTN_BIAS).sum()) == 3 * 16 + 3 * 16
