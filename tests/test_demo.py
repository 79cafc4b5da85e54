"""The quick-start demo runs end to end (small: 10 briefly trained zoo runs, 1 epoch)."""

from __future__ import annotations

import json

from weightspace.demo import run_demo


def test_demo_builds_a_zoo_and_compares_gmn_with_statnn(tmp_path, capsys):
    assert run_demo(runs=10, epochs=1, out=str(tmp_path),
                    zoo_overrides=("zoo.epochs=2", "zoo.checkpoints=[1,2]")) == 0
    printed = capsys.readouterr().out
    assert "test Kendall tau: GMN" in printed and "bit for bit: True" in printed
    for model in ("gmn", "statnn"):
        metrics = json.loads((tmp_path / "train" / model / "metrics.json").read_text())
        assert metrics["model"] == model and "kendall_tau" in metrics["test"]
