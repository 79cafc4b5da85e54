import pytest
import torch
import torch_pruning as tp
from torch import nn

from tests.conftest import FAST, build, sample_inputs
from weightspace.pruning.macs import MacCounter, count_macs


def _torch_pruning_count(model, inputs) -> float:
    return float(tp.utils.count_ops_and_params(model, inputs)[0])


class Mixed(nn.Module):
    """Depthwise convolution, GroupNorm, GELU, ReLU6, a pooling module called twice, a flatten."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gn = nn.GroupNorm(2, 8)
        self.dw = nn.Conv2d(8, 8, 3, groups=8, bias=False)
        self.act, self.act6 = nn.GELU(), nn.ReLU6()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        x = self.pool(self.act(self.gn(self.conv(x))))
        x = self.pool(self.act6(self.dw(x)))
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("name", FAST)
def test_the_count_is_torch_prunings_without_a_copy(name):
    model = build(name).eval()
    inputs = sample_inputs(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert count_macs(model, inputs) == _torch_pruning_count(model, inputs)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_depthwise_groupnorm_gelu_and_a_module_called_twice_are_counted_per_call():
    model, x = Mixed().eval(), torch.rand(2, 3, 10, 10)
    assert count_macs(model, x) == _torch_pruning_count(model, (x,))
    with torch.no_grad(), MacCounter(model) as counter:
        model(x)
        model(x)  # a second pass is not recorded
    assert counter.exact and len(counter.calls) == 8 and counter.macs() == count_macs(model, x)


def test_a_type_it_does_not_model_falls_back_to_torch_prunings_count():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Upsample(scale_factor=2), nn.Flatten(),
                          nn.LazyLinear(2))
    x = torch.rand(1, 3, 6, 6)
    model(x)
    with torch.no_grad(), MacCounter(model) as counter:
        model(x)
    assert not counter.exact
    assert count_macs(model, x) == _torch_pruning_count(model, (x,))
