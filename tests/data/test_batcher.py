"""GraphBatcher builds exactly the batch PyG would build from per-network graphs."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

import weightspace as ws
from tests.conftest import FAST, build
from weightspace.data import GraphBatcher

FIELDS = ("x", "edge_index", "edge_attr", "batch", "ptr", "node_type", "edge_type", "edge_pos",
          "layer", "activation", "input_id", "output_id")


def reference(models, canvas=None):
    return Batch.from_data_list([ws.to_graph(m, canvas=canvas) for m in models])


def assert_batches_equal(got, want):
    for field in FIELDS:
        assert torch.equal(got[field].cpu(), want[field]), field
    assert got.num_graphs == want.num_graphs
    assert list(got.spec_id) == list(want.spec_id)


@pytest.mark.parametrize("name", FAST)
def test_one_architecture_equals_per_graph_batching(name):
    models = [build(name, seed) for seed in range(3)]
    spec = ws.GraphSpec.from_module(models[0])
    vecs = torch.stack([spec.flatten(m) for m in models])
    buffers = torch.stack([spec.flatten_buffers(m) for m in models]) if len(spec.buffers) else None
    got = GraphBatcher(spec)(vecs, buffers)
    assert_batches_equal(got, reference(models))


def test_several_architectures_in_one_batch():
    mlps = [build("mlp", s) for s in range(2)]
    cnns = [build("small_cnn", s) for s in range(3)]
    canvas = (3, 3)
    s_mlp = ws.GraphSpec.from_module(mlps[0], canvas=canvas)
    s_cnn = ws.GraphSpec.from_module(cnns[0], canvas=canvas)
    batcher = GraphBatcher([s_mlp, s_cnn])
    got = batcher({
        s_mlp.id: (torch.stack([s_mlp.flatten(m) for m in mlps]), None),
        s_cnn.id: (torch.stack([s_cnn.flatten(m) for m in cnns]), None),
    })
    assert_batches_equal(got, reference(mlps + cnns, canvas=canvas))


def test_the_topology_is_cached_per_batch_size():
    model = build("small_cnn")
    spec = ws.GraphSpec.from_module(model)
    batcher = GraphBatcher(spec)
    vecs = spec.flatten(model).repeat(4, 1)
    first = batcher(vecs)
    second = batcher(vecs * 2)
    assert first.edge_index.data_ptr() == second.edge_index.data_ptr()
    assert torch.equal(second.edge_attr, first.edge_attr * 2)


def test_bad_input_is_refused():
    spec = ws.GraphSpec.from_module(build("mlp"))
    batcher = GraphBatcher(spec)
    with pytest.raises(ValueError, match=r"\[B, P\]"):
        batcher(torch.zeros(spec.num_params))
    with pytest.raises(KeyError, match="knows"):
        batcher({"nope": (torch.zeros(1, spec.num_params), None)})
    with pytest.raises(ws.SpecMismatchError, match="expects"):
        batcher(torch.zeros(2, spec.num_params + 1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_batches_equal_cpu_batches():
    models = [build("resnet_blocks", s) for s in range(4)]
    spec = ws.GraphSpec.from_module(models[0])
    vecs = torch.stack([spec.flatten(m) for m in models])
    bufs = torch.stack([spec.flatten_buffers(m) for m in models])
    got = GraphBatcher(spec, "cuda")(vecs, bufs)
    assert got.x.is_cuda and got.edge_index.is_cuda
    assert_batches_equal(got, reference(models))
