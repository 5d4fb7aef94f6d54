"""Shipped meshes load at any rank count with their named regions and recorded volumes."""

import json

import pytest
from helpers import REPO

from tumorpde.config import FileMesh, mesh_region_names
from tumorpde.fem.domain import load_domain

MESHES = sorted((REPO / "meshes").glob("*.msh"))


@pytest.mark.parametrize("path", MESHES, ids=[p.stem for p in MESHES])
def test_shipped_mesh_matches_its_metadata(path, comm):
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["units"] == "mm"
    dom = load_domain(FileMesh(kind="file", path=path), comm)
    assert dom.regions == meta["regions"]
    assert dom.boundaries == meta["boundaries"]
    assert dom.num_cells_global() == meta["cells"]
    vols = dom.region_volumes()
    for name, vol in vols.items():
        assert vol == pytest.approx(meta["volumes_mm3"][name], rel=1e-6)
    assert meta["min_dihedral_deg"] >= 5.0  # quality gate: no slivers
    assert mesh_region_names(FileMesh(kind="file", path=path)) == sorted(meta["regions"])


def test_region_of_point(comm):
    path = REPO / "meshes" / "brain_phantom.msh"
    meta = json.loads(path.with_suffix(".json").read_text())
    dom = load_domain(FileMesh(kind="file", path=path), comm)
    assert dom.region_of_point(meta["seed_point_mm"]) == meta["seed_region"]
    assert dom.region_of_point([0.0, 0.0, 500.0]) is None
