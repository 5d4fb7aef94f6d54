"""Faults: nothing lost, nothing hangs. Locks, statuses, write errors, kills, signals, rerun.

In-process tests run serially and under ``mpiexec -n 2``; the ones that launch and kill a
``tumorpde run`` subprocess (at 1 and 2 ranks) are serial.
"""

import csv
import errno
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import box_toml

from tumorpde.cli import main

BIN = Path(sys.executable).parent


def write_case(directory: Path, comm, *, nx: int = 6, t_end: str = "2 day") -> Path:
    path = directory / "case.in.toml"
    if comm is None or comm.rank == 0:
        # the XDMF writer (VTKHDF: tests/physics/test_readable_output.py)
        path.write_text(
            box_toml("fault_box", nx=nx, t_end=t_end, white=False, output='format = "xdmf"\n')
        )
    if comm is not None:
        comm.barrier()
    return path


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def xdmf_times(path: Path, name: str = "tumor") -> list[float]:
    root = ET.parse(path).getroot()
    return [
        float(g.find("Time").get("Value"))
        for g in root.findall(f".//Grid[@Name='{name}'][@GridType='Collection']/Grid")
    ]


def h5_times(path: Path, name: str = "tumor") -> list[str]:
    """Times of ``name`` in fields.h5 (names of its datasets), after reading them."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "r") as f:
        keys = sorted(f[f"Function/{name}"].keys())
        for k in keys:
            assert np.all(np.isfinite(f[f"Function/{name}/{k}"][...]))
        return keys


def h5_read_xdmf_refs(xdmf: Path) -> int:
    """Read every HDF5 dataset that ``xdmf`` refers to with h5py; the number read."""
    h5py = pytest.importorskip("h5py")
    refs = [d.text.strip() for d in ET.parse(xdmf).getroot().iter("DataItem")]
    with h5py.File(xdmf.with_suffix(".h5"), "r") as f:
        for ref in refs:
            fname, dset = ref.split(":")
            assert fname == xdmf.with_suffix(".h5").name
            assert np.all(np.isfinite(f[dset][...]))
    return len(refs)


# ------------------------------------------------------------------ in-process, any rank count
def test_live_run_is_refused_even_with_overwrite(shared_tmp, comm):
    import fcntl

    case = write_case(shared_tmp, comm)
    out = shared_tmp / "run"
    assert main(["run", str(case), "-o", str(out)]) == 0
    before = (out / "qoi.csv").read_bytes()
    fd = None
    if comm.rank == 0:  # another live run holds the directory
        fd = os.open(out / ".lock", os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    comm.barrier()
    try:
        assert main(["run", str(case), "-o", str(out), "--overwrite"]) == 2
        assert (out / "qoi.csv").read_bytes() == before
        assert manifest(out)["status"] == "complete"
    finally:
        if fd is not None:
            os.close(fd)
        comm.barrier()
    assert main(["run", str(case), "-o", str(out), "--overwrite"]) == 0  # no longer live


def test_overwrite_refuses_a_foreign_manifest(shared_tmp, comm):
    case = write_case(shared_tmp, comm)
    out = shared_tmp / "foreign"
    files = {"manifest.json": '{"status": "complete"}', "case.toml": "mine", "qoi.csv": "1,2"}
    if comm.rank == 0:
        out.mkdir()
        for name, text in files.items():
            (out / name).write_text(text)
    comm.barrier()
    assert main(["run", str(case), "-o", str(out), "--overwrite"]) == 2
    assert {p.name: p.read_text() for p in out.iterdir()} == files


def test_complete_run_has_provenance_and_resolved_toml_reproduces_it(shared_tmp, comm):
    import tumorpde

    case = write_case(shared_tmp, comm)
    out = shared_tmp / "prov"
    chemo = "tumor.chemotaxis='0.5 mm^2/day/nM'"
    assert main(["run", str(case), "-o", str(out), "--set", chemo]) == 0
    m = manifest(out)
    assert m["status"] == "complete" and m["tumorpde"]
    assert m["command"] and m["cwd"] and m["host"] and m["python"]  # sys.argv: pytest here
    assert m["mpi_library"] and m["mesh_file"]["sha256"] is None
    assert m["git"] is None or isinstance(m["git"]["dirty"], bool)
    cfg = tumorpde.load_config(out / "resolved.toml")
    assert cfg.pathways["EGFR"].effects.chemotaxis == pytest.approx(0.5 / 24)  # the --set
    res = tumorpde.run(cfg, shared_tmp / "again", comm=comm, progress=False)
    ref = tumorpde.run(
        tumorpde.load_config(case, {"tumor.chemotaxis": "0.5 mm^2/day/nM"}),
        None,
        comm=comm,
        progress=False,
    )
    for key, v in ref.qoi.items():
        if key != "wall_s":
            np.testing.assert_allclose(res.qoi[key], v, rtol=1e-10, atol=1e-14, err_msg=key)
    assert main(["rerun", str(out), "-o", str(shared_tmp / "rr")]) == 0
    assert main(["rerun", str(out), "-o", str(shared_tmp / "rr")]) == 2  # exists
    assert main(["rerun", str(shared_tmp / "nope")]) == 2


def test_failed_step_marks_the_manifest_failed(shared_tmp, comm, monkeypatch):
    from tumorpde.simulation import simulation
    from tumorpde.simulation.stepper import StepFailedError

    real = simulation.steps

    def failing(*args, **kwargs):
        for i, info in enumerate(real(*args, **kwargs)):
            if i == 2:
                raise StepFailedError("Newton failed 9 times at t = 36 h (test)")
            yield info

    monkeypatch.setattr(simulation, "steps", failing)
    case = write_case(shared_tmp, comm)
    out = shared_tmp / "failed"
    assert main(["run", str(case), "-o", str(out)]) == 3
    m = manifest(out)
    assert m["status"] == "failed" and "Newton failed" in m["reason"]
    assert m["last_t_h"] == pytest.approx(24.0) and m["last_step"] == 2
    assert xdmf_times(out / "fields.xdmf") == [0.0, 12.0, 24.0]  # kept up to the last output
    if comm.rank == 0:
        assert len(h5_times(out / "fields.h5")) == 3


def test_write_error_stops_the_run_at_once_naming_the_file(shared_tmp, comm, monkeypatch):
    from dolfinx import io

    import tumorpde
    from tumorpde.output.rundir import OutputWriteError

    real = io.XDMFFile.write_function

    def full(self, u, t=0.0, *args, **kwargs):
        if t >= 24.0:  # every rank alike, as a collective ENOSPC is reported
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, u, t, *args, **kwargs)

    monkeypatch.setattr(io.XDMFFile, "write_function", full)
    case = write_case(shared_tmp, comm)
    out = shared_tmp / "enospc"
    with pytest.raises(OutputWriteError) as exc:
        tumorpde.run(case, out, comm=comm, progress=False)
    assert exc.value.errno == errno.ENOSPC and str(exc.value).startswith(str(out / "fields.h5"))
    assert "No space left" in str(exc.value)
    m = manifest(out)
    assert m["status"] == "failed" and "No space left" in m["reason"]
    assert m["last_t_h"] == pytest.approx(24.0)  # it stopped at the failed output time
    assert xdmf_times(out / "fields.xdmf") == [0.0, 12.0]
    if comm.rank == 0:
        assert len(h5_times(out / "fields.h5")) >= 2


def test_preflight_space_check(shared_tmp, comm, monkeypatch):
    import tumorpde
    from tumorpde.output import fields
    from tumorpde.output.rundir import OutputWriteError

    calls = {"n": 0}
    real = os.statvfs

    class Tiny:
        def __init__(self, st):
            self.f_bavail, self.f_frsize = 1, st.f_frsize

    def statvfs(path):
        calls["n"] += 1
        st = real(path)
        return Tiny(st) if calls["n"] > 3 else st

    monkeypatch.setattr(fields.os, "statvfs", statvfs)
    out = shared_tmp / "pre"
    with pytest.raises(OutputWriteError, match="No space left on device"):
        tumorpde.run(write_case(shared_tmp, comm), out, comm=comm, progress=False)
    assert manifest(out)["status"] == "failed"
    assert xdmf_times(out / "fields.xdmf")  # what was written stays readable


# ------------------------------------------------------------------ -o refusals (serial)
@pytest.mark.serial
def test_compare_refuses_existing_outputs(tmp_path, capsys):
    from tumorpde.output.rundir import OutputDirError
    from tumorpde.studies.compare import check_outputs

    out = tmp_path / "cmp"
    out.mkdir()
    (out / "comparison.csv").write_text("mine")
    with pytest.raises(OutputDirError, match=r"comparison\.csv exists"):
        check_outputs(out, ["control"], overwrite=False)
    check_outputs(out, ["control"], overwrite=True)
    (out / "control").mkdir()
    (out / "control" / "notes.txt").write_text("x")
    with pytest.raises(OutputDirError, match="refusing"):
        check_outputs(out, ["control"], overwrite=True)  # not a tumorpde run
    (out / "comparison.csv").unlink()
    with pytest.raises(OutputDirError, match=r"control exists"):
        check_outputs(out, ["control"], overwrite=False)
    case = write_case(tmp_path, None)
    assert main(["compare", str(case), "-o", str(out)]) == 2
    assert "control exists" in capsys.readouterr().err
    assert (out / "control" / "notes.txt").read_text() == "x"


@pytest.mark.serial
@pytest.mark.parametrize("command", ["import", "from-labels"])
def test_mesh_commands_refuse_to_overwrite(tmp_path, capsys, command, monkeypatch):
    pytest.importorskip("gmsh")
    monkeypatch.chdir(tmp_path)
    src = Path(__file__).resolve().parents[3] / "meshes" / "liver.msh"
    out = tmp_path / "out.msh"
    for existing in (out, out.with_suffix(".json")):
        existing.write_text("precious")
        if command == "import":
            args = ["mesh", "import", str(src), "-o", str(out)]
        else:
            np.save(tmp_path / "seg.npy", np.ones((4, 4, 4), dtype=np.uint8))
            args = ["mesh", "from-labels", "seg.npy", "--labels", "1=a", "--spacing", "1"]
            args += ["-o", str(out)]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert f"{existing} exists" in err and "--overwrite" in err
        assert existing.read_text() == "precious"
        existing.unlink()


# ------------------------------------------------------------------ subprocess faults (serial)
def _launch(case: Path, out: Path, ranks: int) -> subprocess.Popen:
    cmd = [str(BIN / "tumorpde"), "run", str(case), "-o", str(out)]
    if ranks > 1:
        cmd = [str(BIN / "mpiexec"), "-n", str(ranks), *cmd]
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for_outputs(out: Path, proc: subprocess.Popen, n: int, timeout: float = 120.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.stdout.read().decode()[-2000:]}")
        try:
            if len(xdmf_times(out / "fields.xdmf")) >= n:
                return
        except (OSError, ET.ParseError):
            pass
        time.sleep(0.05)
    pytest.fail("no output in time")


def _long_case(tmp_path: Path) -> Path:
    return write_case(tmp_path, None, nx=12, t_end="400 day")


def _check_readable(out: Path) -> list[float]:
    """fields.xdmf parses, h5py reads every dataset it names, DOLFINx reads the mesh and tags.

    (fields.h5 may also hold the half-written datasets of an output time that was not
    published: fields.xdmf never names them.)
    """
    times = xdmf_times(out / "fields.xdmf")
    assert len(times) >= 2
    assert h5_read_xdmf_refs(out / "fields.xdmf") > 2 * len(times)  # every field, every time
    code = (
        "import tumorpde.fem.backend\n"
        "from mpi4py import MPI\n"
        "from dolfinx import io\n"
        f"with io.XDMFFile(MPI.COMM_SELF, {str(out / 'fields.xdmf')!r}, 'r') as x:\n"
        "    m = x.read_mesh(name='mesh')\n"
        "    ct = x.read_meshtags(m, name='regions')\n"
        "print(m.topology.index_map(3).size_global, ct.values.size)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return times


@pytest.mark.serial
@pytest.mark.parametrize("ranks", [1, 2])
def test_kill_9_keeps_the_fields_up_to_the_last_output(tmp_path, ranks):
    case = _long_case(tmp_path)
    out = tmp_path / "killed"
    proc = _launch(case, out, ranks)
    _wait_for_outputs(out, proc, 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    times = _check_readable(out)
    assert times == [12.0 * i for i in range(len(times))]
    assert manifest(out)["status"] == "running"  # nobody could record it; the lock is free
    from tumorpde.output.rundir import check_not_live

    check_not_live(out)


@pytest.mark.serial
def test_killed_rank_ends_the_job_and_the_run_resumes(tmp_path):
    """One rank killed: the job ends (no hang), the checkpoints load, --resume completes it.

    The field file is not guaranteed here: a rank killed inside a collective HDF5 write can
    leave ``fields.h5``'s metadata inconsistent (seen under load: an earlier time's dataset no
    longer opens). The state is safe in the checkpoints and the resumed run writes a new field
    segment; one HDF5 file per output time (planned with the output-format work) removes this.
    """
    from tumorpde.simulation.checkpoint import list_checkpoints, read

    case = _long_case(tmp_path)
    out = tmp_path / "rank"
    proc = _launch(case, out, 2)
    _wait_for_outputs(out, proc, 3)
    ranks = [p for p in _descendants(proc.pid) if b"tumorpde" in _cmdline(p)]
    assert ranks, "no rank processes found"
    os.kill(max(ranks), signal.SIGKILL)  # one rank only: mpiexec ends the others
    assert proc.wait(timeout=60) != 0
    assert manifest(out)["status"] != "complete"
    ckpts = list_checkpoints(out / "checkpoints")
    assert ckpts and read(ckpts[-1])[1]["t"] > 0
    res = subprocess.run(
        [
            str(BIN / "tumorpde"),
            "run",
            str(case),
            "-o",
            str(out),
            "--resume",
            "--set",
            "time.t_end='20 day'",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert manifest(out)["status"] == "complete"
    h5_read_xdmf_refs(out / "fields.r1.xdmf")  # the continuation is whole


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (Linux /proc), e.g. the MPI ranks under mpiexec."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


@pytest.mark.serial
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("ranks", [1, 2])
def test_signal_marks_interrupted_and_keeps_the_fields(tmp_path, sig, ranks):
    case = _long_case(tmp_path)
    out = tmp_path / "sig"
    proc = _launch(case, out, ranks)
    _wait_for_outputs(out, proc, 2)
    os.killpg(proc.pid, sig)
    rc = proc.wait(timeout=120)
    assert rc != 0
    m = manifest(out)
    assert m["status"] == "interrupted" and m["reason"] == sig.name
    times = _check_readable(out)
    assert m["last_t_h"] >= times[-1]


@pytest.mark.serial
def test_sigterm_then_resume_on_other_ranks_loses_nothing(tmp_path):
    """SIGTERM on 2 ranks, --resume on 1: complete, every output time once, QoIs continuous."""
    case = write_case(tmp_path, None, nx=8, t_end="60 day")
    out = tmp_path / "res"
    proc = _launch(case, out, 2)
    _wait_for_outputs(out, proc, 3)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    m = manifest(out)
    assert m["status"] == "interrupted"
    stopped = m["last_t_h"]
    res = subprocess.run(
        [str(BIN / "tumorpde"), "run", str(case), "-o", str(out), "--resume"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    m = manifest(out)
    assert m["status"] == "complete" and m["resumed"][-1]["t_h"] == stopped
    assert m["resumed"][-1]["ranks"] == 1
    # every output time is in the first segment or the continuation, which starts at the
    # resume time; no time is missing
    first = xdmf_times(out / "fields.xdmf")
    second = xdmf_times(out / "fields.r1.xdmf")
    assert second[0] == stopped and max(first) <= stopped
    h5_read_xdmf_refs(out / "fields.r1.xdmf")
    outputs = [24.0 * d for d in range(0, 61, 1)]  # output_every = 1 day
    have = set(first) | set(second)
    assert all(t in have for t in outputs)
    # qoi.csv: one row per step, times strictly increasing up to t_end
    rows = list(csv.DictReader((out / "qoi.csv").open()))
    t = [float(r["t_h"]) for r in rows]
    assert all(b > a for a, b in itertools.pairwise(t)) and t[-1] == 60 * 24.0
    assert [int(float(r["step"])) for r in rows] == list(range(len(rows)))
    # resuming a complete run does nothing
    again = subprocess.run(
        [str(BIN / "tumorpde"), "run", str(case), "-o", str(out), "--resume"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0
    assert not (out / "fields.r2.xdmf").exists()


@pytest.mark.serial
def test_full_disk_stops_the_run_with_a_clear_message(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        case = write_case(tmp_path, None, nx=24, t_end="100 day")
        out = mnt / "run"
        proc = _launch(case, out, 1)
        text = proc.communicate(timeout=300)[0].decode()
        assert proc.returncode != 0
        assert "No space left on device" in text and "fields.h5" in text
        m = manifest(out)
        assert m["status"] == "failed" and "No space left" in m["reason"]
        _check_readable(out)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.serial
def test_ctrl_c_on_a_msh_case_reaches_python(tmp_path):
    """The SIGINT handler survives gmsh's initialize(): Ctrl-C stops the run cleanly."""
    pytest.importorskip("gmsh")
    case = Path(__file__).resolve().parents[3] / "benchmarks" / "cases" / "default.toml"
    out = tmp_path / "msh"
    cmd = [str(BIN / "tumorpde"), "run", str(case), "-o", str(out)]
    cmd += ["--set", "time.output_every='2 h'", "--set", "output.picture=false"]
    # the readability checks below read the XDMF layout (the case's default is VTKHDF)
    cmd += ["--set", "output.format='xdmf'"]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    _wait_for_outputs(out, proc, 2, timeout=300)
    proc.send_signal(signal.SIGINT)
    text = proc.communicate(timeout=120)[0].decode()
    # gmsh read the mesh, yet the SIGINT reached tumorpde's handler: a clean stop at a step
    # boundary (exit 128 + 2), no traceback
    assert proc.returncode == 128 + signal.SIGINT, text[-2000:]
    assert "Traceback" not in text
    m = manifest(out)
    assert m["status"] == "interrupted" and "SIGINT" in m["reason"], text[-2000:]
    assert m["mesh_file"]["sha256"] and len(m["mesh_file"]["sha256"]) == 64
    _check_readable(out)


def test_restart_from_branches_an_arm_at_an_output_time(shared_tmp, comm):
    """A therapy arm branched from the untreated run at day 1: same tumor, drug from zero."""
    from helpers import REPO

    base = REPO / "benchmarks" / "cases" / "her2_brain_therapy.toml"
    sets = ["--set", "time.t_end='2 day'", "--set", "time.output_every='1 day'"]
    sets += ["--set", "output.picture=false", "--set", "output.fields=['tumor']"]
    sets += ["--allow-coarse-seed"]  # the organ mesh carries the seed at 17 % of its peak
    grown = shared_tmp / "grown"
    arm = shared_tmp / "arm"
    common = ["--set", "compare.arms={}"]
    # the untreated run: the therapy case with its treatments removed through --set
    untreated = ["--set", "therapy.treatments=[]"]
    assert main(["run", str(base), "-o", str(grown), *sets, *common, *untreated]) == 0
    code = main(
        ["run", str(base), "-o", str(arm), *sets, "--restart-from", str(grown), "--at", "1 day"]
    )
    assert code == 0
    m = manifest(arm)
    assert m["status"] == "complete" and m["branched_from"]["t_h"] == 24.0
    rows = list(csv.DictReader((arm / "qoi.csv").open()))
    ref = list(csv.DictReader((grown / "qoi.csv").open()))
    assert float(rows[0]["t_h"]) == 24.0 and float(rows[-1]["t_h"]) == 48.0
    at_branch = next(r for r in ref if float(r["t_h"]) == 24.0)
    assert float(rows[0]["tumor_burden_mm3"]) == pytest.approx(
        float(at_branch["tumor_burden_mm3"]), rel=1e-12
    )
    assert float(rows[0]["trastuzumab_mean_nM"]) == 0.0  # the drug starts from zero
    # a time without a checkpoint names the times that have one
    bad = main(
        [
            "run",
            str(base),
            "-o",
            str(shared_tmp / "bad"),
            *sets,
            "--restart-from",
            str(grown),
            "--at",
            "30 h",
        ]
    )
    assert bad == 2


def test_resume_guards(shared_tmp, comm):
    """--resume continues only a run of the same case and physics, with its QoI table intact."""
    case = write_case(shared_tmp, comm, t_end="1 day")
    out = shared_tmp / "guard"
    # nothing there yet: --resume starts a fresh run (job scripts may always pass it)
    assert main(["run", str(case), "-o", str(out), "--resume"]) == 0
    assert manifest(out)["status"] == "complete" and manifest(out)["final"]["t_h"] == 24.0
    # complete to this t_end: nothing to do; a later t_end extends it from the last checkpoint
    assert main(["run", str(case), "-o", str(out), "--resume"]) == 0
    assert not (out / "fields.r1.xdmf").exists()
    assert main(["run", str(case), "-o", str(out), "--resume", "--set", "time.t_end='2 day'"]) == 0
    m = manifest(out)
    assert m["final"]["t_h"] == 48.0 and m["resumed"][-1]["t_h"] == 24.0
    rows = list(csv.DictReader((out / "qoi.csv").open()))
    assert [float(r["t_h"]) for r in rows] == [12.0 * k for k in range(5)]
    # another case, or other physics: refused, nothing touched
    before = (out / "qoi.csv").read_text()
    other = ["--set", "name='another'", "--set", "time.t_end='3 day'"]
    assert main(["run", str(case), "-o", str(out), "--resume", *other]) == 2
    physics = ["--set", "tumor.proliferation_rate='0.9 1/day'", "--set", "time.t_end='3 day'"]
    assert main(["run", str(case), "-o", str(out), "--resume", *physics]) == 2
    assert (out / "qoi.csv").read_text() == before
    # a QoI table that lost its rows cannot be continued
    comm.barrier()
    if comm.rank == 0:
        (out / "qoi.csv").unlink()
    comm.barrier()
    assert main(["run", str(case), "-o", str(out), "--resume", "--set", "time.t_end='3 day'"]) == 2
    # a branch time that is not a time
    bad = ["--restart-from", str(out), "--at", "banana"]
    assert main(["run", str(case), "-o", str(shared_tmp / "b"), *bad]) == 2


def test_schema_refuses_to_overwrite(tmp_path, capsys):
    notes = tmp_path / "notes.json"
    notes.write_text("mine")
    assert main(["schema", "-o", str(notes)]) == 2
    assert notes.read_text() == "mine"
    assert main(["schema", "-o", str(notes), "--overwrite"]) == 0
    assert '"properties"' in notes.read_text()
