"""``tumorpde mesh refine``: tagged output + sidecar, volumes kept, errors before compute."""

import json

import pytest
from helpers import REPO

from tumorpde.cli import main
from tumorpde.meshing.info import mesh_info
from tumorpde.meshing.msh import read_msh

PHANTOM = REPO / "meshes" / "brain_phantom.msh"
ARGS = ["--around", "30,35,20", "--radius", "5", "--size", "1.2"]


def test_refine_writes_tagged_mesh_and_sidecar(shared_tmp, comm, capsys):
    out = shared_tmp / "phantom_fine.msh"
    assert main(["mesh", "refine", str(PHANTOM), *ARGS, "-o", str(out)]) == 0
    comm.barrier()
    text = capsys.readouterr().out
    if comm.rank == 0:
        assert "wrote" in text and f"{comm.size} MPI rank(s)" in text
    meta = json.loads(out.with_suffix(".json").read_text())
    src = json.loads(PHANTOM.with_suffix(".json").read_text())
    info = mesh_info(read_msh(out))  # what `tumorpde mesh info` prints
    assert info["cells"] == meta["cells"] > src["cells"]
    assert info["regions"] == src["regions"] and info["boundaries"] == src["boundaries"]
    for name, v in src["volumes_mm3"].items():
        assert info["volumes_mm3"][name] == pytest.approx(v, abs=0.15), name
    for name, a in src["boundary_areas_mm2"].items():
        assert info["boundary_areas_mm2"][name] == pytest.approx(a, abs=0.15), name
    assert info["slivers"] == 0 == meta["slivers_below_5deg"]
    ref = meta["refinement"]
    assert ref["input"] == PHANTOM.name and ref["cells_before"] == src["cells"]
    assert ref["zones_mm"] == [{"center": [30.0, 35.0, 20.0], "radius": 5.0, "size": 1.2}]
    assert meta["license"] == src["license"]  # provenance carried over
    assert main(["mesh", "info", str(out), "--check"]) == 0
    comm.barrier()
    # a second run refuses to replace the output unless --overwrite
    assert main(["mesh", "refine", str(PHANTOM), *ARGS, "-o", str(out)]) == 2
    if comm.rank == 0:
        assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--around", "30,35", "--radius", "5", "--size", "1"], "3 numbers"),
        (["--around", "30,35,20", "--size", "1"], "--radius"),
        (["--around", "30,35,20", "--radius", "5"], "--size"),
        (["--around", "900,0,0", "--radius", "5", "--size", "1"], "does not reach the mesh"),
        ([*ARGS, "-o", "x.vtu"], "must be a .msh"),
    ],
)
def test_refine_errors(args, message, comm, capsys, shared_tmp, monkeypatch):
    monkeypatch.chdir(shared_tmp)
    assert main(["mesh", "refine", str(PHANTOM), *args]) == 2
    if comm.rank == 0:
        assert message in capsys.readouterr().err
    assert not list(shared_tmp.glob("*.msh"))


def test_refine_missing_input(shared_tmp, comm, capsys):
    missing = shared_tmp / "nope.msh"
    assert main(["mesh", "refine", str(missing), *ARGS]) == 2
    if comm.rank == 0:
        assert "nope.msh" in capsys.readouterr().err
