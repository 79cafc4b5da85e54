"""scripts/inr_reference.py renders an INR zoo's networks and trains the signal classifier that
INR classification is judged against."""

from __future__ import annotations

import torch

from scripts.inr_reference import main, rendered
from tests.zoo.test_build import build_mnist1d
from weightspace.nets import SIREN


def test_rendered_signals_are_what_the_inrs_draw(tmp_path, monkeypatch, capsys):
    zoo = build_mnist1d(tmp_path, monkeypatch, "mnist1d_inr", "n_runs=30", "zoo.steps=20",
                        "zoo.checkpoints=[20]")
    x, y = rendered(zoo, "train", 0)
    assert x.shape == (24, 40) and y.shape == (24,)  # 80% of 30 runs, 40 samples a signal
    index = int(zoo.dataset("train", seed=0).indices[0])
    meta = zoo.metadata()
    inr = zoo.load(index, SIREN(1, (32, 32), 1, w0=30.0)).eval()
    with torch.no_grad():
        one = inr(torch.linspace(-1, 1, 40).unsqueeze(1)).squeeze(-1)
    row = sorted(int(i) for i in zoo.dataset("train", seed=0).indices).index(index)
    torch.testing.assert_close(x[row], one, rtol=1e-4, atol=1e-5)
    assert int(y[row]) == int(meta["label"][index])
    main([str(tmp_path / "mnist1d_inr.h5"), "--epochs", "2", "--seeds", "2"])
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "24 training and 3 test INRs" in printed
