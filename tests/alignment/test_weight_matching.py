"""Weight matching finds a network's relabelling exactly, and ``align`` never changes what a
network computes."""

from __future__ import annotations

import copy

import pytest
import torch

import weightspace as ws
from tests.conftest import FAST, build, sample_inputs
from weightspace.alignment import weight_matching
from weightspace.errors import SpecMismatchError
from weightspace.graph.symmetry import sample_symmetry


def relabelled(model, seed):
    """A copy of ``model`` with its neurons permuted and, behind odd activations, flipped."""
    spec = ws.GraphSpec.from_module(model)
    t = sample_symmetry(spec, torch.Generator().manual_seed(seed), scale=False)
    other = copy.deepcopy(model)
    buffers = t.buffers(spec.flatten_buffers(model)) if len(spec.buffers) else None
    other.load_state_dict(spec.unflatten(t(spec.flatten(model)), buffers))
    return other


@pytest.mark.parametrize("name", FAST)
def test_a_relabelled_copy_is_matched_back_exactly(name):
    model = build(name)
    other = relabelled(model, seed=3)
    spec = ws.GraphSpec.from_module(model)
    assert not torch.equal(spec.flatten(other), spec.flatten(model))
    assert ws.distance(model, other) == 0.0
    back = ws.align(model, other)
    for a, b in zip(model.state_dict().values(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", FAST)
def test_align_keeps_the_function_of_an_independent_network(name):
    reference, other = build(name, seed=0), build(name, seed=1)
    aligned = ws.align(reference, other)
    inputs = tuple(x.double() if x.is_floating_point() else x for x in sample_inputs(other))
    with torch.no_grad():
        y0 = copy.deepcopy(other).double().eval()(*inputs)
        y1 = copy.deepcopy(aligned).double().eval()(*inputs)
    assert float((y1 - y0).abs().max() / y0.abs().max()) <= 1e-10
    spec = ws.GraphSpec.from_module(reference)
    before = (spec.flatten(reference) - spec.flatten(other)).norm() / spec.flatten(reference).norm()
    assert ws.distance(reference, other) < float(before)


def test_the_transform_is_a_symmetry_of_the_spec():
    model, other = build("mlp_tanh", 0), build("mlp_tanh", 1)
    spec = ws.GraphSpec.from_module(model)
    t = weight_matching(spec, spec.flatten(model), spec.flatten(other))
    assert sorted(t.node_perm.tolist()) == list(range(spec.num_nodes))
    assert set(t.node_scale.abs().tolist()) == {1.0}  # signs only: tanh is odd
    assert (t.node_scale < 0).any()


def test_bad_input_is_named():
    with pytest.raises(SpecMismatchError, match="two architectures"):
        ws.align(build("mlp"), build("mlp_tanh"))
    with pytest.raises(ValueError, match="method"):
        ws.align(build("mlp"), build("mlp", 1), method="magic")


def test_merge_averages_aligned_networks_and_recalibrates_batchnorm():
    a = build("resnet_blocks", 0)
    b = relabelled(a, seed=5)  # the same network in other coordinates
    spec = ws.GraphSpec.from_module(a)
    merged = ws.merge([a, b])  # aligned first: the average of a network with itself
    assert torch.allclose(spec.flatten(merged), spec.flatten(a), atol=1e-6)
    naive = ws.merge([a, b], align=False)
    assert not torch.allclose(spec.flatten(naive), spec.flatten(a), atol=1e-3)
    x = torch.rand(64, 3, 16, 16)
    calibrated = ws.merge([a, build("resnet_blocks", 1)], data=x)
    assert not torch.equal(spec.flatten_buffers(calibrated), spec.flatten_buffers(merged))
    with pytest.raises(ValueError, match="at least two"):
        ws.merge([a])
    with pytest.raises(ValueError, match="summing to 1"):
        ws.merge([a, b], weights=[0.9, 0.9])


def test_distances_of_zoo_rows_to_one_network():
    from weightspace.alignment import distances, pairwise_distances

    model = build("mlp_tanh", 0)
    spec = ws.GraphSpec.from_module(model)
    rows = torch.stack([spec.flatten(m) for m in (relabelled(model, 1), build("mlp_tanh", 2),
                                                  relabelled(model, 4))])
    d = distances(spec, spec.flatten(model), rows)
    assert d[0] == 0 and d[2] == 0 and d[1] > 0.1
    assert float(d[1]) == pytest.approx(ws.distance(model, build("mlp_tanh", 2)))
    pair = pairwise_distances(spec, rows)
    assert pair.shape == (3, 3) and torch.all(pair.diagonal() == 0)
    assert pair[0, 2] == 0 and pair[0, 1] > 0.1


def test_running_statistics_move_but_do_not_steer_the_matching():
    """BatchNorm statistics are re-estimated after a merge, so only parameters enter the cost:
    the same weights with other statistics match the same way, and zoo rows of a BatchNorm
    network need no buffers."""
    from weightspace.alignment import distances

    a, b = build("resnet_blocks", 0), build("resnet_blocks", 1)
    spec = ws.GraphSpec.from_module(a)
    shifted = copy.deepcopy(b)
    for m in shifted.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(generator=torch.Generator().manual_seed(0))
            m.running_var.uniform_(0.1, 10.0)
    t = weight_matching(spec, spec.flatten(a), spec.flatten(b))
    assert torch.equal(t.node_perm, weight_matching(spec, spec.flatten(a),
                                                    spec.flatten(shifted)).node_perm)
    assert not torch.equal(t.node_perm, torch.arange(spec.num_nodes))
    back = relabelled(b, seed=2)  # a row's buffers travel with it where a module is built
    d = distances(spec, spec.flatten(b), torch.stack([spec.flatten(back), spec.flatten(a)]))
    assert d[0] == 0 and d[1] > 0.1


@pytest.mark.parametrize("name", ["mlp", "small_cnn", "resnet_blocks", "tiny_vit"])
def test_scale_matching_undoes_positive_rescalings(name):
    """A copy permuted and rescaled behind its ReLUs comes back to (nearly) zero distance only
    when scales are matched too; independent networks only come closer, function kept."""
    model = build(name)
    spec = ws.GraphSpec.from_module(model)
    t = sample_symmetry(spec, torch.Generator().manual_seed(3))  # permutations and scales
    assert (t.node_scale != 1).any()
    other = copy.deepcopy(model)
    buffers = t.buffers(spec.flatten_buffers(model)) if len(spec.buffers) else None
    other.load_state_dict(spec.unflatten(t(spec.flatten(model)), buffers))
    assert ws.distance(model, other) > 0.1
    assert ws.distance(model, other, scale=True) < 1e-4
    independent = build(name, seed=1)
    assert ws.distance(model, independent, scale=True) < ws.distance(model, independent)
    aligned = ws.align(model, independent, scale=True)  # checked to compute the same function
    assert not torch.equal(spec.flatten(aligned), spec.flatten(ws.align(model, independent)))


@pytest.mark.parametrize("name", ["mixer", "levit"])
def test_token_mixing_and_interleaved_heads_align(name):
    """Units whose groups share a block order but not a width (LeViT's keys, values and head
    nodes) and token-mixing sets are matched; a relabelled copy comes back exactly."""
    from tests.graph.test_library_modules import IMAGE, Levit, Mixer

    make = {"mixer": Mixer, "levit": Levit}[name]
    torch.manual_seed(0)
    model = make().eval()
    spec = ws.GraphSpec.from_module(model, IMAGE)
    t = sample_symmetry(spec, torch.Generator().manual_seed(3), scale=False, sign=False)
    other = copy.deepcopy(model)
    other.load_state_dict(spec.unflatten(t(spec.flatten(model)),
                                         t.buffers(spec.flatten_buffers(model))))
    assert ws.distance(model, other, example_inputs=IMAGE) == 0.0
    torch.manual_seed(1)
    independent = make().eval()
    for how in ("weights", "activations"):  # each checked to compute the same function
        ws.align(model, independent, method=how, data=torch.randn(16, 3, 8, 8),
                 example_inputs=IMAGE)


def _replicas():
    from tests.graph import test_concat as C
    from tests.graph import test_library_modules as L
    from tests.graph import test_shared_weights as S
    from tests.graph import test_transformer as T

    image, tokens = torch.zeros(2, 3, 8, 8), torch.zeros(2, 6, 5)
    return {"densenet": (C.DenseNet, image), "inception": (C.Inception, image),
            "unet": (C.UNet, image), "fused-qkv": (L.Block, tokens), "se-block": (L.MBConv, image),
            "gpt": (lambda: T.GPT(True), T.IDS), "tied-lm": (S.TiedLM, S.TOKENS),
            "called-twice": (S.CalledTwice, torch.zeros(2, 5))}


@pytest.mark.parametrize("name", list(_replicas()))
def test_the_readers_architectures_align_keeping_their_function(name):
    """Concatenations, gates, tied and shared weights, transformers: weight matching keeps
    what each computes (``ws.align`` checks it in float64)."""
    make, x = _replicas()[name]
    torch.manual_seed(0)
    reference = make().eval()
    torch.manual_seed(1)
    other = make().eval()
    aligned = ws.align(reference, other, example_inputs=(x,))
    spec = ws.GraphSpec.from_module(reference, (x,))
    assert not torch.equal(spec.flatten(aligned), spec.flatten(other))
