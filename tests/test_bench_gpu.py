"""scripts/bench_gpu.sh, the one-command CUDA benchmark, runs its CPU fallback end to end, so
that it works the day a GPU is lent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gpu_runs_every_part_on_the_cpu():
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "bench_gpu.sh"), "--quick",
                           "--device", "cpu"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for part in ("## (1) batching", "## (2) metanetwork step", "## (3) zoo training",
                 "## (4) batched_forward", "# done in"):
        assert part in out, part
    assert "| Small CNN | cpu |" in out  # a row of every table, on the device asked for
    assert "| mnist1d_mlp (MLP 40-32-32-10) | 4x64 | cpu |" in out
    assert "digits_cnn on cpu" in out and "Small CNN (3x16 channels) on cpu" in out
    bad = subprocess.run(["bash", str(ROOT / "scripts" / "bench_gpu.sh"), "--fast"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr
