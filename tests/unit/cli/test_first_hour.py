"""What a new user meets in the first hour: progress, output options, units, the public API.

Progress with % and ETA, ``--quiet``/``--verbose``/``--log-file``, no gmsh chatter on stdout,
bench targets judged at their own size, units in ``validate``, and ``dir(tumorpde)`` listing
the public API.

The commands run in-process on every rank (any process count); output is checked on rank 0,
where it is printed, and the quiet ones on every rank.
"""

import io
import runpy
from pathlib import Path

import pytest
from helpers import REPO

import tumorpde
from tumorpde import progress
from tumorpde.cli import main
from tumorpde.units import format_duration, format_quantity

CASE = """
name = "first_hour_box"
[mesh]
kind = "box"
size = ["6 mm", "4 mm", "4 mm"]
cells = [6, 4, 4]
default_region = "grey"
regions = [{ name = "white", min = [3, 0, 0], max = [6, 4, 4] }]
[time]
t_end = "2 day"
dt = "12 h"
output_every = "1 day"
[tumor]
proliferation_rate = "0.3 1/day"
motility = "0.13 mm^2/day"
initial = { kind = "gaussian", center = ["3 mm", "2 mm", "2 mm"], radius = "1.5 mm" }
[ligand]
diffusivity = "6e-7 cm^2/s"
decay_rate = "1e-4 1/s"
tumor_secretion = "1 nM/h"
[receptor]
receptors_per_cell = 5e4
k_on = "1e6 1/M/s"
k_off = "2e-3 1/s"
k_t = "0.03 1/min"
k_e = "0.15 1/min"
[regions.white]
tumor_motility = "0.65 mm^2/day"
[output]
picture = false
"""


def _case(directory: Path, comm, text: str = CASE) -> Path:
    path = directory / "case.toml"
    if comm.rank == 0:
        path.write_text(text)
    comm.barrier()
    return path


# ------------------------------------------------------------------------- progress and ETA
class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_meter_percentage_and_eta_from_the_rate_so_far():
    clock, lines = _Clock(), []
    m = progress.Meter("run x", 200.0, start=40.0, emit=lines.append, clock=clock)
    assert m.line(40.0).startswith("run x:  20.0 %") and m.line(40.0).endswith("ETA ?")
    clock.now += 30.0  # 30 s for 40 of the 160 simulated hours left at the start
    m.update(80.0, "step 3")
    assert lines == ["run x:  40.0 %, elapsed 30 s, ETA 1 min 30 s | step 3"]
    clock.now += 90.0
    assert m.status(200.0) == "100.0 %, elapsed 2 min 00 s, ETA 0 s"


def test_stages_report_weighted_percentage_and_skip_unknown_stages():
    clock, lines = _Clock(), []
    weights = {"read": 10.0, "mesh": 60.0, "write": 30.0}
    with progress.Stages("build", weights, emit=lines.append, clock=clock) as st:
        progress.stage("read")
        clock.now += 5.0
        progress.stage("not a stage")  # logged at DEBUG only
        progress.stage("mesh")
        clock.now += 30.0
        progress.stage("write")
        st.finish("42 cells")
    progress.stage("read")  # outside: nobody listens
    assert lines[0].startswith("build:   0.0 %")
    assert lines[1] == "build:  10.0 %, elapsed 5 s, ETA 45 s | mesh"
    assert lines[2] == "build:  70.0 %, elapsed 35 s, ETA 15 s | write"
    assert lines[3] == "build: 100.0 % done in 35 s (42 cells)"
    assert len(lines) == 4


def test_durations_and_quantities_are_formatted_with_units():
    assert [format_duration(s) for s in (0.4, 59.6, 125, 7300, float("inf"))] == [
        "0 s",
        "1 min 00 s",
        "2 min 05 s",
        "2 h 01 min",
        "?",
    ]
    assert format_quantity(0.13 / 24, "diffusivity") == "0.00541667 mm^2/h (0.13 mm^2/day)"
    assert format_quantity(12.0, "inverse_length") == "12 1/mm"
    assert format_quantity(48.0, "time") == "48 h (2 day)"


def test_run_prints_percentage_and_eta_every_step(shared_tmp, comm, capsys):
    case = _case(shared_tmp, comm)
    assert main(["run", str(case), "-o", str(shared_tmp / "run")]) == 0
    out = capsys.readouterr().out
    if comm.rank == 0:
        steps = [line for line in out.splitlines() if line.lstrip().startswith("step")]
        assert len(steps) == 4  # 2 days of 12 h steps
        assert all("%" in s and "ETA" in s for s in steps)
        assert "25.0 %" in steps[0] and "100.0 %" in steps[-1] and "ETA 0 s" in steps[-1]
    else:
        assert out == ""


def test_arm_progress_prints_every_ten_percent(shared_tmp, comm):
    from tumorpde.config import load_config
    from tumorpde.simulation import Simulation
    from tumorpde.simulation.observers import Progress

    cfg = load_config(_case(shared_tmp, comm), {"time.dt": "2 h", "time.t_end": "1 day"})
    buf = io.StringIO()
    obs = Progress(buf, percent_step=25.0, label="  arm control")
    with Simulation(cfg, comm, [obs]) as sim:
        sim.run(None, progress=False)
    lines = buf.getvalue().splitlines()
    if comm.rank == 0:  # 12 steps of 2 h: a line at 25, 50, 75 and 100 %
        assert [ln.split(":")[1].split("%")[0].strip() for ln in lines] == [
            "25.0",
            "50.0",
            "75.0",
            "100.0",
        ]
        assert all(ln.startswith("  arm control:") and "ETA" in ln for ln in lines)
    else:
        assert lines == []


# ------------------------------------------------------------------ --quiet, --log-file
def test_quiet_prints_nothing_but_errors(shared_tmp, comm, capsys):
    case = _case(shared_tmp, comm)
    assert main(["--quiet", "run", str(case), "-o", str(shared_tmp / "q")]) == 0
    assert main(["run", str(case), "-o", str(shared_tmp / "q2"), "-q"]) == 0  # after the command
    got = capsys.readouterr()
    assert got.out == ""  # no progress, no summary; stderr keeps warnings (a coarse seed) only
    assert "ETA" not in got.err and "step" not in got.err and "results" not in got.err
    assert (shared_tmp / "q2" / "qoi.csv").is_file()
    bad = _case(shared_tmp / "q", comm, CASE.replace('t_end = "2 day"', 't_end = "-2 day"'))
    assert main(["-q", "validate", str(bad)]) == 2
    got = capsys.readouterr()
    assert got.out == ""
    assert "error: invalid case" in got.err and "time.t_end" in got.err


def test_quiet_and_verbose_exclude_each_other(capsys):
    assert main(["-q", "-v", "schema"]) == 2
    assert "--quiet and --verbose" in capsys.readouterr().err


def test_log_file_gets_the_progress_the_summary_and_debug(shared_tmp, comm, capsys):
    case = _case(shared_tmp, comm)
    log = shared_tmp / "logs" / "run.log"
    assert main(["--log-file", str(log), "run", str(case), "-o", str(shared_tmp / "r")]) == 0
    out = capsys.readouterr().out
    comm.barrier()
    text = comm.bcast(log.read_text() if comm.rank == 0 else None, root=0)
    assert "INFO" in text and "ETA" in text and "tumorpde: done in" in text
    assert "results:" in text  # the summary printed by the command reaches the log too
    if comm.rank == 0:
        assert "tumorpde: done in" in out  # and the console, without --quiet


def test_unwritable_log_file_is_a_clear_error(shared_tmp, comm, capsys):
    blocker = shared_tmp / "file"
    if comm.rank == 0:
        blocker.write_text("x")
    comm.barrier()
    assert main(["--log-file", str(blocker / "run.log"), "schema"]) == (2 if comm.rank == 0 else 0)
    if comm.rank == 0:
        assert f"--log-file {blocker / 'run.log'}" in capsys.readouterr().err


# ------------------------------------------------------------------------------ gmsh quiet
def test_gmsh_output_is_not_on_stdout(shared_tmp, comm, capfd):
    pytest.importorskip("gmsh")
    from tumorpde.meshing.gmsh_session import gmsh_session
    from tumorpde.meshing.labels import write_model

    msh = shared_tmp / "cube.msh"
    if comm.rank == 0:
        with gmsh_session() as gmsh:
            gmsh.model.add("cube")
            v = gmsh.model.occ.addBox(0, 0, 0, 6, 4, 4)
            gmsh.model.occ.synchronize()
            gmsh.option.setNumber("Mesh.MeshSizeMax", 1.0)
            gmsh.model.mesh.generate(3)
            gmsh.model.addPhysicalGroup(3, [v], 1, name="grey")
            write_model(msh, binary=False)
    comm.barrier()
    text = CASE.replace(
        """kind = "box"
size = ["6 mm", "4 mm", "4 mm"]
cells = [6, 4, 4]
default_region = "grey"
regions = [{ name = "white", min = [3, 0, 0], max = [6, 4, 4] }]""",
        f'kind = "file"\npath = "{msh}"',
    )
    text = text.replace('[regions.white]\ntumor_motility = "0.65 mm^2/day"', "")
    text = text.replace('radius = "1.5 mm"', 'radius = "3 mm"')  # resolved by 1 mm cells
    case = _case(shared_tmp, comm, text)
    assert "Info" not in capfd.readouterr().out  # nothing from writing the mesh either
    assert main(["run", str(case), "-o", str(shared_tmp / "g"), "--set", 'time.t_end="12 h"']) == 0
    out = capfd.readouterr().out
    assert "Info" not in out and "Reading" not in out
    if comm.rank == 0:
        assert "100.0 %" in out


# ------------------------------------------------------------------------- bench targets
def test_bench_targets_are_judged_at_full_size_only(capsys):
    from tumorpde.studies import bench

    assert bench.judge(9.0, 5.0, "full") is False and bench.judge(1.0, 5.0, "full") is True
    assert bench.judge(9.0, 5.0, "tiny") is None
    scaling = runpy.run_path(str(REPO / "benchmarks" / "scaling.py"), run_name="scaling")
    slow = {"problem": "setup", "ranks": 1, "setup_s_per_Mvertex": 99.0, "compile_cold_s": 9.0}
    for size, flag in (("tiny", "n/a"), ("small", "n/a"), ("full", "NO")):
        rows = scaling["summarize"]([{**slow, "size": size}])
        scaling["_print_table"](rows)
        table = capsys.readouterr().out
        assert [line.split()[3] for line in table.splitlines()[1:3]] == [flag, flag], table
        if flag == "n/a":
            assert "NO" not in table and "targets are set for --size full" in table


# -------------------------------------------------------------------------------- validate
def test_validate_prints_values_with_units(shared_tmp, comm, capsys):
    case = _case(shared_tmp, comm)
    assert main(["validate", str(case)]) == 0
    out = capsys.readouterr().out
    assert "t_end = 48 h (2 day), dt = 12 h (0.5 day)" in out
    assert "proliferation 0.0125 1/h (0.3 1/day)" in out
    assert "region white: tumor.motility = 0.0270833 mm^2/h (0.65 mm^2/day)" in out


# ---------------------------------------------------------------------------- public API
def test_dir_lists_the_public_api():
    names = dir(tumorpde)
    assert set(tumorpde.__all__) <= set(names)
    assert {"run", "load_config", "Simulation", "build_model", "RunResult"} <= set(names)
    assert len(names) == len(set(names))
    for name in tumorpde.__all__:  # every listed name resolves
        assert getattr(tumorpde, name) is not None


def test_batch_prints_share_of_runs_done_and_each_runs_progress(shared_tmp, comm, capsys):
    from tumorpde.studies.batch import run_batch
    from tumorpde.studies.sweep import load_sweep

    _case(shared_tmp, comm)
    if comm.rank == 0:
        (shared_tmp / "sweep.toml").write_text(
            'base = "case.toml"\nname = "two"\n[[runs]]\n"tumor.proliferation_rate" = "0.1 1/day"'
            '\n[[runs]]\n"tumor.proliferation_rate" = "0.2 1/day"\n'
        )
    comm.barrier()
    buf = io.StringIO()
    sweep = load_sweep(shared_tmp / "sweep.toml")
    res = run_batch(sweep, shared_tmp / "b", comm=comm, procs_per_run=comm.size, stream=buf)
    assert res["counts"] == {"complete": 2}
    out = capsys.readouterr().out
    done = [ln for ln in buf.getvalue().splitlines() if " done (" in ln]
    if comm.rank == 0:  # one group of every rank: rank 0 runs both and reports each at 25 %
        assert [ln.split("%")[0] for ln in done] == [
            "tumorpde batch:  50.0 ",
            "tumorpde batch: 100.0 ",
        ]
        assert all("ETA" in ln and "/2 done (0 failed)" in ln for ln in done)
        per_run = [ln for ln in out.splitlines() if ln.startswith("  run ")]
        assert len(per_run) == 2 * 4  # 10 % steps of a 4-step run: 25, 50, 75, 100 %
        assert all("ETA" in ln for ln in per_run)
    else:
        assert done == [] and "ETA" not in out
