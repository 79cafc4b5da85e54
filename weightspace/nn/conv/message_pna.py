"""``message_pna``: the FiLM messages of :class:`~weightspace.nn.conv.EdgeMPNNConv` in one
direction and their per-node means, squared deviations, maxima and minima, as one
autograd function.

For the messages into ``target`` from ``source`` along the edges (every edge once):

.. math::
    p = a_{\\mathrm{target}} + b_{\\mathrm{source}} + C e, \\qquad
    [\\gamma, \\beta] = W_f e + b_f, \\qquad
    m = \\gamma \\odot (W_2\\, \\mathrm{silu}(p) + b_2) + \\beta

and per target node the mean of ``m``, the sum of its squared deviations from that mean, and
its max and min.

Written out with autograd, this chain saves five to seven tensors of ``[messages, hidden]``
for backward and makes about as many passes over them again to build the gradients of the
reductions (a max's backward fills a zero tensor and scatters into it; a std's backward is a
chain of elementwise ops). Here the forward saves nothing per message beyond its inputs (the
edge states, saved by other layers anyway, and per-node tables) and the backward recomputes
the messages — a few elementwise passes and small matrix products — then builds every
gradient in one sweep. The messages are listed in :class:`DegreeBlocks` order, so each
reduction is a dense one over the middle dimension of ``[nodes, degree, hidden]``, and the
per-target term is broadcast rather than gathered per message.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from weightspace.nn.conv.degree_blocks import DegreeBlocks


def message_pna(e: Tensor, a: Tensor, b: Tensor, C: Tensor, W_f: Tensor, b_f: Tensor,
                W_2: Tensor, b_2: Tensor, blocks: DegreeBlocks,
                source: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-node statistics of the messages of one direction (see the module docstring).

    Args:
        e: ``[E, H]``, the (normed) edge states, one row per message.
        a: ``[N, H]``, the term of each message's target node.
        b: ``[N, H]``, the term of each message's source node (biases folded in).
        C, W_f, b_f, W_2, b_2: ``[H, H]``, ``[2H, H]``, ``[2H]``, ``[H, H]``, ``[H]``.
        blocks: the :class:`DegreeBlocks` of the messages' targets (``order`` maps each of
            its rows to an edge).
        source: ``[E]``, the source node of each row of ``blocks``.

    Returns:
        ``(mean, sum of squared deviations from the mean, max, min)`` of the messages into
        each node of ``blocks.nodes``, each ``[len(blocks.nodes), H]``, in float32 (or the
        inputs' dtype where wider). Under autocast the messages are computed in the autocast
        dtype; the deviations are taken from the mean, so that no large sums of squares
        cancel in a low precision.
    """
    device = e.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else e.dtype
    # contiguous weights: a matrix product with a sliced or transposed bfloat16 operand takes
    # a slower path on CPU
    tensors = [t.to(dtype).contiguous() for t in (e, a, b, C, W_f, b_f, W_2, b_2)]
    with torch.autocast(device, enabled=False):
        return _MessagePNA.apply(*tensors, blocks, source)


def _messages(e, a, b, C, W_f, b_f, W_2, b_2, blocks: DegreeBlocks, source: Tensor):
    """``(e_rows, p, gamma, s, x, m)``: the forward's intermediates, rows in block order."""
    e_rows = e.index_select(0, blocks.order)
    p = torch.addmm(b.index_select(0, source), e_rows, C.t().contiguous())
    for nodes, p_k in blocks.split(p):
        p_k.add_(a.index_select(0, nodes).unsqueeze(1))
    (W_gamma, W_beta), (b_gamma, b_beta) = W_f.chunk(2), b_f.chunk(2)
    gamma = torch.addmm(b_gamma, e_rows, W_gamma.t().contiguous())
    beta = torch.addmm(b_beta, e_rows, W_beta.t().contiguous())
    s = F.silu(p)
    x = torch.addmm(b_2, s, W_2.t().contiguous())
    return e_rows, p, gamma, s, x, torch.addcmul(beta, gamma, x)


class _MessagePNA(torch.autograd.Function):
    @staticmethod
    def forward(ctx, e, a, b, C, W_f, b_f, W_2, b_2, blocks, source):
        m = _messages(e, a, b, C, W_f, b_f, W_2, b_2, blocks, source)[-1]
        wide = torch.promote_types(m.dtype, torch.float32)
        stats, arg_max, arg_min = [], [], []
        for _, m_k in blocks.split(m):
            mean = m_k.sum(1) / m_k.shape[1]  # (a bfloat16 mean copies to float32 first)
            squares = (m_k - mean.unsqueeze(1)).square_().sum(1)
            high, low = m_k.max(1), m_k.min(1)
            stats.append(torch.stack([mean, squares, high.values, low.values]).to(wide))
            arg_max.append(high.indices)
            arg_min.append(low.indices)
        ctx.save_for_backward(e, a, b, C, W_f, b_f, W_2, b_2, torch.cat(arg_max),
                              torch.cat(arg_min))
        ctx.blocks, ctx.source = blocks, source
        return torch.cat(stats, 1).unbind()

    @staticmethod
    def backward(ctx, g_mean, g_squares, g_max, g_min):
        e, a, b, C, W_f, b_f, W_2, b_2, arg_max, arg_min = ctx.saved_tensors
        blocks, source = ctx.blocks, ctx.source
        with torch.autocast(e.device.type, enabled=False):
            e_rows, p, gamma, s, x, m = _messages(e, a, b, C, W_f, b_f, W_2, b_2, blocks,
                                                  source)
            dtype = m.dtype
            # d mean / dm = 1 / degree; d sum (m - mean)^2 / dm = 2 (m - mean); so dL/dm is
            # m * 2 g_squares + (g_mean / degree - 2 g_squares mean), plus g_max / g_min at
            # the winning messages
            g_m = torch.empty_like(m)
            row = 0
            for (_, count, degree), (_, g_m_k, m_k) in zip(blocks.blocks,
                                                          blocks.split(g_m, m), strict=True):
                rows = slice(row, row + count)
                twice = 2 * g_squares[rows]
                # the mean is recomputed, not saved: one cheap pass over m, no [nodes, H] kept
                mean = (m_k.sum(1) / degree).to(twice.dtype)
                shift = (g_mean[rows] / degree - twice * mean).to(dtype)
                torch.addcmul(shift.unsqueeze(1), m_k, twice.to(dtype).unsqueeze(1), out=g_m_k)
                row += count
            # a flat index_add, not scatter_add_ along dim 1 (many times slower on CPU)
            hidden = m.shape[1]
            features = torch.arange(hidden, device=m.device)
            for arg, g in ((arg_max, g_max), (arg_min, g_min)):
                flat = (blocks.first_message.unsqueeze(1) + arg) * hidden + features
                g_m.view(-1).index_add_(0, flat.view(-1), g.to(dtype).view(-1))
            g_gamma, g_x = g_m * x, g_m * gamma  # and d/dbeta = g_m
            g_p = torch.ops.aten.silu_backward(g_x @ W_2, p)
            g_a = torch.zeros_like(a).index_copy_(
                0, blocks.nodes, torch.cat([g_p_k.sum(1) for _, g_p_k in blocks.split(g_p)]))
            g_b = torch.zeros_like(b).index_add_(0, source, g_p)
            W_gamma, W_beta = W_f.chunk(2)
            g_e_rows = torch.addmm(torch.addmm(g_p @ C, g_gamma, W_gamma), g_m, W_beta)
            g_W_f = torch.cat([g_gamma.t() @ e_rows, g_m.t() @ e_rows])
            g_b_f = torch.cat([g_gamma.sum(0), g_m.sum(0)])
            return (g_e_rows.index_select(0, blocks.inverse), g_a, g_b, g_p.t() @ e_rows,
                    g_W_f, g_b_f, g_x.t() @ s, g_x.sum(0), None, None)
