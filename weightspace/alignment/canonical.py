"""``align_rows``: every network of a zoo brought into one common frame.

A generative model over flat weights sees each network in one of ``prod_l n_l!`` equivalent
labellings of its hidden neurons; averaged over those, a coordinate of the flat vector means
nothing. Bringing every network onto one reference first (weight matching,
:mod:`~weightspace.alignment.weight_matching`) gives each coordinate one meaning across the
zoo. The reference is the zoo's own aligned mean, found by alternating (as Git Re-Basin's
"MergeMany"): align every row to the current reference, replace the reference by the mean of
the aligned rows, repeat. Every aligned row computes exactly what its original does (up to
float rounding).
"""

from __future__ import annotations

import torch
from torch import Tensor
from tqdm import tqdm

from weightspace.alignment.scale_matching import unit_scales
from weightspace.alignment.weight_matching import weight_matching
from weightspace.graph.spec import GraphSpec


def align_rows(spec: GraphSpec, rows: Tensor, reference: Tensor | None = None,
               rounds: int = 2, scales: bool = False, progress: bool = False
               ) -> tuple[Tensor, Tensor]:
    """``(aligned [N, P], reference [P])``: ``rows [N, P]`` (weights in ``spec``'s layout,
    no buffers) each moved by its own symmetry onto ``reference``.

    ``scales``: first bring every row to its unit scales
    (:func:`~weightspace.alignment.scale_matching.unit_scales`: every neuron behind a ReLU gets
    incoming weights of norm 1), so that networks trained at very different scales (an
    initialisation std drawn over decades) meet in one range.

    Without a ``reference``, the first round aligns onto ``rows[0]`` and every further round
    (``rounds`` in all) onto the mean of the previous round's aligned rows; the returned
    reference is the one the returned rows are aligned to.
    """
    if len(spec.buffers):
        raise ValueError(f"architecture {spec.id} has buffers (BatchNorm statistics); "
                         f"align_rows aligns weights alone")
    rows = torch.as_tensor(rows)
    if rows.dim() != 2 or rows.shape[1] != spec.num_params:
        raise ValueError(f"rows must be [N, {spec.num_params}], got {list(rows.shape)}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if scales:
        rows = torch.stack([unit_scales(spec, row)(row.double()) for row in rows]).to(rows.dtype)
    fixed = reference is not None
    ref = (torch.as_tensor(reference) if fixed else rows[0]).double()
    total = 1 if fixed else rounds
    for r in range(total):
        bar = tqdm(rows, desc=f"aligning to the reference ({r + 1}/{total})", unit="network",
                   disable=not progress, leave=False)
        aligned = torch.stack([weight_matching(spec, ref, row)(row.double()) for row in bar])
        used, ref = ref, aligned.mean(0)
    return aligned.to(rows.dtype), used.to(rows.dtype)
