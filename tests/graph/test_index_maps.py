"""The spec's per-edge tensors: built compactly, equal to the blocks' edges expanded."""

from __future__ import annotations

import pytest
import torch

import weightspace as ws
from tests.conftest import build
from weightspace.graph.blocks import materialize_edges


@pytest.mark.parametrize("name,mode", [("flatten_cnn", "entry"), ("tiny_vit", "channel"),
                                       ("small_cnn", "entry"), ("resnet_blocks", "entry")])
def test_edges_built_compactly_equal_every_block_expanded(name, mode):
    """A slice read entry by entry keeps one endpoint pair per kernel until the final tensors
    are filled; the result is what expanding every block's edges gives."""
    spec = ws.GraphSpec.from_module(build(name), kernel_edges=mode)
    sizes = [s.size for s in spec.blueprint.sets]
    P = len(spec.params)
    offsets = {s.name: s.offset for s in spec.params.slots}
    offsets.update({s.name: P + s.offset for s in spec.buffers.slots})
    full = [materialize_edges(b, spec.set_offset, sizes, offsets, spec.const_zero,
                              spec.const_one, spec.canvas, mode, features=True)
            for b in spec.blueprint.edges]
    compact = [materialize_edges(b, spec.set_offset, sizes, offsets, spec.const_zero,
                                 spec.const_one, spec.canvas, mode, features=False)
               for b in spec.blueprint.edges]
    assert any(a.repeat > 1 for a in compact)  # the case under test occurs
    assert [a.count for a in compact] == [a.count for a in full]
    assert torch.equal(spec.edge_index, torch.cat([torch.stack([a.src, a.dst]) for a in full], 1))
    assert torch.equal(spec.edge_pos.long(), torch.cat([a.pos for a in full]))
    assert torch.equal(spec.edge_src, torch.cat([a.feat for a in full]))
