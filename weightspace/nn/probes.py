"""Probe features: what each neuron of a network computes on a few fixed inputs.

For a network ``f`` with weights ``theta`` and ``K`` probe inputs ``u_1 .. u_K`` (drawn once,
uniform in ``[-1, 1]``, shaped like the architecture's example input), node ``n`` of the
parameter graph gets the ``K`` values

    p_n = [a_n(u_1; theta), ..., a_n(u_K; theta)],

where ``a_n`` is the value of neuron ``n`` (its channel, averaged over spatial positions or
tokens) in the output of the module its node set is named after: for an input set, the input
itself; for a Linear or a convolution, its pre-activation output; for a residual block, the
block's output. The values go through ``sign(a) log(1 + |a|)`` so that large activations stay
bounded. Neural Graphs (Kofinas et al., ICLR 2024) adds such features to its nodes: weights
tell the metanetwork what a network is, probe values what it does.

Relabelling hidden neurons permutes a layer's outputs with its nodes, so ``p`` moves with
the nodes: a permutation-equivariant metanetwork stays equivariant with probe features. Node
sets that name no module of the network (e.g. an attention head split) get zeros.

All ``B`` networks of a batch run at once through :func:`~weightspace.functional
.batched_forward`, with forward hooks that hand each recorded output back out of the vmap.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor, nn

from weightspace.functional import batched_forward
from weightspace.graph.spec import GraphSpec

# Modules whose channels sit on axis 1 ([K, C, ...]); every other module's on the last axis.
CHANNELS_FIRST = (nn.modules.conv._ConvNd, nn.modules.batchnorm._BatchNorm, nn.GroupNorm,
                  nn.modules.instancenorm._InstanceNorm)


def squash(a: Tensor) -> Tensor:
    """``sign(a) log(1 + |a|)``: the identity near 0, logarithmic for large values."""
    return a.sign() * a.abs().log1p()


class ProbeFeatures:
    """``[B, N, K]`` probe values of ``B`` networks of one architecture (module docstring).

    Args:
        network: a module of the architecture (its own weights are not used).
        spec: its GraphSpec.
        probes: ``K`` for ``K`` random inputs (seeded with ``seed``) or a ``[K, *input]`` tensor.
        seed: seeds the random probe inputs.
    """

    def __init__(self, network: nn.Module, spec: GraphSpec, probes: int | Tensor = 16,
                 seed: int = 0):
        own = GraphSpec.from_module(network)
        if own.id != spec.id:
            raise ValueError(f"probe features: the network given ({type(network).__name__}, "
                             f"architecture {own.id}) is not of architecture {spec.id}")
        self.network, self.spec = network, spec
        if isinstance(probes, int):
            shape, dtype = spec.input_shapes[0]
            if not getattr(torch, dtype).is_floating_point:
                raise ValueError(f"probe features draw floating-point inputs; this "
                                 f"architecture's first input is {dtype} (pass probes= as a "
                                 f"tensor of inputs)")
            g = torch.Generator().manual_seed(seed)
            probes = torch.rand(probes, *shape[1:], generator=g, dtype=getattr(torch, dtype))
            probes = probes * 2 - 1
        self.probes = probes
        called = _called(network, probes)
        modules = {name: m for name, m in network.named_modules() if m in called}
        # node set -> (module, its offset in the node order, size, role)
        self.sources = [(modules.get(s.name), spec.set_offset[i], s.size, s.role)
                        for i, s in enumerate(spec.blueprint.sets)]
        # the modules whose outputs are recorded, each once (several sets may share one)
        self.recorded = list({id(m): m for m, _, _, role in self.sources
                              if m is not None and role != "input"}.values())

    @property
    def num_probes(self) -> int:
        return len(self.probes)

    def to(self, device: torch.device | str) -> ProbeFeatures:
        self.network = self.network.to(device)
        self.probes = self.probes.to(device)
        return self

    @torch.no_grad()
    def __call__(self, vecs: Tensor, buffers: Tensor | None = None) -> Tensor:
        B, K = vecs.shape[0], self.num_probes
        with _recording(self.network, self.recorded):
            outs = batched_forward(self.network, vecs, self.probes, buffers)
        values = dict(zip(map(id, self.recorded), outs[1:], strict=True))
        feats = vecs.new_zeros(B, self.spec.num_nodes, K)
        for module, offset, size, role in self.sources:
            if role == "input":
                v = _per_channel(self.probes.unsqueeze(0).expand(B, *self.probes.shape), size,
                                 channels_first=self.probes.dim() > 2)
            elif module is not None:
                v = _per_channel(values[id(module)], size, isinstance(module, CHANNELS_FIRST))
            else:
                continue
            if v is not None:  # (a module whose output is not this set's: left at 0)
                feats[:, offset : offset + size] = squash(v.transpose(1, 2).to(feats))
        return feats


@torch.no_grad()
def _called(network: nn.Module, x: Tensor) -> set[nn.Module]:
    """The submodules whose forward runs when ``network`` does (attention layers use some of
    theirs' weights directly: no hook would fire on those)."""
    called, handles, was_training = set(), [], network.training
    for m in network.modules():
        handles.append(m.register_forward_hook(lambda m, args, out: called.add(m)))
    try:
        network.eval()(x)  # (eval: a BatchNorm in train mode would update its statistics)
    finally:
        network.train(was_training)
        for h in handles:
            h.remove()
    return called


def _per_channel(out: Tensor, size: int, channels_first: bool) -> Tensor | None:
    """``[B, K, size]``: a recorded ``[B, K, ...]`` output with its channel axis last and every
    other axis (spatial positions, tokens) averaged; ``None`` if no axis has ``size``.

    The channel axis is axis 2 for convolutions and norms of images (``channels_first``) and
    the last axis otherwise (Linear on tokens), falling back to the other where the size says so
    (a residual block of convolutions is neither kind of module).
    """
    if out.dim() == 2:
        out = out.unsqueeze(-1)
    axes = (2, out.dim() - 1) if channels_first else (out.dim() - 1, 2)
    axis = next((a for a in axes if out.shape[a] == size), None)
    if axis is None:
        return None
    out = out.movedim(axis, -1)
    return out.flatten(2, -2).mean(2) if out.dim() > 3 else out


@contextlib.contextmanager
def _recording(network: nn.Module, modules: list[nn.Module]):
    """While active, ``network`` returns ``(output, *outputs of modules)`` (in the order of
    ``modules``): the values leave the vmap as ordinary outputs, batched over weight sets."""
    recorded: dict[int, Tensor] = {}

    def keeper(i):
        def keep(module, args, output):
            recorded[i] = output
        return keep

    def emit(module, args, output):
        out = (output, *(recorded[i] for i in range(len(modules))))
        recorded.clear()
        return out

    handles = [m.register_forward_hook(keeper(i)) for i, m in enumerate(modules)]
    handles.append(network.register_forward_hook(emit))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
