"""``WeightSpaceModel``: a metanetwork with its input adapter, chosen by name.

Takes flat weights ``vecs [B, P]`` (and buffers ``[B, Q]``) of one of its architectures
(``specs``; ``arch`` says which) and returns
``[B, out_dim]`` (an invariant prediction) or, with ``equivariant=True``, an edit
``delta [B, P]`` in the spec's layout.

Weight tensors of one network differ in scale by orders of magnitude (a SIREN's first layer
against its hidden ones, which ``w0 = 30`` shrinks), so :meth:`fit_normalization` records each
tensor's standard deviation ``sigma_T`` over the training networks. The GMN reads ``w / sigma_T``
(a per-tensor constant keeps every symmetry), and every model's edit is
``delta = s * sigma_T * out``, with ``s`` a learned scalar that starts at ``edit_scale`` (so
that a fresh model barely moves the weights it edits, each tensor in its own units). With
``edit="scale"`` the edit is relative instead, ``delta = s * theta * out``: every weight is
rescaled by ``1 + s * out``, which turns a whole channel off with one output value per weight
(``out = -1/s``) whatever the weights are -- the edit meta pruning wants. The
metanetwork is one of

- ``gmn``: :class:`~weightspace.nn.GraphMetaNetwork` on the parameter graphs (batched on the
  inputs' device by :class:`~weightspace.data.GraphBatcher`);
- ``statnn``: :class:`~weightspace.nn.baselines.StatNN` (invariant only);
- ``np``: :class:`~weightspace.nn.baselines.NPNetwork` (MLP and CNN weight spaces);
- ``mlp``: :class:`~weightspace.nn.baselines.FlatMLP` on the raw flat vector.

With ``probes = K`` the GMN's nodes also carry what each neuron computes on ``K`` fixed
inputs (:class:`~weightspace.nn.probes.ProbeFeatures`); that needs a module of each
architecture (``networks``, which :meth:`from_config` builds from the zoo's recipe).

The GMN reads any mix of architectures (with one edge-feature width); the other models need
one flat layout, which several specs share when they differ only in what the graph sees
beyond the weights (e.g. the activation: the Small CNN Zoo's ReLU and tanh networks).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from weightspace.data.batcher import GraphBatcher
from weightspace.graph.spec import GraphSpec
from weightspace.nn.baselines.statnn import statistics_width, weight_statistics
from weightspace.nn.metanetworks import METANETWORKS, output_width
from weightspace.nn.probes import ProbeFeatures
from weightspace.zoo.recipe import recipe_for

EDITS = ("add", "scale")
# keys of a model config that WeightSpaceModel takes itself; the others go to the builder
CONFIG_ARGUMENTS = ("name", "hidden", "layers", "fourier", "edit_scale", "edit", "probes",
                    "probe_data")
PROBE_DATA = ("random", "val")


class WeightSpaceModel(nn.Module):
    """A metanetwork chosen by name with its input adapter (see the module docstring).

    Args:
        name: an entry of :data:`~weightspace.nn.metanetworks.METANETWORKS` (``gmn``,
            ``statnn``, ``np``, ``mlp``, or one a package registers).
        specs: the architectures it reads (one spec or several).
        out_dim: invariant outputs per network.
        equivariant: whether it outputs an edit ``delta [B, P]`` instead.
        hidden: the metanetwork's width.
        layers: its depth.
        fourier: the GMN's Fourier frequencies of weight values.
        edit_scale: the learned scale ``s`` of an edit starts here.
        edit: ``add`` (``delta = s sigma_T out``) or ``scale`` (``delta = s theta out``).
        probes: ``K`` probe inputs: the GMN reads each neuron's values on them at its node,
            StatNN the network's outputs on them (0: none).
        networks: one module per architecture, for probe features.
        probe_inputs: ``[probes, *input]``, the inputs the probe features are the values on
            (default: ``probes`` random ones).
        options: further options of the metanetwork's builder, e.g. the GMN's ``nonlinear``,
            ``readout`` (``"graph"`` or ``"layers"``) and ``stats`` (weight statistics of each
            network beside the pooled states in its readout).

    Shapes:
        input: ``vecs [B, P]``, ``buffers [B, Q]`` (or ``None``), ``arch`` (an int);
        output: ``[B, out_dim]``, or ``[B, P]`` when equivariant.
    """

    def __init__(self, name: str, specs: GraphSpec | Sequence[GraphSpec], out_dim: int = 1,
                 equivariant: bool = False, hidden: int = 64, layers: int = 4, fourier: int = 0,
                 edit_scale: float = 0.01, edit: str = "add", probes: int = 0,
                 networks: Sequence[nn.Module] | None = None,
                 probe_inputs: Tensor | None = None, **options):
        super().__init__()
        if edit not in EDITS:
            raise KeyError(f"unknown edit {edit!r} (config key model.edit); known: {EDITS}")
        self.edit = edit
        self.specs = [specs] if isinstance(specs, GraphSpec) else list(specs)
        spec = self.spec = self.specs[0]
        self.name, self.equivariant = name, equivariant
        kind = self.kind = METANETWORKS[name]
        if equivariant and not kind.equivariant_ok:
            raise ValueError(f"model {name!r} is invariant: it cannot output edits; use one of "
                             f"{[n for n, k in METANETWORKS.items() if k.equivariant_ok]}")
        if probes and not kind.probes_ok:
            raise ValueError(f"model {name!r} reads no probe features (set model.probes=0; "
                             f"gmn reads them per node, statnn the network's outputs)")
        if kind.reads_graphs:
            widths = {s.id: s.num_edge_features for s in self.specs}
            if len(set(widths.values())) > 1:
                raise ValueError(f"one {name} reads one edge-feature width; the architectures "
                                 f"have {widths}")
            self._batchers: dict[str, GraphBatcher] = {}
        elif len(self.specs) > 1:
            _check_one_layout(f"model {name!r}", self.specs)
        try:
            self.net = kind.build(self.specs, out_dim, equivariant, hidden, layers, fourier,
                                  probes, **options)
        except TypeError as err:
            if not options or "unexpected keyword" not in str(err):
                raise
            raise ValueError(f"model {name!r} takes none of the options {sorted(options)} "
                             f"(config keys model.*): {err}") from None
        # invariant weight statistics for the readout (model.stats): one layout, standardised
        self.stats = bool(options.get("stats")) and not equivariant  # for the invariant head
        if self.stats:
            _check_one_layout(f"model {name!r} with model.stats=true", self.specs,
                              "set model.stats=false")
            width = statistics_width(spec)
            self.register_buffer("stats_mean", torch.zeros(width))
            self.register_buffer("stats_std", torch.ones(width))
        if probes:
            if networks is None or len(networks) != len(self.specs):
                raise ValueError(f"model.probes={probes} runs the networks: pass one module "
                                 f"per architecture (networks=), or train from a zoo whose "
                                 f"recipe builds them")
            # a plain list: the modules' own weights are never trained or saved
            if not kind.reads_graphs and any(len(s.buffers) for s in self.specs):
                raise ValueError(f"model {name!r} with probes reads networks without buffers "
                                 f"(BatchNorm statistics); use gmn, or model.probes=0")
            if probe_inputs is not None and len(probe_inputs) != probes:
                raise ValueError(f"model.probes={probes}, but {len(probe_inputs)} probe inputs "
                                 f"were given")
            self._probes = [ProbeFeatures(n, s, probes if probe_inputs is None else probe_inputs)
                            for n, s in zip(networks, self.specs, strict=True)]
        self.scale = nn.Parameter(torch.tensor(float(edit_scale))) if equivariant else None
        for i, s in enumerate(self.specs):  # sigma_T of each coordinate's tensor, per arch
            self.register_buffer(f"tensor_std_{i}", torch.ones(s.num_params))

    @classmethod
    def from_config(cls, cfg, specs: GraphSpec | Sequence[GraphSpec], out_dim: int = 1,
                    equivariant: bool = False, recipe: dict | None = None):
        """From a ``model`` config group (``name``, ``hidden``, ``layers``, ...); ``recipe``
        (the zoo's) builds the networks that probe features run, and with
        ``probe_data: val`` gives their inputs: signals of its validation split."""
        specs = [specs] if isinstance(specs, GraphSpec) else list(specs)
        probes = int(cfg.get("probes", 0))
        if cfg.get("probe_data", "random") not in PROBE_DATA:
            raise ValueError(f"model.probe_data={cfg.probe_data}: use one of "
                             f"{', '.join(PROBE_DATA)}")
        networks = inputs = None
        if probes and recipe:
            maker = recipe_for(recipe)
            networks = [maker.network_of(s.id) for s in specs]
            if cfg.get("probe_data", "random") == "val":
                inputs = maker.probe_inputs(probes)
                if inputs is None:
                    raise ValueError(f"model.probe_data=val: recipe {maker.name!r} has no "
                                     f"data to probe with; use model.probe_data=random")
        options = {k: v for k, v in cfg.items() if k not in CONFIG_ARGUMENTS}
        return cls(cfg.name, specs, out_dim, equivariant, cfg.get("hidden", 64),
                   cfg.get("layers", 4), cfg.get("fourier", 0), cfg.get("edit_scale", 0.01),
                   cfg.get("edit", "add"), probes, networks, inputs, **options)

    @torch.no_grad()
    def fit_normalization(self, vecs_per_arch: Sequence[Tensor]):
        """Statistics of the training weights, ``[N_a, P_a]`` for each architecture: the
        per-tensor scales, and what the baselines standardise their inputs with."""
        if len(vecs_per_arch) != len(self.specs):
            raise ValueError(f"expected training weights of {len(self.specs)} architectures, "
                             f"got {len(vecs_per_arch)}")
        for i, (spec, vecs) in enumerate(zip(self.specs, vecs_per_arch, strict=True)):
            std = getattr(self, f"tensor_std_{i}")
            if vecs.shape[0] * vecs.shape[1] < 2:
                continue
            for slot in spec.params.slots:
                w = vecs[:, slot.offset : slot.stop].to(std)
                std[slot.offset : slot.stop] = w.std().clamp_min(1e-8) if w.numel() > 1 else 1.0
        if hasattr(self.net, "fit_normalization"):  # the flat models: one layout (checked)
            flat = torch.cat(list(vecs_per_arch))
            if hasattr(self, "_probes"):  # statnn: outputs on the probes beside statistics
                extra = torch.cat([torch.cat([self._output_probes(part, None, i)
                                              for part in vecs.split(256)])
                                   for i, vecs in enumerate(vecs_per_arch)])
                self.net.fit_normalization(flat, extra)
            else:
                self.net.fit_normalization(flat)
        if self.stats:
            feats = weight_statistics(self.spec, torch.cat(list(vecs_per_arch)).to(self.stats_mean))
            self.stats_mean.copy_(feats.mean(0))
            self.stats_std.copy_(feats.std(0).nan_to_num(1.0).clamp_min(1e-8))

    def arch_of(self, spec_id: str) -> int:
        """The position of architecture ``spec_id`` among the model's (for ``forward``)."""
        for i, s in enumerate(self.specs):
            if s.id == spec_id:
                return i
        raise KeyError(f"the metanetwork was trained on architectures "
                       f"{[s.id for s in self.specs]}, not {spec_id}")

    def _output_probes(self, vecs: Tensor, buffers: Tensor | None, arch: int) -> Tensor:
        """``[B, outputs * probes]``: the networks' outputs on the probe inputs (invariant
        features for the flat models)."""
        probes = self._probes[int(arch)].to(vecs.device)
        spec = self.specs[int(arch)]
        # the output nodes in output_id order (the order LayerReadout reads them in)
        outputs = torch.argsort(spec.output_id)[spec.num_nodes - output_width(spec):]
        return probes(vecs, buffers)[:, outputs.to(vecs.device)].flatten(1)

    def _batcher(self, device: torch.device) -> GraphBatcher:
        key = str(device)
        if key not in self._batchers:
            self._batchers[key] = GraphBatcher(self.specs, device)
        return self._batchers[key]

    def forward(self, vecs: Tensor, buffers: Tensor | None = None, arch: int = 0) -> Tensor:
        """``vecs`` (and ``buffers``) of networks of architecture ``self.specs[arch]``."""
        std = getattr(self, f"tensor_std_{int(arch)}")
        if self.kind.reads_graphs:
            spec = self.specs[int(arch)]
            batch = self._batcher(vecs.device)(vecs / std, buffers, spec_id=spec.id)
            if hasattr(self, "_probes"):
                probes = self._probes[int(arch)].to(vecs.device)
                batch.probe = probes(vecs, buffers).reshape(-1, probes.num_probes)
            extra = None
            if self.stats:
                extra = (weight_statistics(spec, vecs) - self.stats_mean) / self.stats_std
            out = self.net(batch, extra)
            result = self.net.weight_delta(spec, out) if self.equivariant else out.graph
        elif hasattr(self, "_probes"):
            result = self.net(vecs, self._output_probes(vecs, buffers, arch))
        else:
            result = self.net(vecs)
        if not self.equivariant:
            return result
        return result * self.scale * (vecs if self.edit == "scale" else std)


def flat_layout(spec: GraphSpec) -> tuple:
    """The names and shapes of ``spec``'s parameters: what a flat model's input depends on
    (specs that differ only in what the graph sees, e.g. the activation, share it)."""
    return tuple((t.name, t.shape) for t in spec.params.slots)


def _check_one_layout(name: str, specs: Sequence[GraphSpec],
                      fix: str = "train a graph metanetwork (gmn)"):
    first = specs[0]
    for s in specs[1:]:
        if flat_layout(s) != flat_layout(first):
            raise ValueError(f"{name} reads one flat weight layout, but architectures "
                             f"{first.id} and {s.id} differ in their parameters; {fix}, or pick "
                             f"one architecture with data.arch=")
