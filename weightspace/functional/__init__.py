"""Batched evaluation: B weight sets of one architecture through one call.

:func:`batched_forward` runs ``[B, P]`` flat weight vectors (the
:class:`~weightspace.graph.GraphSpec` layout) through a module with ``torch.func``
(``functional_call`` + ``vmap``), or, for plain stacks of dense layers, as one batched matmul
per layer (:mod:`weightspace.functional.batched_sequential`).
"""

from weightspace.functional.batched_forward import batched_forward

__all__ = ["batched_forward"]
