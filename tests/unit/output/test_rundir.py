"""Run-directory rules (no MPI, no DOLFINx): refusal, overwrite of own files only, atomic JSON."""

import json

import pytest

from tumorpde.output.rundir import (
    MANIFEST,
    OutputDirError,
    clear_run_outputs,
    prepare_run_dir,
    versions,
    write_json_atomic,
)


def test_empty_or_new_directory_is_accepted(tmp_path):
    assert prepare_run_dir(tmp_path / "new", overwrite=False) == (tmp_path / "new").resolve()
    (tmp_path / "empty").mkdir()
    assert prepare_run_dir(tmp_path / "empty", overwrite=False).is_dir()


def test_non_empty_directory_needs_overwrite_and_a_manifest(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputDirError, match="not empty"):
        prepare_run_dir(run, overwrite=False)
    with pytest.raises(OutputDirError, match="refusing"):
        prepare_run_dir(run, overwrite=True)  # no manifest: not a tumorpde run
    write_json_atomic(run / MANIFEST, {"status": "complete"})  # not tumorpde's: refused
    with pytest.raises(OutputDirError, match="not written by tumorpde"):
        prepare_run_dir(run, overwrite=True)
    write_json_atomic(run / MANIFEST, {"tumorpde": "0.1.0", "status": "complete", "case": "c"})
    assert prepare_run_dir(run, overwrite=True) == run.resolve()


def test_a_file_is_not_a_run_directory(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(OutputDirError, match="not a directory"):
        prepare_run_dir(f, overwrite=True)


def test_clearing_removes_only_tumorpde_outputs(tmp_path):
    for name in ("qoi.csv", "fields.xdmf", "fields.h5", MANIFEST, "case.toml", "mine.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "fields.bp").mkdir()
    clear_run_outputs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


def test_json_is_replaced_atomically(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"a": 2, "p": tmp_path})  # non-JSON values become strings
    assert json.loads(path.read_text()) == {"a": 2, "p": str(tmp_path)}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temporary left behind


def test_versions_name_the_stack():
    v = versions()
    assert {"python", "tumorpde", "numpy", "pydantic"} <= set(v)
