"""Zoo storage: exact round trips, one canonical order, merging, and damage reported by index."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from tests.zoo.conftest import write_models
from weightspace.errors import ZooCorruptionError
from weightspace.zoo import Zoo, ZooWriter, merge
from weightspace.zoo.reader import shard_dir
from weightspace.zoo.verify import info, verify


def test_round_trip_of_weights_buffers_and_metadata(zoo_path):
    spec, params, buffers, meta = write_models(zoo_path, np.arange(3))
    zoo = Zoo(zoo_path)
    assert len(zoo) == 6 and zoo.archs == [spec.id]
    assert np.array_equal(zoo.params(range(6)), params.numpy())
    assert np.array_equal(zoo.buffers(range(6)), buffers.double().numpy())
    got = zoo.metadata()
    for key in ("run_id", "step", "test_acc"):
        assert np.array_equal(got[key], meta[key]), key
    assert list(got["optimizer"]) == list(meta["optimizer"])
    assert zoo.recipe == {"name": "test"}


def test_canonical_order_does_not_depend_on_sharding(zoo_path, tmp_path):
    write_models(zoo_path, np.array([4, 5]))
    write_models(zoo_path, np.array([0, 1, 2]))
    sharded = Zoo(zoo_path)
    assert list(sharded.metadata()["run_id"]) == [0, 0, 1, 1, 2, 2, 4, 4, 5, 5]
    before = sharded.params(range(10))
    ZooWriter(zoo_path).finalize()
    assert not shard_dir(zoo_path).exists()
    merged = Zoo(zoo_path)
    assert len(merged.parts) == 1
    assert np.array_equal(merged.params(range(10)), before)
    assert list(merged.metadata()["optimizer"]) == list(sharded.metadata()["optimizer"])


def test_models_in_two_parts_are_read_once(zoo_path):
    write_models(zoo_path, np.array([0, 1]))
    ZooWriter(zoo_path).finalize()
    write_models(zoo_path, np.array([1, 2]))  # run 1 again, as after a crash mid-finalize
    assert list(Zoo(zoo_path).metadata()["run_id"]) == [0, 0, 1, 1, 2, 2]


def test_merge_joins_zoos_of_several_architectures(tmp_path):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    write_models(a, np.array([0, 1]))
    write_models(b, np.array([2]), arch="mlp")
    report = merge([a, b], tmp_path / "all.h5")
    assert (report.models, report.skipped, len(report.sources)) == (6, 0, 2)
    zoo = Zoo(report.path)
    assert len(zoo) == 6 and len(zoo.archs) == 2
    with pytest.raises(ValueError, match="architectures"):
        zoo.params(range(6))


def test_flipped_byte_is_reported_with_its_model_index(zoo_path):
    spec, params, *_ = write_models(zoo_path, np.arange(4))
    ZooWriter(zoo_path).finalize()
    with h5py.File(zoo_path, "r") as f:
        ds = f["archs"][spec.id]["params"]
        rows = ds.chunks[0]
        chunk = ds.id.get_chunk_info(1)  # the second chunk of rows
        offset = chunk.byte_offset + chunk.size // 2
    data = bytearray(zoo_path.read_bytes())
    data[offset] ^= 0xFF
    zoo_path.write_bytes(bytes(data))
    bad = list(range(rows, 2 * rows))
    with pytest.raises(ZooCorruptionError) as err:
        Zoo(zoo_path).params([bad[0]])
    assert str(zoo_path) in str(err.value) and f"model {bad[0]}" in str(err.value)
    assert np.array_equal(Zoo(zoo_path).params([0]), params[:1].numpy())  # the rest is intact
    report = verify(zoo_path)
    assert not report.ok
    assert sorted({p.index for p in report.problems}) == bad


def test_truncated_file_names_the_file(zoo_path):
    write_models(zoo_path, np.arange(2))
    ZooWriter(zoo_path).finalize()
    zoo_path.write_bytes(zoo_path.read_bytes()[:2000])
    with pytest.raises(ZooCorruptionError, match="zoo.h5"):
        Zoo(zoo_path)
    report = verify(zoo_path)
    assert not report.ok and "zoo.h5" in report.problems[0].file


def test_nan_weights_are_refused_before_storage(zoo_path):
    import weightspace as ws
    from weightspace import nets

    spec = ws.GraphSpec.from_module(nets.MLP(4, [8], 2))
    params = torch.zeros(2, spec.num_params)
    params[1, 3] = float("nan")
    meta = {"run_id": [0, 7], "seed": [0, 0], "epoch": [1, 1], "step": [1, 1]}
    with pytest.raises(ValueError, match=r"runs \[7\]"):
        ZooWriter(zoo_path).write(spec, params, meta)
    assert not zoo_path.exists() and not shard_dir(zoo_path).exists()


def test_verify_catches_nan_written_by_someone_else(zoo_path):
    spec, *_ = write_models(zoo_path, np.arange(2))
    ZooWriter(zoo_path).finalize()
    with h5py.File(zoo_path, "r+") as f:
        f["archs"][spec.id]["params"][3, 0] = np.nan
    report = verify(zoo_path)
    assert [p.index for p in report.problems] == [3]
    assert "NaN" in report.problems[0].message


def test_buffers_may_be_infinite_but_never_nan(zoo_path, tmp_path):
    # an attention mask of -inf is a buffer like any other; NaN is damage
    spec, *_ = write_models(zoo_path, np.arange(2))
    ZooWriter(zoo_path).finalize()
    with h5py.File(zoo_path, "r+") as f:
        f["archs"][spec.id]["buffers"][1, 0] = -np.inf
    assert verify(zoo_path).ok
    assert merge([zoo_path], tmp_path / "copy.h5").models == 4
    with h5py.File(zoo_path, "r+") as f:
        f["archs"][spec.id]["buffers"][2, 0] = np.nan
    assert [p.index for p in verify(zoo_path).problems] == [2]
    with pytest.raises(ZooCorruptionError, match="buffers hold NaN"):
        merge([zoo_path], tmp_path / "again.h5")


def test_verify_names_the_file_whose_matrix_disagrees_with_the_spec(zoo_path):
    spec, params, *_ = write_models(zoo_path, np.arange(2))
    ZooWriter(zoo_path).finalize()
    with h5py.File(zoo_path, "r+") as f:
        g = f["archs"][spec.id]
        del g["params"]
        g.create_dataset("params", data=params[:, :-1].numpy(), fletcher32=True)
    report = verify(zoo_path)
    assert [(p.file, p.index) for p in report.problems] == [(str(zoo_path), None)]
    assert f"params have {spec.num_params - 1} columns, the spec {spec.num_params}" in \
        report.problems[0].message


def test_loaded_model_holds_the_stored_weights(zoo_path):
    from weightspace import nets

    spec, params, buffers, _ = write_models(zoo_path, np.arange(2))
    like = nets.ResNet((1, 1), (8, 16), 3, 10, 16)
    model = Zoo(zoo_path).load(3, like)
    assert torch.equal(spec.flatten(model), params[3])
    # (the fake rows hold fractions where BatchNorm keeps an integer counter)
    expected = spec.flatten_buffers(spec.unflatten(params[3], buffers[3].double()))
    assert torch.equal(spec.flatten_buffers(model), expected)


def test_info_summarises(zoo_path):
    write_models(zoo_path, np.arange(3))
    summary = info(zoo_path)
    assert summary["models"] == 6 and summary["runs"] == 3
    assert summary["columns"]["test_acc"]["max"] == 1.0
    assert summary["columns"]["optimizer"]["values"] == ["adam", "sgd"]


def test_a_newer_schema_is_refused(zoo_path):
    write_models(zoo_path, np.arange(1))
    ZooWriter(zoo_path).finalize()
    with h5py.File(zoo_path, "r+") as f:
        f.attrs["schema_version"] = 99
    with pytest.raises(ZooCorruptionError, match="schema version 99"):
        Zoo(zoo_path)


def test_unordered_and_repeated_indices_read_the_right_rows(zoo_path):
    _, params, *_ = write_models(zoo_path, np.arange(2))
    write_models(zoo_path, np.arange(2, 5))
    want = [7, 0, 7, 3, 9, 1, 2]
    assert np.array_equal(Zoo(zoo_path).params(want), params_of(zoo_path)[want])


def test_reads_after_close_reopen_the_file(zoo_path):
    write_models(zoo_path, np.arange(3))
    zoo = Zoo(zoo_path)
    first = zoo.params([4, 1])
    zoo.close()  # drops the open file and the matrices kept from it
    assert np.array_equal(zoo.params([4, 1]), first)
    assert np.array_equal(first, params_of(zoo_path)[[4, 1]])


def params_of(path):
    zoo = Zoo(path)
    return np.stack([zoo.params([i])[0] for i in range(len(zoo))])
