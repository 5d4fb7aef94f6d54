"""The default field files open outside ParaView: VTK's vtkHDFReader, PyVista, h5py.

A 2-rank ``tumorpde run`` (``mpiexec -n 2``, as a user runs it) writes VTKHDF; the files are
opened the ways a user would (no tumorpde code), and the numbers are checked against the QoI
table: the P1 integral of the stored tumor density is the tumor burden, the region tags carry
the region volumes, the boundary tags the face areas, every field has its unit. A run killed
with ``kill -9`` between output times leaves a series naming only whole, readable files, and
``--resume`` continues it in a second segment that :func:`tumorpde.load_run` joins.

meshio (5.3) has no VTKHDF reader (``meshio.read`` cannot deduce the format) and cannot read
DOLFINx's XDMF time series either; h5py reads the VTKHDF datasets directly.

These tests launch subprocesses, so they are serial.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import box_toml

import tumorpde

BIN = Path(sys.executable).parent
pv = pytest.importorskip("pyvista")
h5py = pytest.importorskip("h5py")
pytestmark = pytest.mark.serial


def _case(tmp_path: Path, nx: int = 6, t_end: str = "2 day") -> Path:
    path = tmp_path / "case.toml"
    path.write_text(box_toml("readable_box", nx=nx, t_end=t_end))
    return path


def _cmd(case: Path, out: Path, ranks: int, *extra: str) -> list[str]:
    cmd = [str(BIN / "tumorpde"), "run", str(case), "-o", str(out), *extra]
    return [str(BIN / "mpiexec"), "-n", str(ranks), *cmd] if ranks > 1 else cmd


def _qoi(out: Path) -> dict[float, dict[str, float]]:
    with (out / "qoi.csv").open() as f:
        return {float(r["t_h"]): {k: float(v) for k, v in r.items()} for r in csv.DictReader(f)}


def _tet_volumes(points: np.ndarray, cells: np.ndarray) -> np.ndarray:
    a, b, c, d = (points[cells[:, i]] for i in range(4))
    return np.abs(np.einsum("ij,ij->i", b - a, np.cross(c - a, d - a))) / 6.0


def _series(out: Path, stem: str = "fields") -> list[tuple[float, Path]]:
    data = json.loads((out / f"{stem}.vtkhdf.series").read_text())
    return [(float(e["time"]), out / e["name"]) for e in data["files"]]


def test_a_two_rank_run_opens_with_vtk_pyvista_and_h5py(tmp_path):
    out = tmp_path / "run"
    res = subprocess.run(_cmd(_case(tmp_path), out, 2), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    qoi = _qoi(out)
    series = _series(out)
    assert [t for t, _ in series] == [0.0, 12.0, 24.0, 36.0, 48.0]

    # VTK's own reader (pip VTK): every file of the series, point and cell data, field data
    from vtkmodules.vtkIOHDF import vtkHDFReader

    for t, path in series:
        r = vtkHDFReader()
        r.SetFileName(str(path))
        r.Update()
        grid = pv.wrap(r.GetOutput())
        assert grid.n_cells == 6 * 4 * 4 * 6 and grid.n_points == 7 * 5 * 5
        assert float(grid.field_data["time"][0]) == t
        burden = float(grid.integrate_data()["tumor"][0])
        assert burden == pytest.approx(qoi[t]["tumor_burden_mm3"], rel=1e-9)

    # PyVista: the time series through the PVD index, and the ParaView series file
    reader = pv.get_reader(str(out / "fields.pvd"))
    assert reader.time_values == [0.0, 12.0, 24.0, 36.0, 48.0]
    reader.set_active_time_value(24.0)
    block = reader.read()[0]
    assert float(block.integrate_data()["tumor"][0]) == pytest.approx(
        qoi[24.0]["tumor_burden_mm3"], rel=1e-9
    )

    # h5py on the VTKHDF layout, without VTK: units, tag names, the integral by hand
    with h5py.File(series[-1][1], "r") as f:
        g = f["VTKHDF"]
        assert g.attrs["Type"] == b"UnstructuredGrid"
        regions = json.loads(g.attrs["regions"])
        boundaries = json.loads(g.attrs["boundaries"])
        assert regions == {"grey": 1, "white": 2}
        assert set(boundaries) == {"xmin", "xmax", "ymin", "ymax", "zmin", "zmax"}
        units = {n: g["PointData"][n].attrs["units"] for n in g["PointData"]}
        assert units["EGF"] == "nM" and units["EGFR_occupancy"] == "1"
        pts = g["Points"][...]
        cells = g["Connectivity"][...].reshape(-1, 4)
        region = g["CellData/region"][...]
        u = g["PointData/tumor"][...]
        assert float(g["FieldData/time"][0]) == 48.0
    vol = _tet_volumes(pts, cells)
    assert vol[region == regions["white"]].sum() == pytest.approx(48.0)
    assert vol[region == regions["grey"]].sum() == pytest.approx(48.0)
    p1 = (vol * u[cells].mean(axis=1)).sum()  # exact integral of a P1 function
    assert p1 == pytest.approx(qoi[48.0]["tumor_burden_mm3"], rel=1e-9)
    with h5py.File(out / "fields" / "boundary.vtkhdf", "r") as f:
        tri = f["VTKHDF/Connectivity"][...].reshape(-1, 3)
        tags = f["VTKHDF/CellData/boundary"][...]
        bpts = f["VTKHDF/Points"][...]
    assert np.all(bpts[tri[tags == boundaries["xmin"]]][..., 0] == 0.0)
    assert np.all(bpts[tri[tags == boundaries["xmax"]]][..., 0] == 6.0)
    a, b, c = (bpts[tri[:, i]] for i in range(3))
    area = np.linalg.norm(np.cross(b - a, c - a), axis=1) / 2
    assert area[tags == boundaries["zmin"]].sum() == pytest.approx(24.0)

    # tumorpde.load_run: the same numbers
    run = tumorpde.load_run(out)
    assert run.times == [t for t, _ in series] and run.regions == regions
    assert run.qoi.attrs["units"]["tumor_burden_mm3"] == "mm^3"


def _wait_for_series(out: Path, proc: subprocess.Popen, n: int, timeout: float = 120.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.stdout.read().decode()[-2000:]}")
        try:
            if len(_series(out)) >= n:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    pytest.fail("no output in time")


@pytest.mark.parametrize("ranks", [1, 2])
def test_kill_9_leaves_a_readable_series_and_resume_joins_it(tmp_path, ranks):
    case = _case(tmp_path, nx=12, t_end="400 day")
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        _cmd(case, out, ranks),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    _wait_for_series(out, proc, 4)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    series = _series(out)
    times = [t for t, _ in series]
    assert times == [12.0 * i for i in range(len(times))]
    for t, path in series:  # every file the series names is whole
        grid = pv.read(str(path))
        assert float(grid.field_data["time"][0]) == t
        assert np.all(np.isfinite(grid.point_data["tumor"]))
    run = tumorpde.load_run(out)  # no species/mesh in the manifest of a killed run
    assert run.manifest["status"] == "running"
    assert run.times == times and run.units["EGF"] == "nM"
    assert run.regions == {"grey": 1, "white": 2}
    assert run.dataset(time=times[-1]).n_points == 13 * 5 * 5
    # continue it to an earlier end: the second segment starts at the newest checkpoint
    short = _case(tmp_path, nx=12, t_end=f"{times[-1] / 24 + 1} day")
    res = subprocess.run(
        _cmd(short, out, 1, "--resume", "--quiet"), capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    run = tumorpde.load_run(out)
    assert run.manifest["status"] == "complete"
    # the newest checkpoint may be one output time past the last published fields (it is
    # written before the fields): the continuation then starts there, leaving no gap
    start = _series(out, "fields.r1")[0][0]
    assert start <= times[-1] + 12.0
    assert run.times == [12.0 * i for i in range(len(run.times))]  # each time once
    assert run.times[-1] == times[-1] + 24.0
    qoi = _qoi(out)
    for t in run.times[-3:]:
        grid = run.dataset(time=t)
        assert float(grid.integrate_data()["tumor"][0]) == pytest.approx(
            qoi[t]["tumor_burden_mm3"], rel=1e-9
        )
