"""Meta pruning: ``task=meta_prune`` trains from the Hydra app on a real digits_resnet zoo, and
``ws.prune(..., metanetwork=...)`` applies its equivariant edit before pruning."""

from __future__ import annotations

import copy

import pytest
import torch

import weightspace as ws
from weightspace.api import metanetwork_edit
from weightspace.configs import compose as compose_config
from weightspace.errors import SpecMismatchError
from weightspace.graph.symmetry import sample_symmetries
from weightspace.nets import SmallCNN
from weightspace.tasks import MetaPrune
from weightspace.training import run
from weightspace.zoo import Zoo
from weightspace.zoo.build import build_from_config
from weightspace.zoo.recipe import recipe_for

X = torch.zeros(2, 1, 8, 8)



def compose_zoo(overrides):
    return compose_config("build_zoo", overrides)

def config(zoo, *overrides):
    return compose_config("train", [f"data.zoo={zoo}", "trainer.progress=false",
                                    "trainer.batch_size=4", "model.hidden=16",
                                    "model.layers=2", "data.fractions=[0.5,0.25,0.25]",
                                    *overrides])


@pytest.fixture(scope="module")
def resnet_zoo(tmp_path_factory):
    """8 trained digits ResNets (8 and 16 channels, 2 epochs)."""
    path = tmp_path_factory.mktemp("resnets") / "digits_resnet.h5"
    return build_from_config(compose_zoo(["zoo=digits_resnet", "n_runs=8", f"out={path}",
                                          "zoo.epochs=2", "zoo.checkpoints=[2]",
                                          "zoo.widths=[8,16]", "progress=false"]))


@pytest.fixture(scope="module")
def trained(resnet_zoo, tmp_path_factory):
    out = tmp_path_factory.mktemp("meta_prune")
    results = run(config(resnet_zoo, "model=gmn", "task=meta_prune", "trainer.epochs=2",
                         "task.batch_size=32"), out)
    return out, results


def zoo_network(zoo_path, index=0):
    zoo = Zoo(zoo_path)
    recipe = recipe_for(zoo.recipe)
    return zoo.load(index, copy.deepcopy(recipe.network_of(zoo.arch_of(index)))).eval()


def test_meta_prune_trains_and_scores_pruned_accuracy(trained):
    out, results = trained
    for name in ("best.pt", "metrics.csv", "meta_prune.png", "learning_curves.png"):
        assert (out / name).exists(), name
    for split in ("val", "test"):
        m = results[split]
        assert set(m) == {"acc_unedited", "acc", "pruned_acc_unedited", "pruned_acc"}
        assert all(0 <= v <= 1 for v in m.values())
        assert m["pruned_acc"] <= m["acc"] + 0.2  # pruning to 2x does not help much


def test_prune_with_the_metanetwork_edits_then_prunes(trained, resnet_zoo):
    out, _ = trained
    net = zoo_network(resnet_zoo)
    before = copy.deepcopy(net.state_dict())
    edited = metanetwork_edit(net, X, out)
    changed = [k for k, v in edited.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all("running" not in k for k in changed)  # weights move, stats stay
    pruned, report = ws.prune(net, X, 2.0, metanetwork=out, data=(torch.randn(16, 1, 8, 8),
                                                                  torch.randint(10, (16,))))
    assert report.speedup >= 2.0 and report.accuracy_edited is not None
    assert "edited by the metanetwork" in str(report)
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())  # input intact
    torch.testing.assert_close(ws.from_graph(ws.to_graph(pruned), pruned)(X), pruned(X))


def test_the_edited_network_is_fine_tuned_before_pruning(trained, resnet_zoo):
    """``finetune_edited`` sees the edited, unpruned network (Liu et al.'s fine-tuning after
    the metanetwork); what it returns is what gets pruned."""
    out, _ = trained
    net = zoo_network(resnet_zoo)
    edited = metanetwork_edit(net, X, out)
    seen = []

    def tune(model):
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        with torch.no_grad():
            model.fc.bias.add_(100.0 * torch.arange(10.0))  # the pruned net must carry this
        return model

    pruned, report = ws.prune(net, X, 2.0, metanetwork=out, finetune_edited=tune)
    assert len(seen) == 1 and "fine-tuned before pruning" in str(report)
    assert all(torch.equal(v, seen[0][k]) for k, v in edited.state_dict().items())
    assert pruned(torch.randn(3, 1, 8, 8)).argmax(-1).tolist() == [9, 9, 9]
    with pytest.raises(ValueError, match="finetune_edited trains the metanetwork's edit"):
        ws.prune(net, X, 2.0, finetune_edited=tune)
    with pytest.raises(ValueError, match=r"finetune_edited=\{...\} trains on finetune_data"):
        ws.prune(net, X, 2.0, metanetwork=out, finetune_edited={"epochs": 1})


def test_the_metanetworks_edit_is_permutation_equivariant(trained, resnet_zoo):
    """edit(pi(theta)) = pi(edit(theta)) for random hidden-channel permutations pi (BatchNorm
    statistics move with their channels)."""
    out, _ = trained
    net = zoo_network(resnet_zoo, 1)
    spec = ws.GraphSpec.from_module(net)
    vec, buffers = spec.flatten(net), spec.flatten_buffers(net)
    edited = spec.flatten(metanetwork_edit(net, X, out))
    for seed in range(2):
        t = sample_symmetries(spec, 1, torch.Generator().manual_seed(seed), sign=False,
                              scale=False)[0]
        permuted = copy.deepcopy(net)
        permuted.load_state_dict(spec.unflatten(t(vec), t.buffers(buffers)))
        torch.testing.assert_close(spec.flatten(metanetwork_edit(permuted, X, out)), t(edited),
                                   rtol=1e-4, atol=1e-5)


def test_train_speedups_draw_the_switched_off_fraction_each_step(resnet_zoo):
    """``task.train_speedups=[lo, hi]``: each step masks a fraction of the channel groups drawn
    between ``1 - lo^(-1/2)`` and ``1 - hi^(-1/2)``; without it, ``1 - speedup^(-1/2)``."""
    zoo = Zoo(resnet_zoo)
    archs = [zoo.arch_of(0)]
    task = MetaPrune(zoo.recipe, archs, train_speedups=[1.5, 3.0])
    draws = [task._mask_fraction() for _ in range(100)]
    assert 1 - 1.5 ** -0.5 <= min(draws) < 0.22 and 0.39 < max(draws) <= 1 - 3 ** -0.5
    assert MetaPrune(zoo.recipe, archs)._mask_fraction() == pytest.approx(1 - 2 ** -0.5)
    with pytest.raises(ValueError, match=r"train_speedups must be \[lo, hi\]"):
        MetaPrune(zoo.recipe, archs, train_speedups=[3.0, 1.5])
    with pytest.raises(ValueError, match="give one"):
        MetaPrune(zoo.recipe, archs, mask_fraction=0.3, train_speedups=[1.5, 3.0])


def test_metanetwork_mistakes_are_named(trained, resnet_zoo, tmp_path):
    out, _ = trained
    with pytest.raises(SpecMismatchError, match=r"SmallCNN.*digits_resnet networks"):
        ws.prune(SmallCNN(), X, 2.0, metanetwork=out)
    predictor = tmp_path / "predictor"
    run(config(resnet_zoo, "model=mlp", "trainer.epochs=1"), predictor)
    with pytest.raises(ValueError, match="predicts rather than edits"):
        ws.prune(zoo_network(resnet_zoo), X, 2.0, metanetwork=predictor)
    with pytest.raises(ValueError, match="task.speedup must be > 1"):
        run(config(resnet_zoo, "task=meta_prune", "task.speedup=1.0"), tmp_path / "bad")
