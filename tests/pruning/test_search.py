import pytest
import torch

import weightspace.pruning.structural as structural
from tests.conftest import build, sample_inputs
from tests.pruning.test_macs import Mixed
from weightspace.nets import ResNet
from weightspace.pruning.macs import count_macs

CASES = ["small_cnn", "flatten_cnn", "resnet_blocks", "mlp_layernorm", "conv1d"]


def _per_pass(*args):
    """The search as it was: a copy pruned at every trial ratio."""
    return structural.prune_search(*args, one_graph=False)


@pytest.mark.parametrize("importance", ["group_l2", "l1"])
@pytest.mark.parametrize("name", CASES)
def test_one_graph_finds_the_ratio_and_network_that_a_pass_per_trial_finds(name, importance):
    model = build(name).eval()
    inputs = sample_inputs(model)
    for speedup in (1.5, 3.0):
        net, ratio, passes = structural.prune_search(model, inputs, speedup, importance)
        again, ratio_again, passes_again = _per_pass(model, inputs, speedup, importance)
        assert passes == 1 and passes_again > 5 and ratio == ratio_again
        ours, theirs = net.state_dict(), again.state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours)
        assert count_macs(model, inputs) / count_macs(net, inputs) >= speedup


def test_a_random_importance_is_drawn_once_for_the_search_and_its_pass():
    torch.manual_seed(0)
    model, x = ResNet((1, 1), (16, 32), 1, 10, 8).eval(), torch.rand(2, 1, 8, 8)
    net, _, passes = structural.prune_search(model, x, 2.0, "random")
    assert passes == 1 and count_macs(model, x) / count_macs(net, x) >= 2.0


def test_grouped_channels_fall_back_to_a_pass_per_trial_with_the_same_result():
    model, x = Mixed().eval(), torch.rand(2, 3, 10, 10)  # GroupNorm: channels move in groups
    net, ratio, passes = structural.prune_search(model, x, 1.5)
    again, ratio_again, _ = _per_pass(model, x, 1.5)
    assert passes > 5 and ratio == ratio_again
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                 again.state_dict().values(), strict=True))
