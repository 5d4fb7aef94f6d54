"""CLI end to end: validate, run (in-process at any rank count), info, and failure modes."""

import argparse
import csv
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO

from tumorpde.cli import main

BIN = Path(sys.executable).parent

CASE = """
name = "cli_box"
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
chemotaxis = "0.5 mm^2/day/nM"
initial = { kind = "gaussian", center = ["3 mm", "2 mm", "2 mm"], radius = "1.5 mm" }
[ligand]
diffusivity = "6e-7 cm^2/s"
decay_rate = "1e-4 1/s"
tumor_secretion = "1 nM/h"
stromal_secretion = "0.02 nM/h"
[receptor]
receptors_per_cell = 5e4
k_on = "1e6 1/M/s"
k_off = "2e-3 1/s"
k_t = "0.03 1/min"
k_e = "0.15 1/min"
[regions.white]
tumor_motility = "0.65 mm^2/day"
[output]
picture = {picture}
"""


def write_case(directory: Path, comm, picture: bool = False) -> Path:
    path = directory / "case.in.toml"
    if comm.rank == 0:
        path.write_text(CASE.replace("{picture}", "true" if picture else "false"))
    comm.barrier()
    return path


def read_qoi(path: Path) -> dict[str, np.ndarray]:
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def test_validate_ok_and_errors(shared_tmp, comm, capsys):
    case = write_case(shared_tmp, comm)
    if comm.rank == 0:
        assert main(["validate", str(case)]) == 0
        assert "valid case 'cli_box'" in capsys.readouterr().out
        assert main(["validate", str(case), "--set", "time.dt=-1"]) == 2
        err = capsys.readouterr().err
        assert "time.dt: Input should be greater than 0" in err
        assert main(["validate", str(shared_tmp / "nope.toml")]) == 2


def test_run_writes_a_complete_run_directory(shared_tmp, comm):
    case = write_case(shared_tmp, comm, picture=True)
    out = shared_tmp / "run"
    assert main(["run", str(case), "-o", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["mpi_ranks"] == comm.size
    assert manifest["steps"] == 4
    assert manifest["resolved"]["tumor"]["proliferation_rate"] == pytest.approx(0.3 / 24)
    assert set(manifest["mesh"]["regions"]) == {"grey", "white"}
    assert manifest["mesh"]["region_volumes_mm3"]["white"] == pytest.approx(48.0)
    assert {"dolfinx-solver-real", "fenics-ufl"} <= set(manifest["versions"])
    assert tomllib.loads((out / "case.toml").read_text())["name"] == "cli_box"
    q = read_qoi(out / "qoi.csv")
    assert np.allclose(q["t_h"], [0, 12, 24, 36, 48])
    assert q["tumor_burden_mm3"][-1] > q["tumor_burden_mm3"][0]  # it grew
    assert np.all(q["newton_iterations"][1:] >= 1)
    assert (out / "fields" / "mesh.vtkhdf").stat().st_size > 0  # the default format: VTKHDF
    assert (out / "final.png").stat().st_size > 10_000
    series = json.loads((out / "fields.vtkhdf.series").read_text())
    assert [f["time"] for f in series["files"]] == [0.0, 24.0, 48.0]  # t = 0, 1 d, 2 d
    h5py = pytest.importorskip("h5py")
    with h5py.File(out / series["files"][-1]["name"], "r") as f:
        names = set(f["VTKHDF/PointData"])
    assert names == {"tumor", "EGF", "EGFR", "EGFR_complex", "EGFR_occupancy"}

    # a second run into the same directory is refused, and leaves it intact
    before = (out / "qoi.csv").read_bytes()
    assert main(["run", str(case), "-o", str(out)]) == 2
    assert (out / "qoi.csv").read_bytes() == before
    assert (
        main(["run", str(case), "-o", str(out), "--overwrite", "--set", "time.t_end='1 day'"]) == 0
    )
    assert len(read_qoi(out / "qoi.csv")["t_h"]) == 3


def test_run_refuses_foreign_directory(shared_tmp, comm):
    case = write_case(shared_tmp, comm)
    foreign = shared_tmp / "mine"
    if comm.rank == 0:
        foreign.mkdir()
        (foreign / "notes.txt").write_text("precious")
    comm.barrier()
    assert main(["run", str(case), "-o", str(foreign), "--overwrite"]) == 2
    assert (foreign / "notes.txt").read_text() == "precious"


def test_info(capsys, comm):
    assert main(["info", "--json"]) == 0
    if comm.rank == 0:
        info = json.loads(capsys.readouterr().out)
        assert info["dolfinx"].startswith("0.11")
        assert info["mpi_size"] == comm.size
        assert info["solvers"]["mumps"] is True


def _mpirun(args, timeout=300, **kw):
    env = {**os.environ, "PYVISTA_OFF_SCREEN": "true"}
    cmd = ["timeout", str(timeout), str(BIN / "mpiexec"), "-n", "2", str(BIN / "tumorpde"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)


@pytest.mark.serial
def test_one_and_two_ranks_give_the_same_qois(shared_tmp, comm):
    case = write_case(shared_tmp, comm)
    assert main(["run", str(case), "-o", str(shared_tmp / "np1")]) == 0
    proc = _mpirun(["run", str(case), "-o", str(shared_tmp / "np2")])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "results:" in proc.stdout
    q1, q2 = read_qoi(shared_tmp / "np1" / "qoi.csv"), read_qoi(shared_tmp / "np2" / "qoi.csv")
    m2 = json.loads((shared_tmp / "np2" / "manifest.json").read_text())
    assert m2["mpi_ranks"] == 2
    for key in ("tumor_burden_mm3", "mean_EGF_nM", "occupancy_EGFR", "max_tumor"):
        np.testing.assert_allclose(q2[key], q1[key], rtol=1e-8, err_msg=key)
    np.testing.assert_allclose(q2["min_tumor"], q1["min_tumor"], rtol=1e-6, atol=1e-12)


@pytest.mark.serial
def test_mpi_errors_end_the_job_without_hanging(shared_tmp):
    bad = shared_tmp / "bad.toml"
    bad.write_text(CASE.replace("{picture}", "false").replace('"12 h"', '"0 h"'))
    proc = _mpirun(["run", str(bad), "-o", str(shared_tmp / "bad")], timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.count("time.dt: Input should be greater than 0") == 1  # rank 0 only
    assert not (shared_tmp / "bad").exists()  # nothing written before validation passed


def test_cli_import_is_cheap():
    code = (
        "import sys, tumorpde.cli; "
        "print([m for m in ('dolfinx', 'gmsh', 'pyvista', 'mpi4py') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_command_is_registered():
    from tumorpde.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == [
        "run",
        "validate",
        "info",
        "verify",
        "bench",
        "mesh",
        "drug",
        "params",
        "compare",
        "schema",
        "rerun",
        "batch",
        "sensitivity",
        "plot",
        "animate",
        "warmup",
        "view",
    ]


def test_compare_rejects_unknown_arms(shared_tmp, comm, capsys):
    case = write_case(shared_tmp, comm)
    assert main(["compare", str(case), "--arms", "control,nope"]) == 2
    if comm.rank == 0:
        assert "--arms: unknown arm(s) ['nope']" in capsys.readouterr().err


def test_readme_commands_exist():
    readme = (REPO / "README.md").read_text()
    for cmd in ("make demo", "make test", "tumorpde run", "tumorpde validate", "tumorpde info"):
        assert cmd in readme


def test_rejected_petsc_options_are_a_clear_error(shared_tmp, comm, capsys):
    case = write_case(shared_tmp, comm)
    code = main(
        ["run", str(case), "-o", str(shared_tmp / "hy"), "--set", 'solver.petsc.pc_type="hypre"']
    )
    assert code == 2
    if comm.rank == 0:
        err = capsys.readouterr().err
        assert "solver.petsc.pc_type: this PETSc build has no PC type 'hypre'" in err, err
    # the options database is clean again: a following run works
    assert main(["run", str(case), "-o", str(shared_tmp / "ok")]) == 0
