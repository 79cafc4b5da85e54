"""The rule registry: which rule reads each module type, function and method."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_MODULE_RULES: list[tuple[type, Callable]] = []
_FUNCTION_RULES: dict[Callable, Callable] = {}
_METHOD_RULES: dict[str, Callable] = {}
_FORWARDS: dict[type, Callable] = {}
_NAMED_RULES: dict[str, Callable] = {}  # by a class's qualified name (a library not imported)
_NAMED_FUNCTION_RULES: dict[str, Callable] = {}


def register_module(*types):
    def deco(rule):
        for t in types:
            _MODULE_RULES.append((t, rule))
        return rule

    return deco


def _register_in(table: dict, keys):
    """A decorator that files its rule (or forward) in ``table`` under each of ``keys``."""
    def deco(rule):
        for key in keys:
            table[key] = rule
        return rule

    return deco


def _qualname(obj) -> str:
    """``module.QualName`` of a class or function (how rules of other libraries are named)."""
    return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"


def register_module_name(*qualnames):
    """Register a rule for modules whose class is ``module.QualName`` (exactly: a subclass is
    traced through), for classes of libraries weightspace does not import (timm)."""
    return _register_in(_NAMED_RULES, qualnames)


def register_function_name(*qualnames):
    """Register a rule for functions named ``module.qualname`` (a library not imported here,
    such as torchvision's ``stochastic_depth``, which fx records as a call)."""
    return _register_in(_NAMED_FUNCTION_RULES, qualnames)


def register_function(*fns):
    return _register_in(_FUNCTION_RULES, fns)


def register_method(*names):
    return _register_in(_METHOD_RULES, names)


def reads_concat(rule):
    """Mark a rule as reading a concatenation along the feature axis
    (:class:`~weightspace.graph.values.Cat`) correctly; the reader refuses a concatenation
    passed to any other rule."""
    rule.reads_concat = True
    return rule


def reads_mixed(rule):
    """Mark a rule as reading a tensor mixed along a non-feature axis
    (:class:`~weightspace.graph.values.Mixed`) correctly; the reader refuses one passed to any
    other rule."""
    rule.reads_mixed = True
    return rule


def elementwise(rule):
    """Mark a rule that acts on every value alike (an activation, dropout) as reading both a
    concatenation and a mixed tensor."""
    return reads_mixed(reads_concat(rule))


def register_forward(*types):
    """Register a forward written in traceable operations for a ``torch.nn`` module whose own
    forward torch.fx cannot trace (fast paths that branch on tensor properties): called as
    ``forward(module, *args, **kwargs)`` while tracing, it must compute what the module's own
    forward computes. Its submodules are then read by their rules."""
    return _register_in(_FORWARDS, types)


def traced_forward(module: nn.Module) -> Callable | None:
    """The forward registered for the module's type (or a subclass keeping its forward)."""
    for t, forward in _FORWARDS.items():
        if isinstance(module, t) and type(module).forward is t.forward:
            return forward
    return None


def module_rule(module: nn.Module):
    """The rule of the module's type; for a subclass of a type with a rule (timm's
    ``LayerNorm``, a user's ``MyLinear(nn.Linear)``), that type's rule when the subclass keeps
    its forward (the rule reads what that forward computes), else none: its own forward is
    traced through instead."""
    for t, rule in _MODULE_RULES:
        if type(module) is t:
            return rule
    if _NAMED_RULES and _qualname(type(module)) in _NAMED_RULES:
        return _NAMED_RULES[_qualname(type(module))]
    for t, rule in _MODULE_RULES:
        if isinstance(module, t) and type(module).forward is t.forward:
            return rule
    return None


def supported_base(module: nn.Module) -> type | None:
    """The supported type ``module`` subclasses while overriding its forward, if any."""
    return next((t for t, _ in _MODULE_RULES if isinstance(module, t) and type(module) is not t
                 and type(module).forward is not t.forward), None)


def has_module_rule(module: nn.Module) -> bool:
    return module_rule(module) is not None


def function_rule(node):
    if node.op == "call_method":
        return _METHOD_RULES.get(node.target)
    rule = _FUNCTION_RULES.get(node.target)
    if rule is None and _NAMED_FUNCTION_RULES:
        rule = _NAMED_FUNCTION_RULES.get(_qualname(node.target))
    return rule


def supported_names() -> list[str]:
    return sorted({t.__name__ for t, _ in _MODULE_RULES} | {t.__name__ for t in _FORWARDS}
                  | {f"{n.rsplit('.', 1)[1]} ({n.split('.')[0]})" for n in _NAMED_RULES})
