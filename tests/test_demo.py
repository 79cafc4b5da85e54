"""The quick-start demo runs end to end (small: 30 briefly trained zoo runs, 1 epoch)."""

from __future__ import annotations

import json

import pytest

from weightspace.demo import run_demo, tau_standard_error


def test_demo_builds_a_zoo_and_compares_gmn_with_statnn(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WEIGHTSPACE_DATA", str(tmp_path / "data"))
    assert run_demo(runs=30, epochs=1, out=str(tmp_path),
                    zoo_overrides=("zoo.epochs=2", "zoo.checkpoints=[1,2]", "progress=false",
                                   "workers=1")) == 0
    printed = capsys.readouterr().out
    assert "test Kendall tau: GMN" in printed and "bit for bit: True" in printed
    assert "noise ceiling" in printed and "standard error" in printed
    for model in ("gmn", "statnn"):
        metrics = json.loads((tmp_path / "train" / model / "metrics.json").read_text())
        assert metrics["model"] == model and "kendall_tau" in metrics["test"]
        assert metrics["networks"]["test"] == 3  # 30 runs, split 80/10/10 by run


def test_tau_standard_error_is_the_null_spread_of_kendall_tau():
    assert tau_standard_error(200) == pytest.approx(0.0476, abs=1e-3)
    assert tau_standard_error(40) == pytest.approx(0.1100, abs=1e-3)
    assert tau_standard_error(1) == float("inf")
