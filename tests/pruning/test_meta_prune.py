"""Meta pruning: ``task=meta_prune`` trains from the Hydra app on a real digits_resnet zoo, and
``ws.prune(..., metanetwork=...)`` applies its equivariant edit before pruning."""

from __future__ import annotations

import copy

import pytest
import torch
from hydra import compose, initialize_config_dir

import weightspace as ws
from model_zoo.app import CONFIG_DIR, build_from_config
from model_zoo.app import compose as compose_zoo
from model_zoo.nets import SmallCNN
from model_zoo.recipes import recipe_for
from weightspace.errors import SpecMismatchError
from weightspace.graph.symmetry import sample_symmetries
from weightspace.pruning import metanetwork_edit
from weightspace.train import run
from weightspace.zoo import Zoo

X = torch.zeros(2, 1, 8, 8)


def config(zoo, *overrides):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=[f"data.zoo={zoo}", "trainer.progress=false",
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
