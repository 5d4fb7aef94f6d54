"""``tumorpde.load_run``: a run directory read back (VTKHDF and XDMF fields, resumed segments).

The runs are made in-process on every rank (serially and under ``mpiexec -n 2``); rank 0 reads
them back and the measured numbers are broadcast, so every rank asserts the same thing. The
error tests need no MPI.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import box_toml

import tumorpde
from tumorpde.output.load import RunReadError, field_units, qoi_units

FIELDS = ["tumor", "EGF", "EGFR", "EGFR_complex", "EGFR_occupancy"]


def _run(directory: Path, comm, fmt: str, *args: str, t_end: str = "2 day") -> Path:
    pytest.importorskip("pyvista")
    pytest.importorskip("h5py")
    from tumorpde.cli import main

    case = directory / f"{fmt}.toml"
    if comm.rank == 0:
        case.write_text(box_toml("load_box", t_end=t_end, output=f'format = "{fmt}"\n'))
    comm.barrier()
    out = directory / fmt
    assert main(["run", str(case), "-o", str(out), "--quiet", *args]) == 0
    return out


def _measure(out: Path) -> dict:
    """What rank 0 reads back: integrals of the fields, region volumes, boundary areas."""
    run = tumorpde.load_run(out)
    burden, volumes = [], {}
    for i in range(len(run.times)):
        grid = run.dataset(index=i)
        burden.append(float(grid.integrate_data()["tumor"][0]))
        assert float(grid.field_data["time"][0]) == run.times[i]
    grid = run.dataset()
    vols = grid.compute_cell_sizes(length=False, area=False)["Volume"]
    for name, tag in run.regions.items():
        volumes[name] = float(vols[grid.cell_data["region"] == tag].sum())
    surf = run.boundary_dataset()
    areas = surf.compute_cell_sizes(length=False, volume=False)["Area"]
    boundary = {
        n: float(areas[surf.cell_data["boundary"] == t].sum()) for n, t in run.boundaries.items()
    }
    order = np.lexsort(np.asarray(grid.points).T)
    return {
        "format": run.format,
        "times": run.times,
        "fields": run.fields,
        "units": run.units,
        "qoi_t": run.qoi["t_h"].tolist(),
        "qoi_burden": run.qoi["tumor_burden_mm3"].tolist(),
        "qoi_units": run.qoi.attrs["units"],
        "burden": burden,
        "volumes": volumes,
        "manifest_volumes": run.manifest.get("mesh", {}).get("region_volumes_mm3"),
        "boundary": boundary,
        "status": run.manifest["status"],
        "values": {n: np.asarray(grid.point_data[n])[order] for n in FIELDS},
        "points": np.asarray(grid.points)[order],
    }


def _measured(out: Path, comm) -> dict:
    """:func:`_measure` on rank 0, the same dict on every rank (a rank-0 error on all)."""
    m: object = None
    if comm.rank == 0:
        try:
            m = _measure(out)
        except Exception as exc:  # re-raised on every rank below
            m = exc
    m = comm.bcast(m, root=0)
    if isinstance(m, Exception):
        raise m
    return m


@pytest.mark.parametrize("fmt", ["vtkhdf", "xdmf"])
def test_load_run_matches_the_qoi_table(shared_tmp, comm, fmt):
    m = _measured(_run(shared_tmp, comm, fmt), comm)
    assert m["format"] == fmt and m["status"] == "complete"
    assert m["times"] == [0.0, 12.0, 24.0, 36.0, 48.0] == m["qoi_t"]
    assert m["fields"] == FIELDS
    assert m["units"]["EGF"] == "nM" and m["units"]["EGFR_occupancy"] == "1"
    assert m["units"]["tumor"].startswith("1")
    assert m["qoi_units"]["tumor_burden_mm3"] == "mm^3" and m["qoi_units"]["t_h"] == "h"
    # the P1 integral of the stored tumor density is the QoI (vertex quadrature = exact for P1)
    assert np.allclose(m["burden"], m["qoi_burden"], rtol=1e-9)
    assert m["burden"][-1] > m["burden"][0]
    assert set(m["volumes"]) == {"grey", "white"}
    for name, vol in m["volumes"].items():
        assert vol == pytest.approx(m["manifest_volumes"][name], rel=1e-9)
        assert vol == pytest.approx(48.0)
    if fmt == "vtkhdf":  # XDMF runs did not store the boundary tags
        assert m["boundary"]["xmin"] == pytest.approx(16.0)
        assert m["boundary"]["zmax"] == pytest.approx(24.0)
        assert sum(m["boundary"].values()) == pytest.approx(2 * (16 + 24 + 24))


def test_both_formats_store_the_same_fields(shared_tmp, comm):
    a = _measured(_run(shared_tmp, comm, "vtkhdf"), comm)
    b = _measured(_run(shared_tmp, comm, "xdmf"), comm)
    assert np.allclose(a["points"], b["points"])
    for name in FIELDS:
        assert np.allclose(a["values"][name], b["values"][name], rtol=1e-12, atol=1e-14), name


def test_a_resumed_run_concatenates_its_segments(shared_tmp, comm):
    out = _run(shared_tmp, comm, "vtkhdf", t_end="1 day")
    case = shared_tmp / "vtkhdf.toml"
    if comm.rank == 0:
        case.write_text(box_toml("load_box", output='format = "vtkhdf"\n'))
    comm.barrier()
    from tumorpde.cli import main

    assert main(["run", str(case), "-o", str(out), "--resume", "--quiet"]) == 0
    assert (out / "fields.r1.vtkhdf.series").is_file()
    m = _measured(out, comm)
    assert m["times"] == [0.0, 12.0, 24.0, 36.0, 48.0]  # t = 24 h once, from the new segment
    assert np.allclose(m["burden"], m["qoi_burden"], rtol=1e-9)
    assert json.loads((out / "manifest.json").read_text())["files"]["fields"].endswith(
        "fields.vtkhdf.series"
    )


def test_nearest_time_and_out_of_range(shared_tmp, comm):
    out = _run(shared_tmp, comm, "vtkhdf")
    if comm.rank == 0:
        run = tumorpde.load_run(out)
        assert float(run.dataset(time=13.0).field_data["time"][0]) == 12.0
        assert float(run.dataset().field_data["time"][0]) == 48.0
        with pytest.raises(ValueError, match=r"100 h is outside .* 0, 12, 24, 36, 48"):
            run.dataset(time=100.0)
        with pytest.raises(IndexError, match="5 output times"):
            run.dataset(index=7)
        # a damaged time file is named
        victim = out / "fields" / "fields_000002.vtkhdf"
        victim.write_bytes(b"garbage")
        with pytest.raises(RunReadError, match=r"fields_000002\.vtkhdf"):
            run.dataset(index=2)


def test_a_write_error_stops_the_run_and_keeps_the_series(shared_tmp, comm, monkeypatch):
    """ENOSPC while rank 0 writes the third time file: every rank stops, naming that file."""
    import errno

    h5py = pytest.importorskip("h5py")
    from tumorpde.output.rundir import OutputWriteError

    real = h5py.File

    def full(name, mode="r", *args, **kwargs):
        if Path(name).name == "fields_000002.vtkhdf" and mode == "w":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", full)
    case = shared_tmp / "case.toml"
    if comm.rank == 0:
        case.write_text(box_toml("load_box", output='format = "vtkhdf"\n'))
    comm.barrier()
    with pytest.raises(OutputWriteError) as exc:
        tumorpde.run(case, shared_tmp / "vtkhdf", comm=comm, progress=False)
    assert exc.value.errno == errno.ENOSPC
    assert str(exc.value).startswith(str(shared_tmp / "vtkhdf" / "fields" / "fields_000002"))
    monkeypatch.setattr(h5py, "File", real)
    m = _measured(shared_tmp / "vtkhdf", comm)
    assert m["status"] == "failed" and m["times"] == [0.0, 12.0]
    assert np.allclose(m["burden"], m["qoi_burden"][:2], rtol=1e-9)


def test_not_a_run_directory_is_named(tmp_path):
    with pytest.raises(RunReadError, match="no such run directory"):
        tumorpde.load_run(tmp_path / "nope")
    with pytest.raises(RunReadError, match=r"manifest.json is missing"):
        tumorpde.load_run(tmp_path)
    (tmp_path / "manifest.json").write_text('{"hello": 1}')
    with pytest.raises(RunReadError, match="not a tumorpde manifest"):
        tumorpde.load_run(tmp_path)


def test_missing_or_corrupt_files_are_named(shared_tmp, comm):
    out = _run(shared_tmp, comm, "vtkhdf")
    if comm.rank != 0:
        return
    broken = shared_tmp / "broken"
    shutil.copytree(out, broken)
    (broken / "qoi.csv").unlink()
    with pytest.raises(RunReadError, match=r"qoi.csv is missing"):
        tumorpde.load_run(broken)
    shutil.copy(out / "qoi.csv", broken / "qoi.csv")
    (broken / "fields.vtkhdf.series").write_text("{not json")
    with pytest.raises(RunReadError, match=r"fields.vtkhdf.series: not a readable file series"):
        tumorpde.load_run(broken)
    (broken / "fields.vtkhdf.series").unlink()
    (broken / "resolved.toml").unlink()
    with pytest.raises(RunReadError, match=r"resolved.toml is missing"):
        tumorpde.load_run(broken)


def test_units_follow_the_naming_convention():
    species = {"tumor": "1 (u = n / n_max)", "EGF": "nM", "oxygen": "mmHg", "EGFR_signal": "1"}
    u = qoi_units(
        ["step", "t_h", "wall_s", "mean_EGF_nM", "trastuzumab_nM_tumor", "max_oxygen",
         "mean_oxygen_mmHg", "mean_kill_rate", "balance_EGF", "occupancy_EGFR"],
        species,
    )  # fmt: skip
    assert u == {
        "step": "1",
        "t_h": "h",
        "wall_s": "s",
        "mean_EGF_nM": "nM",
        "trastuzumab_nM_tumor": "nM",
        "max_oxygen": "mmHg",
        "mean_oxygen_mmHg": "mmHg",
        "mean_kill_rate": "1/h",
        "balance_EGF": "1",
        "occupancy_EGFR": "1",
    }
    f = field_units(["EGF", "kill_rate", "EGFR_occupancy"], species)
    assert f == {"EGF": "nM", "kill_rate": "1/h", "EGFR_occupancy": "1"}
