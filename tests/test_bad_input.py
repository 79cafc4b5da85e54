"""Bad input at the command line: each case gets one line on stderr naming the problem, exit
status 2 (usage) or 1 (data), never a traceback and never exit 0 with a wrong result."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest

from tests.zoo.conftest import TINY_MLP, write_models
from weightspace.cli import main as cli
from weightspace.configs import compose
from weightspace.zoo import Zoo
from weightspace.zoo.build import build_from_config
from weightspace.zoo.format import atomic_h5, create_arch, write_root_attrs
from weightspace.zoo.lock import build_lock
from weightspace.zoo.reader import shard_dir

TRAIN = ["train", "data.zoo={zoo}", "model=statnn", "trainer.progress=false",
         "out_dir={tmp}/run"]
BUILD = ["zoo", "build", "out={tmp}/new.h5", *TINY_MLP]

# (arguments, exit status, what the one line must say)
CASES = [
    # configs of `weightspace train`
    ([*TRAIN, "trainer.epoch=3"], 2, "trainer.epoch"),
    ([*TRAIN, "model=gmnn"], 2, "model/gmnn"),
    ([*TRAIN, "task=nope"], 2, "task/nope"),
    ([*TRAIN, "trainer.epochs=-3"], 2, "trainer.epochs=-3"),
    ([*TRAIN, "trainer.schedule=linear"], 2, "constant or cosine"),
    ([*TRAIN, "+model.precision=fp8"], 2, "bf16-mixed"),
    ([*TRAIN, "model.probe_data=test"], 2, "random or val"),
    ([*TRAIN, "trainer.epochs=0"], 2, "trainer.epochs=0"),
    ([*TRAIN, "trainer.epochs=abc"], 2, "trainer.epochs='abc'"),
    ([*TRAIN, "trainer.epochs=[1"], 2, "'[1'"),
    ([*TRAIN, "trainer.lr=0"], 2, "trainer.lr=0"),
    ([*TRAIN, "trainer.lr=-0.001"], 2, "trainer.lr=-0.001"),
    ([*TRAIN, "trainer.batch_size=0"], 2, "trainer.batch_size=0"),
    ([*TRAIN, "trainer.weight_decay=-1"], 2, "trainer.weight_decay=-1"),
    ([*TRAIN, "trainer.num_workers=-1"], 2, "trainer.num_workers=-1"),
    ([*TRAIN, "trainer.optimizer=lbfgs"], 2, "lbfgs"),
    ([*TRAIN, "data.fractions=[0.5,0.5,0.5]"], 2, "data.fractions"),
    ([*TRAIN, "data.fractions=[0,0.5,0.5]"], 2, "data.fractions"),
    ([*TRAIN, "model.hidden=0"], 2, "model.hidden=0"),
    ([*TRAIN, "model=gmn", "model.layers=-1"], 2, "model.layers=-1"),
    ([*TRAIN, "model=gmn", "model.probes=-4"], 2, "model.probes=-4"),
    ([*TRAIN, "augment.dropout=1.5"], 2, "augment.dropout=1.5"),
    ([*TRAIN, "augment.noise=-0.1"], 2, "augment.noise=-0.1"),
    (["train", "model=statnn", "trainer.progress=false"], 2, "data.zoo"),
    ([*TRAIN[:1], "data.zoo={tmp}/missing.h5", *TRAIN[2:]], 1, "no zoo at"),
    ([*TRAIN[:1], "data.zoo={junk}", *TRAIN[2:]], 1, "not a readable HDF5 file"),
    ([*TRAIN, "data.arch=deadbeef"], 1, "deadbeef"),
    ([*TRAIN, "task.target=nope"], 1, "nope"),
    # configs of `weightspace zoo build`
    (["zoo", "build", "zoo=nope", "out={tmp}/new.h5"], 2, "zoo/nope"),
    ([*BUILD, "n_runs=0"], 2, "n_runs=0"),
    ([*BUILD, "n_runs=-5"], 2, "n_runs=-5"),
    ([*BUILD, "chunk_size=0"], 2, "chunk_size=0"),
    ([*BUILD, "workers=0"], 2, "workers=0"),
    ([*BUILD, "rank=2", "world=2"], 2, "rank=2"),
    ([*BUILD, "zoo.epochs=0"], 2, "zoo.epochs=0"),
    ([*BUILD, "zoo.checkpoints=[1,5]"], 2, "[5] come after"),
    ([*BUILD, "zoo.checkpoints=[]"], 2, "zoo.checkpoints=[]"),
    ([*BUILD, "zoo.lr=[0.1,0.01]"], 2, "zoo.lr"),
    ([*BUILD, "zoo.weight_decay=[-1,1]"], 2, "zoo.weight_decay"),
    ([*BUILD, "zoo.train_fractions=[0]"], 2, "zoo.train_fractions"),
    ([*BUILD, "zoo.widths=[0]"], 2, "zoo.widths"),
    ([*BUILD, "zoo.batch_size=0"], 2, "zoo.batch_size=0"),
    ([*BUILD, "zoo.recipe=nope"], 2, "unknown recipe 'nope'"),
    ([*BUILD, "zoo.dataset=cifar"], 2, "unknown dataset source 'cifar'"),
    ([*BUILD, "zoo.dataset=npz:{tmp}/missing.npz"], 1, "missing.npz"),
    ([*BUILD, "n_runs=1", "zoo.epoch=2"], 2, "zoo.epoch"),
    (["zoo", "build", "zoo=digits_cnn", "zoo.dropouts=[1.0]", "out={tmp}/new.h5"], 2,
     "zoo.dropouts"),
    # zoo files
    (["zoo", "verify", "{tmp}/missing.h5"], 1, "no zoo at"),
    (["zoo", "info", "{tmp}/missing.h5"], 1, "no zoo at"),
    (["zoo", "info", "{junk}"], 1, "not a readable HDF5 file"),
    (["zoo", "info", "{bad_recipe}"], 1, "recipe attribute is not JSON"),
    (["zoo", "merge", "{tmp}/out.h5", "{zoo}", "{tmp}/missing.h5"], 1, "no zoo at"),
    (["zoo", "merge", "{tmp}/out.h5", "{zoo}", "{other_recipe}"], 1, "different configs"),
    (["zoo", "merge", "{tmp}/out.h5", "{nan_rows}"], 1, "NaN"),
    (["zoo", "merge", "{tmp}/out.h5", "{twin_a}", "{twin_b}"], 1, "different weights"),
    (["zoo", "import", "small_cnn_zoo", "{tmp}/missing", "{tmp}/out.h5"], 1, "missing"),
    (["zoo", "import", "inr", "{tmp}/missing.json", "{tmp}/out.h5"], 1, "missing.json"),
    # evaluate
    (["evaluate", "foo"], 2, "expected key=value"),
    (["evaluate", "split=test"], 2, "ckpt=RUN_DIR"),
    (["evaluate", "ckpt={tmp}/missing"], 1, "missing"),
    (["evaluate", "ckpt={junk}"], 1, "junk"),
    # generate
    (["generate", "n=3"], 2, "ckpt=RUN_DIR"),
    (["generate", "ckpt={tmp}/missing", "n=3", "out={tmp}/s.h5", "temperature=2"], 2,
     "expected key=value"),
    (["generate", "ckpt={tmp}/missing", "n=3", "out={tmp}/s.h5"], 1, "missing"),
    (["generate", "ckpt={junk}", "n=3", "out={tmp}/s.h5"], 1, "junk"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad")
    zoo = tmp / "zoo.h5"
    build_from_config(compose("build_zoo", ["n_runs=10", f"out={zoo}", *TINY_MLP]))
    junk = tmp / "junk.h5"
    junk.write_bytes(b"not a zoo" * 100)
    bad_recipe = tmp / "bad_recipe.h5"
    shutil.copy(zoo, bad_recipe)
    with h5py.File(bad_recipe, "a") as f:
        f.attrs["recipe"] = "{not json"
    other_recipe = tmp / "other.h5"
    build_from_config(compose("build_zoo", ["n_runs=3", f"out={other_recipe}", *TINY_MLP,
                                            "zoo.epochs=2", "zoo.checkpoints=[2]"]))
    nan_rows = tmp / "nan.h5"
    _raw_zoo(nan_rows, run_ids=[0, 1], nan_row=1)
    twin_a, twin_b = tmp / "twin_a.h5", tmp / "twin_b.h5"
    write_models(twin_a, np.array([0, 1]), arch="mlp")
    write_models(twin_b, np.array([1, 2]), arch="mlp")  # run 1 again, other weights
    return {"tmp": tmp, "zoo": zoo, "junk": junk, "bad_recipe": bad_recipe,
            "other_recipe": other_recipe, "nan_rows": nan_rows, "twin_a": twin_a,
            "twin_b": twin_b}


def _raw_zoo(path, run_ids, nan_row=None, recipe=None):
    """A zoo file written directly, bypassing the writer's checks (damage a writer refuses)."""
    import weightspace as ws
    from weightspace import nets

    spec = ws.GraphSpec.from_module(nets.MLP(4, [8], 2))
    params = np.random.default_rng(0).normal(size=(len(run_ids), spec.num_params))
    if nan_row is not None:
        params[nan_row, 3] = np.nan
    meta = {"run_id": np.array(run_ids), "seed": np.zeros(len(run_ids)),
            "epoch": np.ones(len(run_ids)), "step": np.ones(len(run_ids))}
    with atomic_h5(path) as f:
        write_root_attrs(f, recipe or {"name": "raw"})
        create_arch(f, json.dumps(spec.to_dict()), params, None, meta)


def _one_line_error(capsys, argv, status, says):
    assert cli(argv) == status
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert "Traceback" not in captured.err
    assert lines[-1].startswith("weightspace: error: ") and says in lines[-1], captured.err
    # stderr holds that line (Hydra may log one INFO line first; a warning is not an error)
    assert sum(line.startswith("weightspace: error") for line in lines) == 1


@pytest.mark.parametrize("argv, status, says", CASES,
                         ids=[" ".join(a[:4]) + f" [{i}]" for i, (a, _, _) in enumerate(CASES)])
def test_each_bad_input_is_one_line(files, capsys, argv, status, says):
    argv = [a.format(**files) for a in argv]
    _one_line_error(capsys, argv, status, says.format(**files))


def test_verify_finds_what_the_reader_trusts(files, tmp_path, capsys):
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as f:
        f.attrs["schema_version"] = 1
    twice = tmp_path / "twice.h5"
    _raw_zoo(twice, run_ids=[4, 4])
    for path, says in ((empty, "holds no models"), (files["bad_recipe"], "recipe attribute"),
                       (twice, "stored twice"), (files["nan_rows"], "NaN")):
        assert cli(["zoo", "verify", str(path)]) == 1
        assert says in capsys.readouterr().out
    assert cli(["zoo", "verify", str(files["zoo"])]) == 0


def test_usage_errors_of_the_command_itself(capsys):
    for argv in ([], ["zoo"], ["demo", "--runs", "-1"], ["demo", "--epochs", "0"]):
        with pytest.raises(SystemExit) as exit_:
            cli(argv)
        assert exit_.value.code == 2
        assert "Traceback" not in capsys.readouterr().err


def test_the_traceback_flag_shows_the_stack(files, monkeypatch):
    with pytest.raises(FileNotFoundError):
        cli(["--traceback", "zoo", "verify", str(files["tmp"] / "missing.h5")])
    monkeypatch.setenv("WEIGHTSPACE_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError):
        cli(["zoo", "info", str(files["tmp"] / "missing.h5")])


def test_a_second_writer_is_refused_and_the_first_loses_nothing(tmp_path, capsys):
    out = tmp_path / "z.h5"
    with build_lock(out):  # another build holds the zoo
        _one_line_error(capsys, ["zoo", "build", f"out={out}", "n_runs=2", *TINY_MLP], 1,
                        "another build is writing this zoo")
    assert not out.exists()
    assert cli(["zoo", "build", f"out={out}", "n_runs=2", *TINY_MLP]) == 0
    assert len(Zoo(out)) == 2 and not out.with_name("z.h5.lock").exists()


def test_a_full_disk_stops_with_one_line_leaves_no_temporaries_and_resumes(tmp_path, capsys,
                                                                          monkeypatch):
    from weightspace.zoo import space

    out = tmp_path / "z.h5"
    real = space.free_bytes
    writes = []

    def filling(path):  # the disk fills after two shards
        writes.append(path)
        return real(path) if len(writes) <= 2 else 1 << 20

    monkeypatch.setattr(space, "free_bytes", filling)
    argv = ["zoo", "build", f"out={out}", "n_runs=6", "chunk_size=1", *TINY_MLP]
    _one_line_error(capsys, argv, 1, "not enough disk space")
    left = sorted(p.name for p in shard_dir(out).iterdir())
    assert len(left) == 2 and all(p.endswith(".h5") for p in left)  # finished shards only
    monkeypatch.setattr(space, "free_bytes", real)  # space freed
    assert cli(argv) == 0
    assert sorted(Zoo(out).metadata()["run_id"]) == list(range(6))
    assert not shard_dir(out).exists()
