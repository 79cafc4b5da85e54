"""Networks trained together with vmap equal the same runs trained alone with torch.optim."""

from __future__ import annotations

import pytest
import torch

from model_zoo.training import (
    FlatParams,
    evaluate_vmapped,
    train_alone,
    train_vmapped,
    unstack,
)
from weightspace.datasets import load_digits_splits
from weightspace.nets import MLP, SmallCNN


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
@pytest.mark.parametrize("net", ["cnn", "mlp"])
def test_vmap_training_equals_training_alone(optimizer, net):
    x, y = load_digits_splits(0)["train"]
    if net == "mlp":
        x = x.flatten(1)
    torch.manual_seed(0)
    models = [SmallCNN() if net == "cnn" else MLP(64, [32], 10) for _ in range(3)]
    subsets = [torch.randperm(len(y))[: int(len(y) * f)] for f in (1.0, 0.5, 0.1)]
    lr = torch.tensor([1e-3, 3e-3, 1e-2])
    wd = torch.tensor([0.0, 1e-4, 1e-3])
    checkpoints = train_vmapped(models[0], models, x, y, subsets, [1, 2, 3], lr, wd, optimizer,
                                epochs=2, batch_size=32, checkpoint_epochs=[1, 2])
    assert [c.epoch for c in checkpoints] == [1, 2]
    for b in range(3):
        alone = train_alone(models[b], x, y, subsets[b], b + 1, float(lr[b]), float(wd[b]),
                            optimizer, epochs=2, batch_size=32)
        together = unstack(models[0], checkpoints[-1].params, b)
        for p, q in zip(alone.parameters(), together.parameters(), strict=True):
            torch.testing.assert_close(q, p, rtol=1e-4, atol=2e-5)
        assert not torch.equal(together.head.weight if net == "cnn" else together[0].weight,
                               models[b].head.weight if net == "cnn" else models[b][0].weight)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_vmap_training_on_cuda_equals_the_cpu():
    x, y = load_digits_splits(0)["train"]
    torch.manual_seed(0)
    models = [SmallCNN() for _ in range(2)]
    subsets = [torch.arange(len(y)), torch.arange(len(y) // 2)]
    lr, wd = torch.tensor([1e-3, 3e-3]), torch.tensor([0.0, 1e-4])
    args = (subsets, [1, 2], lr, wd, "adam", 1, 32, [1])
    cpu = train_vmapped(models[0], models, x, y, *args)[-1].flat
    gpu = train_vmapped(models[0], [m.cuda() for m in models], x.cuda(), y.cuda(), *args)
    torch.testing.assert_close(gpu[-1].flat.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_vmapped_evaluation_matches_each_network():
    x, y = load_digits_splits(0)["test"]
    models = [SmallCNN() for _ in range(3)]
    fp = FlatParams(models)
    loss, acc = evaluate_vmapped(models[0], fp.views(fp.flat), x, y)
    for b, m in enumerate(models):
        with torch.no_grad():
            logits = m.eval()(x)
        torch.testing.assert_close(loss[b], torch.nn.functional.cross_entropy(logits, y))
        assert acc[b] == (logits.argmax(1) == y).float().mean()


def test_inrs_fitted_together_equal_inrs_fitted_alone():
    from model_zoo.recipes.digits_inr import DigitsINR

    recipe = DigitsINR({"hidden": [32, 32], "w0": 30.0, "copies": 2, "lr": 3e-4, "steps": 40,
                        "checkpoints": [40]})
    runs = [recipe.run(i, 0) for i in range(3)]
    assert runs[0].hparams["image"] == runs[1].hparams["image"]  # two copies of one image
    trained = recipe.train(runs)[0]
    for b, run in enumerate(runs):
        alone = recipe.fit_alone(run)
        torch.testing.assert_close(trained.params[b], trained.spec.flatten(alone),
                                   rtol=1e-4, atol=1e-5)
    assert trained.meta["label"][0] == trained.meta["label"][1]
    from model_zoo.recipes.digits_inr import digit_images, pixel_grid

    image = digit_images()[0][runs[0].hparams["image"]].unsqueeze(-1)
    with torch.no_grad():
        before = ((recipe.build(runs[0])(pixel_grid()) - image) ** 2).mean()
    assert trained.meta["psnr"][0] > 10 * torch.log10(1 / before).item() + 3


def test_batchnorm_networks_train_together_like_alone():
    from weightspace.nets import ResNet

    x, y = load_digits_splits(0)["train"]
    torch.manual_seed(0)
    models = [ResNet((1, 1), (8, 16), 1, 10, 8) for _ in range(2)]
    subsets = [torch.arange(len(y)), torch.arange(len(y))[:300]]
    lr, wd = torch.tensor([1e-2, 3e-3]), torch.tensor([1e-4, 0.0])
    ck = train_vmapped(models[0], models, x, y, subsets, [1, 2], lr, wd, "sgd", epochs=1,
                       batch_size=32, checkpoint_epochs=[1])[-1]
    for b in range(2):
        alone = train_alone(models[b], x, y, subsets[b], b + 1, float(lr[b]), float(wd[b]),
                            "sgd", epochs=1, batch_size=32)
        for name, p in alone.named_parameters():
            torch.testing.assert_close(ck.params[name][b], p, rtol=1e-4, atol=1e-5)
        for name, buf in alone.named_buffers():
            torch.testing.assert_close(ck.buffers[name][b], buf, rtol=1e-4, atol=1e-5)
