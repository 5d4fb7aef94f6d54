"""RunDir: the lock of a live run, verified overwrite, statuses, umask, TOML (no DOLFINx)."""

import fcntl
import json
import os
import stat
import tomllib

import pytest

from tumorpde.output.rundir import (
    LOCK,
    MANIFEST,
    OutputDirError,
    RunDir,
    RunDirBusyError,
    check_new_file,
    is_tumorpde_manifest,
    provenance,
    to_toml,
    write_json_atomic,
)


def _hold_lock(path):
    """Hold the lock of ``path`` as a live run would (another open file description)."""
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    os.write(fd, b"pid 4242 on testhost\n")
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_open_marks_running_and_close_releases_the_lock(tmp_path):
    out = tmp_path / "run"
    rd = RunDir.open(out, case="c", info={"host": "h"})
    m = json.loads((out / MANIFEST).read_text())
    assert m["status"] == "running" and m["case"] == "c" and m["tumorpde"] and m["host"] == "h"
    assert is_tumorpde_manifest(out / MANIFEST)
    with pytest.raises(RunDirBusyError, match="live run"):
        RunDir.open(out, overwrite=True, case="c")  # the first one is still live
    rd.mark("running", t=1.0, step=2)
    rd.close()
    rd.close()  # idempotent
    again = RunDir.open(out, overwrite=True, case="c")  # no longer live: replaced
    again.close()


def test_a_live_run_is_refused_even_with_overwrite_and_nothing_is_touched(tmp_path):
    out = tmp_path / "live"
    fd = _hold_lock(out)
    try:
        write_json_atomic(out / MANIFEST, {"tumorpde": "0.1.0", "status": "running", "case": "c"})
        (out / "qoi.csv").write_text("t_h\n0\n")
        with pytest.raises(RunDirBusyError, match=r"in use by a live run \(pid 4242"):
            RunDir.open(out, overwrite=True, case="other")
        assert (out / "qoi.csv").read_text() == "t_h\n0\n"
        assert json.loads((out / MANIFEST).read_text())["case"] == "c"
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "foreign",
    [
        "not json",
        json.dumps({"status": "complete"}),
        json.dumps({"status": "complete", "case": "x"}),  # no tumorpde version
        json.dumps(["status", "case"]),
    ],
)
def test_overwrite_refuses_a_foreign_manifest_and_deletes_nothing(tmp_path, foreign):
    out = tmp_path / "mine"
    out.mkdir()
    files = {"manifest.json": foreign, "case.toml": "x", "qoi.csv": "y", "notes.txt": "z"}
    for name, text in files.items():
        (out / name).write_text(text)
    with pytest.raises(OutputDirError, match="refusing"):
        RunDir.open(out, overwrite=True, case="c")
    assert {p.name: p.read_text() for p in out.iterdir()} == files  # not even a .lock


def test_old_manifests_are_recognised(tmp_path):
    old = tmp_path / "m.json"
    write_json_atomic(old, {"status": "complete", "case": "c", "versions": {"tumorpde": "0.0.9"}})
    assert is_tumorpde_manifest(old)


def test_statuses_are_written_atomically_with_reason_time_and_step(tmp_path):
    with pytest.raises(ZeroDivisionError), RunDir.open(tmp_path / "r", case="c") as rd:
        rd.mark("running", t=3.0, step=4)
        raise ZeroDivisionError("boom")
    m = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert m["status"] == "failed" and "boom" in m["reason"] and "ended" in m
    rd2 = RunDir.open(tmp_path / "r", overwrite=True, case="c")
    rd2.mark("interrupted", reason="SIGTERM", t=12.5, step=7)
    rd2.close()
    m = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert (m["status"], m["reason"], m["last_t_h"], m["last_step"]) == (
        "interrupted",
        "SIGTERM",
        12.5,
        7,
    )
    with pytest.raises(ValueError, match="unknown status"):
        rd2.mark("bogus")
    assert [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".m")] == []


def test_resume_keeps_the_files(tmp_path):
    rd = RunDir.open(tmp_path / "r", case="c")
    (tmp_path / "r" / "qoi.csv").write_text("rows")
    rd.mark("interrupted", reason="SIGTERM", t=1.0, step=1)
    rd.close()
    rd = RunDir.open(tmp_path / "r", resume=True, case="c")
    rd.close()
    m = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert m["status"] == "running" and "reason" not in m and len(m["resumed"]) == 1
    assert (tmp_path / "r" / "qoi.csv").read_text() == "rows"


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        rd = RunDir.open(tmp_path / "r", case="c")
        rd.write_text("case.toml", "x = 1\n")
        rd.close()
    finally:
        os.umask(old)
    for name in (MANIFEST, "case.toml", LOCK):
        mode = stat.S_IMODE((tmp_path / "r" / name).stat().st_mode)
        assert mode == 0o666 & ~mask, (name, oct(mode))


def test_check_new_file_names_the_file(tmp_path):
    f = tmp_path / "a.csv"
    assert check_new_file(f, overwrite=False) == f
    f.write_text("x")
    with pytest.raises(OutputDirError, match=r"a\.csv exists; pass --overwrite"):
        check_new_file(f, overwrite=False)
    assert check_new_file(f, overwrite=True) == f


def test_toml_writer_round_trips():
    data = {
        "name": 'a "quoted"\nname',
        "x": 1.0000000000000002,
        "n": 3,
        "flag": True,
        "inf": float("inf"),
        "skip": None,
        "list": [1.0, 2.5],
        "arms": [{"drug": "d", "start": 0.5}],
        "mesh": {"kind": "file", "path": "/abs/m.msh", "sub": {"deep": 1}},
        "empty": {},
        "odd key": 1,
    }
    back = tomllib.loads(to_toml(data))
    expect = {k: v for k, v in data.items() if v is not None}
    assert back == expect


def test_provenance_records_the_command_line(tmp_path):
    p = provenance(None, argv=["tumorpde", "run", "x.toml"])
    assert p["command"] == ["tumorpde", "run", "x.toml"]
    assert p["cwd"] == os.getcwd() and p["host"] and p["python"]
    assert p["mesh_file"] == {"kind": "box", "sha256": None}
    assert p["git"] is None or {"revision", "dirty"} <= set(p["git"])
