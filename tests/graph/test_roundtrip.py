"""Network -> graph -> network is exact for every architecture we read."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch_geometric.data import Batch

import weightspace as ws
from tests.conftest import Versioned, build
from weightspace import nets
from weightspace.graph import EdgeType, GraphSpec, NodeType
from weightspace.graph.reader import GraphReader
from weightspace.testing import assert_round_trip


def assert_same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype, k
        assert torch.equal(sa[k], sb[k]), k


def test_round_trip_is_exact(arch):
    assert_round_trip(build(arch))


def test_every_parameter_sits_in_exactly_one_slot(arch):
    model = build(arch)
    spec = GraphSpec.from_module(model)
    sources = torch.cat([spec.edge_src.reshape(-1), spec.node_src.reshape(-1)])
    counts = torch.bincount(sources[sources < spec.num_params], minlength=spec.num_params)
    assert torch.equal(counts, torch.ones_like(counts))
    # the places from_graph reads, found from the runs, hold exactly those entries
    assert torch.equal(sources[spec.param_from], torch.arange(spec.num_params))


def test_entry_mode_round_trip_and_positions():
    model = build("small_cnn")
    graph = ws.to_graph(model, kernel_edges="entry")
    assert graph.edge_attr.shape[1] == 1
    conv_pairs = 1 * 16 + 16 * 16 + 16 * 16  # three 3x3 convolutions
    assert ws.GraphSpec.from_module(model).num_edges == conv_pairs + 16 * 10
    assert graph.num_edges == conv_pairs * 9 + 16 * 10
    conv = graph.edge_type == EdgeType.CONV
    assert set(graph.edge_pos[conv].tolist()) == set(range(9))
    assert_same_state(model, ws.from_graph(graph, like=build("small_cnn", 1)))


def test_kernels_larger_than_the_canvas_are_read_entry_by_entry():
    model = build("small_cnn")
    g = ws.to_graph(model, canvas=(1, 1))
    conv = g.edge_type == EdgeType.CONV
    assert g.edge_attr.shape[1] == 1
    assert set(g.edge_pos[conv].tolist()) == set(range(1, 10))  # 1 + index in the 3x3 kernel
    assert (g.edge_pos[~conv] == 0).all()
    first = conv.nonzero()[:9, 0]  # the 9 entries of conv 0's kernel from input 0 to channel 0
    assert torch.equal(g.edge_attr[first, 0], model.features[0].weight[0, 0].reshape(-1))
    assert_same_state(model, ws.from_graph(g, like=build("small_cnn", 1)))


def test_patch_embedding_does_not_widen_every_edge():
    model = nets.TinyViT(32, 16, 3, 32, 1, 4, 10)  # a 16x16 patch kernel
    g = ws.to_graph(model)
    assert g.edge_attr.shape[1] == 1
    patch = g.edge_type == EdgeType.CONV
    assert int(patch.sum()) == 3 * 32 * 256 and int(g.edge_pos[patch].max()) == 256
    assert_same_state(model, ws.from_graph(g, like=nets.TinyViT(32, 16, 3, 32, 1, 4, 10)))


def test_graph_features_are_the_weights():
    model = build("mlp")
    g = ws.to_graph(model)
    first = model[0]  # Linear(5, 16)
    lin = (g.edge_type == EdgeType.LINEAR) & (g.edge_index[0] < 5)
    src, dst = g.edge_index[:, lin]
    assert torch.equal(g.edge_attr[lin, 0], first.weight[dst - 5, src])
    assert torch.equal(g.x[5:21, 0], first.bias)
    assert g.input_id[:5].tolist() == list(range(5))
    assert (g.input_id[5:] == -1).all()
    assert g.output_id[-3:].tolist() == [0, 1, 2]
    assert (g.node_type[:5] == NodeType.INPUT).all()


def test_flatten_edges_carry_the_spatial_block():
    model = build("flatten_cnn")  # conv2 (16 ch) -> pool -> 2x2 -> flatten -> fc(64 -> 32)
    g = ws.to_graph(model)
    spec = ws.GraphSpec.from_module(model)
    flat = torch.nonzero(g.edge_type == EdgeType.FLATTEN).reshape(-1)
    assert flat.numel() == 16 * 32
    conv2 = next(i for i, s in enumerate(spec.blueprint.sets) if s.name == "conv2")
    fc = next(i for i, s in enumerate(spec.blueprint.sets) if s.name == "fc")
    e = flat[0]
    c = int(g.edge_index[0, e]) - spec.set_offset[conv2]
    o = int(g.edge_index[1, e]) - spec.set_offset[fc]
    block = model.fc.weight[o].view(16, 2, 2)[c]
    canvas = g.edge_attr[e].view(3, 3)
    assert torch.equal(canvas[:2, :2], block)  # a 2x2 block centred on a 3x3 canvas
    assert (canvas[2] == 0).all() and (canvas[:, 2] == 0).all()


def test_buffers_travel_in_nodes_and_extra_buffers():
    model = build("resnet_blocks")
    g = ws.to_graph(model)
    assert (g.extra_buffers == 1234).all()  # BatchNorm counters, carried as they are
    assert g.extra_buffers.dtype == torch.float64
    rm = model.bn1.running_mean
    assert any(torch.equal(g.x[i : i + 8, 1], rm) for i in range(g.num_nodes - 7))


def test_attention_edges_are_typed_and_heads_are_blocks():
    model = build("tiny_vit")
    g = ws.to_graph(model)
    types = set(g.edge_type.tolist())
    for t in (EdgeType.ATTN_Q, EdgeType.ATTN_K, EdgeType.ATTN_V, EdgeType.ATTN_OUT,
              EdgeType.ATTN_QK, EdgeType.ATTN_KV, EdgeType.CLASS_TOKEN, EdgeType.POSITION,
              EdgeType.RESIDUAL, EdgeType.NORM):
        assert t in types, t.name
    spec = ws.GraphSpec.from_module(model)
    heads = [g for g in spec.permutation_groups if g.blocks == 4 and not g.fixed]
    assert heads and all(g.block_group.endswith(".heads") for g in heads)


def test_graphs_of_different_architectures_batch_together():
    graphs = [ws.to_graph(build(a), canvas=(5, 5)) for a in ("mlp", "small_cnn", "conv1d")]
    batch = Batch.from_data_list(graphs)
    assert batch.edge_attr.shape[1] == 25
    assert batch.x.shape[1] == 3
    assert batch.num_graphs == 3
    assert batch.spec_id == [g.spec_id for g in graphs]
    back = ws.from_graph(batch[1], like=build("small_cnn", 1))
    assert_same_state(build("small_cnn"), back)


def test_second_network_is_not_traced_again(monkeypatch):
    ws.to_graph(build("small_cnn"))

    def no_tracing(self):
        raise AssertionError("the architecture was traced again")

    monkeypatch.setattr(GraphReader, "read", no_tracing)
    other = build("small_cnn", seed=5)
    g = ws.to_graph(other)
    assert_same_state(other, ws.from_graph(g, like=build("small_cnn")))


def test_spec_survives_json_and_a_new_process():
    model = build("tiny_vit")
    spec = ws.GraphSpec.from_module(model)
    again = ws.GraphSpec.from_dict(spec.to_dict())
    assert again.id == spec.id
    assert torch.equal(again.edge_src, spec.edge_src)
    code = (
        "import torch; from tests.conftest import build; import weightspace as ws;"
        "m = build('tiny_vit'); s = ws.GraphSpec.from_module(m);"
        "print(s.id, float(s.flatten(m).double().sum()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == spec.id
    assert float(out[1]) == float(spec.flatten(model).double().sum())


def test_unflatten_inverts_flatten(arch):
    model = build(arch)
    spec = ws.GraphSpec.from_module(model)
    vec, buf = spec.flatten(model), spec.flatten_buffers(model)
    state = spec.unflatten(vec, buf)
    for k, v in model.state_dict().items():
        assert torch.equal(state[k], v), k


def test_layer_ids_increase_along_edges():
    g = ws.to_graph(build("resnet_blocks"))
    src, dst = g.edge_index
    assert (g.layer[dst] > g.layer[src]).all()


@pytest.mark.parametrize("kernel_edges", ["channel", "entry"])
def test_float64_networks_round_trip(kernel_edges):
    model = nets.SmallCNN().double()
    g = ws.to_graph(model, kernel_edges=kernel_edges)
    assert g.edge_attr.dtype == torch.float64
    assert_same_state(model, ws.from_graph(g, like=nets.SmallCNN().double()))


@pytest.mark.parametrize("kernel_edges", ["channel", "entry"])
def test_slice_copies_equal_the_plain_gather(arch, kernel_edges):
    model = build(arch)
    spec = ws.GraphSpec.from_module(model, kernel_edges=kernel_edges)
    s = spec.source(spec.flatten(model), spec.flatten_buffers(model))
    assert torch.equal(spec.edge_features(s), s[spec.edge_src])
    batch = torch.stack([s, s * 2])
    assert torch.equal(spec.edge_features(batch), batch[:, spec.edge_src])


def test_module_path_equals_vector_path(arch):
    model = build(arch)
    spec = ws.GraphSpec.from_module(model)
    direct = spec.module_graph(model)
    via_vector = spec.graph(spec.flatten(model), spec.flatten_buffers(model))
    for key in ("x", "edge_attr", "extra_buffers"):
        assert torch.equal(direct[key], via_vector[key]), key


def test_a_module_that_reads_its_version_while_loading_comes_back():
    model = Versioned(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    graph = ws.to_graph(model, torch.zeros(1, 4))
    back = ws.from_graph(graph, Versioned(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                                           torch.nn.Linear(8, 2)))
    assert_same_state(model, back)
    merged = ws.merge([model, back])  # loads through the same path
    assert_same_state(model, merged)


@pytest.mark.parametrize("kernel_edges", ["channel", "entry"])
def test_maps_from_runs_agree_with_the_full_map_on_concatenations(kernel_edges):
    from tests.graph.test_concat import IMAGE, DenseNet, UNet

    for make in (DenseNet, UNet):
        model = make()
        spec = ws.GraphSpec.from_module(model, IMAGE, kernel_edges=kernel_edges)
        s = spec.source(spec.flatten(model), spec.flatten_buffers(model))
        assert torch.equal(spec.edge_features(s), s[spec.edge_src])
        sources = torch.cat([spec.edge_src.reshape(-1), spec.node_src.reshape(-1)])
        assert torch.equal(sources[spec.param_from], torch.arange(spec.num_params))
        direct = spec.module_graph(model)
        assert torch.equal(direct.edge_attr, s[spec.edge_src])
