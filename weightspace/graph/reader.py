"""Read a network into a :class:`~weightspace.graph.blocks.Blueprint` by tracing it with torch.fx.

The network is traced symbolically (modules with a rule are kept as leaves; any other module is
traced through), then run once on the example inputs to learn every value's shape. The reader
then walks the fx graph in order, giving each value a descriptor (``weightspace.graph.values``)
and applying the rule registered for each module, function or method
(``weightspace.graph.rules``). A module or operation that touches parameters or features and has
no rule raises :class:`~weightspace.errors.UnsupportedModuleError` with its qualified path.

While walking, the reader also records how each node set's values are used, which decides the
sign and scale symmetries: flipping the sign of neuron ``i`` (``W_in[i] -> -W_in[i]``,
``b[i] -> -b[i]``, ``W_out[:, i] -> -W_out[:, i]``) preserves the function iff every path from
the neuron applies an odd function before a linear read; positive scaling by ``a`` likewise
needs ``f(a z) = a f(z)``. Any other use (a norm layer, an add, attention, the output) rules
both out.
"""

from __future__ import annotations

import functools

import torch
import torch.fx as fx
from torch import nn
from torch.fx.node import map_aggregate

from weightspace.errors import UnsupportedModuleError
from weightspace.graph import rules
from weightspace.graph.blocks import (
    Blueprint,
    DenseEdges,
    DiagEdges,
    HeadEdges,
    NodeSet,
    NodeSlot,
    PermutationConstraint,
)
from weightspace.graph.shared_weights import parameter_aliases, tie_shared_reads
from weightspace.graph.values import Cat, Feat, LazyInput, Mixed, ParamRef
from weightspace.graph.vocab import (
    ODD_ACTIVATIONS,
    POSITIVE_HOMOGENEOUS_ACTIVATIONS,
    Activation,
    NodeType,
)


class _LeafTracer(fx.Tracer):
    """Keeps modules with a rule as leaves; names the module path when tracing fails inside."""

    def __init__(self, is_rule_module):
        super().__init__()
        self._is_rule_module = is_rule_module

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if self._is_rule_module(m):
            return True
        if rules.traced_forward(m) is not None:
            return False
        # torch.nn's own modules with parameters and no rule stay leaves, so that the reader
        # refuses them by name rather than tracing into their internals.
        is_torch_nn = m.__module__.startswith("torch.nn") and not isinstance(
            m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)
        )
        return is_torch_nn and any(True for _ in m.parameters(recurse=True))

    def call_module(self, m, forward, args, kwargs):
        replacement = rules.traced_forward(m)
        if replacement is not None:  # a forward fx can trace, in place of the module's own
            forward = functools.partial(replacement, m)
        try:
            return super().call_module(m, forward, args, kwargs)
        except UnsupportedModuleError:
            raise
        except Exception as err:  # fx cannot trace this module's forward
            path = self.path_of_module(m)
            raise UnsupportedModuleError(
                path, type(m).__name__, f"torch.fx cannot trace its forward ({err})"
            ) from err


class _ShapeRecorder(fx.Interpreter):
    """Runs the traced graph once and stores every value's shape in ``node.meta``."""

    def run_node(self, n):
        result = super().run_node(n)

        def shape_of(v):
            return (tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else None

        n.meta["ws_value"] = map_aggregate(result, shape_of)
        return result


def trace(model: nn.Module, example_inputs: tuple, is_rule_module) -> fx.GraphModule:
    tracer = _LeafTracer(is_rule_module)
    try:
        graph = tracer.trace(model)
    except UnsupportedModuleError:
        raise
    except Exception as err:
        raise UnsupportedModuleError(
            "", type(model).__name__, f"torch.fx cannot trace its forward ({err})"
        ) from err
    gm = fx.GraphModule(tracer.root, graph)
    with torch.no_grad():
        _ShapeRecorder(gm).run(*example_inputs)
    return gm


class GraphReader:
    """Walks a traced network and builds its blueprint (see the module docstring).

    Args:
        model: the network to read.
        example_inputs: inputs for tracing its ``forward``.
    """

    def __init__(self, model: nn.Module, example_inputs: tuple):
        self.rules = rules
        self.model = model
        self.example_inputs = example_inputs
        self.bp = Blueprint()
        self.input_sets: dict[int, tuple[int, int]] = {}  # input index -> (set, dim)
        # every name of a tied parameter: rules read each, tie_shared_reads merges them
        self.param_names = {n for n, _ in model.named_parameters(remove_duplicate=False)}
        self.buffer_names = {n for n, _ in model.named_buffers()}
        self.node: fx.Node | None = None  # the fx node being read, for error messages

    # ------------------------------------------------------------------ walking
    def read(self) -> Blueprint:
        gm = trace(self.model, self.example_inputs, self.rules.has_module_rule)
        self.modules = dict(gm.named_modules())
        env: dict[fx.Node, object] = {}
        n_inputs = 0
        for node in gm.graph.nodes:
            self.node = node
            if node.op == "placeholder":
                value = node.meta["ws_value"]
                if value is None:
                    env[node] = None
                    continue
                shape, dtype = value
                env[node] = LazyInput(n_inputs, shape, not dtype.is_floating_point)
                n_inputs += 1
            elif node.op == "get_attr":
                env[node] = self._get_attr(node)
            elif node.op == "output":
                self._mark_outputs(map_aggregate(node.args[0], lambda a: env.get(a)))
            else:
                args = map_aggregate(node.args, lambda a: env[a] if isinstance(a, fx.Node) else a)
                kwargs = map_aggregate(
                    node.kwargs, lambda a: env[a] if isinstance(a, fx.Node) else a
                )
                env[node] = self._apply(node, args, kwargs)
        self.node = None
        tie_shared_reads(self.bp, parameter_aliases(self.model))
        # kept for weightspace.graph.node_values, which runs the same traced graph on data
        self.traced, self.values = gm, env
        return self.bp

    def _get_attr(self, node):
        value = node.meta.get("ws_value")
        shape = value[0] if value else ()
        if node.target in self.param_names:
            return ParamRef(node.target, shape, False)
        if node.target in self.buffer_names:
            return ParamRef(node.target, shape, True)
        return None

    def _apply(self, node, args, kwargs):
        if node.op == "call_module":
            module = self.modules[node.target]
            rule = self.rules.module_rule(module)
            if rule is None:
                self.refuse("no rule reads this module", module=module)
            self._check_concat(rule, args, kwargs, module)
            return rule(self, module, node.target, *args, **kwargs)
        rule = self.rules.function_rule(node)
        if rule is None:
            if self.touches_weights(args, kwargs):
                self.refuse(f"no rule reads the operation {self.op_name(node)!r}")
            return None
        self._check_concat(rule, args, kwargs)
        return rule(self, *args, **kwargs)

    def _check_concat(self, rule, args, kwargs, module=None):
        """A concatenation along the features, or a tensor mixed along another axis, reaches
        only rules that read one."""
        if not getattr(rule, "reads_concat", False) and self._found((args, kwargs), Cat):
            self.refuse("reads features concatenated along their feature axis (torch.cat), "
                        "which this operation does not read yet", module=module)
        if not getattr(rule, "reads_mixed", False) and self._found((args, kwargs), Mixed):
            self.refuse("reads a tensor mixed along an axis other than its features (a "
                        "token-mixing Linear) before it is transposed back, which this "
                        "operation does not read yet", module=module)

    def _mark_outputs(self, out):
        def mark(v):
            if isinstance(v, Cat):
                return v.each(mark)
            if isinstance(v, LazyInput) and not v.integer:
                v = Feat(self.input_set(v, len(v.shape) - 1), len(v.shape) - 1, v.shape)
            if isinstance(v, Feat):
                s = self.bp.sets[v.set]
                if s.role == "hidden":
                    s.role = "output"
                self.use(v, "other")
            return v

        map_aggregate(out, mark)

    # ------------------------------------------------------------------ errors
    def op_name(self, node) -> str:
        t = node.target
        return t if isinstance(t, str) else getattr(t, "__name__", str(t))

    def module_path(self) -> tuple[str, str]:
        """The innermost module around the current fx node: (qualified path, type name)."""
        node = self.node
        if node is None:
            return "", ""
        if node.op == "call_module":
            return node.target, type(self.modules[node.target]).__name__
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            path, kind = list(stack.values())[-1]
            return path, kind.__name__ if isinstance(kind, type) else str(kind).split(".")[-1]
        return "", type(self.model).__name__

    def refuse(self, reason: str, module: nn.Module | None = None):
        path, kind = self.module_path()
        if module is not None:
            kind = type(module).__name__
        if self.node is not None and self.node.op != "call_module":
            reason = f"{reason} (at fx node {self.node.name!r})"
        try:
            owner = module if module is not None else (
                self.model.get_submodule(path) if path else None)
        except AttributeError:
            owner = None
        base = self.rules.supported_base(owner) if owner is not None else None
        if base is not None:
            reason = (f"{reason}; {kind} subclasses {base.__name__}, which is read, but has a "
                      f"forward of its own, traced through instead")
        raise UnsupportedModuleError(path, kind, reason, self.rules.supported_names())

    @classmethod
    def touches_weights(cls, args, kwargs) -> bool:
        return cls._found((args, kwargs), (Feat, Cat, ParamRef))

    @staticmethod
    def _found(values, kinds) -> bool:
        found = []

        def visit(v):
            if isinstance(v, kinds):
                found.append(v)
            return v

        map_aggregate(values, visit)
        return bool(found)

    # ------------------------------------------------------------------ building blocks
    def new_set(self, name: str, size: int, node_type: int, role: str = "hidden",
                scalable: bool = False) -> int:
        self.bp.sets.append(NodeSet(name, int(size), int(node_type), role,
                                    sign_ok=scalable, scale_ok=scalable))
        return len(self.bp.sets) - 1

    def input_set(self, x: LazyInput, dim: int) -> int:
        dim = dim % len(x.shape)
        if x.index in self.input_sets:
            s, d = self.input_sets[x.index]
            if self.bp.sets[s].size != x.shape[dim]:
                self.refuse(
                    f"input {x.index} is read with {x.shape[dim]} features here and "
                    f"{self.bp.sets[s].size} elsewhere"
                )
            return s
        s = self.new_set(f"input{x.index}", x.shape[dim], NodeType.INPUT, role="input")
        self.bp.sets[s].input_index = x.index
        self.input_sets[x.index] = (s, dim)
        return s

    def feat(self, x, dim: int | None = None, size: int | None = None, what="this layer") -> Feat:
        """``x`` as a feature tensor whose channel axis is ``dim`` (resolving a lazy input)."""
        if isinstance(x, LazyInput):
            if x.integer:
                self.refuse(f"{what} reads integer input {x.index} as features")
            d = (len(x.shape) - 1 if dim is None else dim) % len(x.shape)
            x = Feat(self.input_set(x, d), d, x.shape)
        if isinstance(x, Cat):
            self.refuse(f"{what} reads features concatenated along their feature axis "
                        f"(torch.cat), which it does not read yet")
        if not isinstance(x, Feat):
            self.refuse(f"{what} expects a feature tensor, got {type(x).__name__}")
        if dim is not None and x.dim != dim % len(x.shape):
            self.refuse(
                f"{what} reads axis {dim % len(x.shape)} of a tensor of shape {list(x.shape)} "
                f"whose features lie on axis {x.dim}"
            )
        if size is not None and x.spatial is None and x.shape[x.dim] != size:
            self.refuse(f"{what} expects {size} features, got {x.shape[x.dim]}")
        return x

    def features(self, x, dim: int, size: int | None = None, what="this layer") -> Feat | Cat:
        """:meth:`feat` for a rule that also reads a concatenation (:class:`Cat`): ``x``
        resolved, with its feature axis and size checked (a concatenation's parts:
        :func:`~weightspace.graph.values.parts_of`)."""
        if not isinstance(x, Cat):
            return self.feat(x, dim=dim, size=size, what=what)
        if x.dim != dim % len(x.shape):
            self.refuse(f"{what} reads axis {dim % len(x.shape)} of a concatenation whose "
                        f"features lie on axis {x.dim}")
        if size is not None and x.spatial is None and sum(x.sizes) != size:
            self.refuse(f"{what} expects {size} features, got {sum(x.sizes)}")
        return x

    @staticmethod
    def _shape(node) -> tuple | None:
        value = node.meta.get("ws_value") if isinstance(node, fx.Node) else None
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], torch.dtype):
            return value[0]
        return None

    def out_shape(self) -> tuple | None:
        """Shape of the current node's value (None when it is not a single tensor)."""
        return self._shape(self.node)

    def arg_shape(self, i: int) -> tuple | None:
        """Shape of the current node's ``i``-th positional argument, if it is a tensor."""
        args = self.node.args
        return self._shape(args[i]) if i < len(args) else None

    def edges(self, block: DenseEdges | DiagEdges | HeadEdges):
        self.bp.edges.append(block)

    def node_slot(self, set_: int, slot: int, tensor: str | None, offset: int = 0,
                  first: int = 0, count: int = 0):
        if tensor is None:
            return
        self.bp.node_slots.append(
            NodeSlot(set_, slot, tensor, tensor in self.buffer_names, offset, first, count)
        )

    def tie(self, a: int, b: int):
        if a != b:
            self.bp.ties.append((a, b))

    def constrain(self, set_: int, blocks: int, block_group: str | None = None):
        self.bp.constraints.append(PermutationConstraint(set_, int(blocks), block_group))

    def pin(self, set_: int):
        """Channel order matters (a constant added along the channels): no permutation."""
        self.constrain(set_, self.bp.sets[set_].size, "fixed")

    def settle(self, x):
        """``x`` with its mixed axis (:class:`Mixed`) left: the order of the nodes on it is
        then that of positions, fixed; the channels go on, past a map that ruled out their
        sign and scale symmetries."""
        if not isinstance(x, Mixed):
            return x
        self.pin(x.set)
        s = self.bp.sets[x.set]
        s.sign_ok = s.scale_ok = False  # each position's values go on as they are
        return Feat(x.carrier, x.carrier_dim, x.shape, acted=True)

    def use(self, x, how: str, activation: Activation | None = None):
        """Record a use of ``x``'s values (see the module docstring)."""
        if isinstance(x, Cat):
            return x.each(lambda part: self.use(part, how, activation))
        if isinstance(x, Mixed):  # the values on the mixed axis are those of its nodes
            inner = self.use(Feat(x.set, x.dim, x.shape, acted=x.acted), how, activation)
            return Mixed(x.set, x.dim, x.shape, x.carrier, x.carrier_dim, inner.acted)
        if not isinstance(x, Feat):
            return x
        s = self.bp.sets[x.set]
        if how == "linear" or how == "pass":
            return x
        if how == "maxpool":
            s.sign_ok = False
            return x
        if how == "activation" and not x.acted:
            s.activation = int(activation)
            s.sign_ok &= activation in ODD_ACTIVATIONS
            s.scale_ok &= activation in POSITIVE_HOMOGENEOUS_ACTIVATIONS
            return Feat(x.set, x.dim, x.shape, x.spatial, acted=True)
        s.sign_ok = False
        s.scale_ok = False
        return Feat(x.set, x.dim, x.shape, x.spatial, acted=True)

    def param_shape(self, ref: ParamRef):
        owner = dict(self.model.named_buffers()) if ref.is_buffer else dict(
            self.model.named_parameters(remove_duplicate=False))
        return tuple(owner[ref.name].shape)

