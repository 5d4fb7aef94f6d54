"""Local refinement around lesions: zones, size fields, tags and volumes kept (any rank count)."""

import json

from mpi4py import MPI

import numpy as np
import pytest
import ufl
from dolfinx import fem, mesh
from helpers import REPO

from tumorpde.config import FileMesh
from tumorpde.fem.domain import load_domain
from tumorpde.fem.refine import gather_mesh_arrays, refine_domain
from tumorpde.meshing.info import mesh_info
from tumorpde.meshing.msh import read_msh
from tumorpde.meshing.refine import write_mesh_arrays
from tumorpde.meshing.zones import RefineZone, ZoneError, edges_to_split, parse_zones

PHANTOM = REPO / "meshes" / "brain_phantom.msh"
#: A ball at the phantom's seed point; the phantom's edges there are ~1.8-2.4 mm long.
ZONE = RefineZone((30.0, 35.0, 20.0), 6.0, 1.0)


def _measures(d):
    """Region volumes, exterior and interior boundary measures (MPI-reduced)."""
    comm = d.comm
    one = fem.Constant(d.mesh, 1.0)
    dx = ufl.Measure("dx", domain=d.mesh, subdomain_data=d.cell_tags)
    ds = ufl.Measure("ds", domain=d.mesh, subdomain_data=d.facet_tags)
    dS = ufl.Measure("dS", domain=d.mesh, subdomain_data=d.facet_tags)

    def tot(form):
        return comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)

    vols = {n: tot(one * dx(t)) for n, t in d.regions.items()}
    areas = {n: tot(one * ds(t)) + tot(one("+") * dS(t)) for n, t in d.boundaries.items()}
    return vols, areas


def _tagged_cells(d):
    n_own = d.mesh.topology.index_map(3).size_local
    return d.comm.allreduce(int(np.sum(d.cell_tags.indices < n_own)), op=MPI.SUM)


def _longest_edge_in(d, zone):
    msh = d.mesh
    msh.topology.create_entities(1)
    msh.topology.create_connectivity(1, 3)
    n = msh.topology.index_map(1).size_local
    g = mesh.entities_to_geometry(msh, 1, np.arange(n, dtype=np.int32))
    p0, p1 = msh.geometry.x[g[:, 0]], msh.geometry.x[g[:, 1]]
    inside = edges_to_split(p0, p1, [RefineZone(zone.center, zone.radius, 1e-9)])
    lengths = np.linalg.norm(p1 - p0, axis=1)[inside]
    return d.comm.allreduce(float(lengths.max()) if lengths.size else 0.0, op=MPI.MAX)


@pytest.fixture(scope="module")
def phantom():
    return load_domain(FileMesh(kind="file", path=PHANTOM), MPI.COMM_WORLD)


def test_refine_keeps_tags_volumes_and_areas(phantom):
    before_vols, before_areas = _measures(phantom)
    assert _longest_edge_in(phantom, ZONE) > ZONE.size  # there is something to refine
    d, report = refine_domain(phantom, [ZONE])
    assert d.regions == phantom.regions and d.boundaries == phantom.boundaries
    assert report.cells_after == d.num_cells_global() > phantom.num_cells_global()
    assert len(report.edges_split) >= 1
    assert _tagged_cells(d) == d.num_cells_global()  # every cell has its region
    vols, areas = _measures(d)
    for n, v in before_vols.items():
        assert vols[n] == pytest.approx(v, rel=1e-11), n
    for n, a in before_areas.items():
        assert a > 0 and areas[n] == pytest.approx(a, rel=1e-11), n
    assert _longest_edge_in(d, ZONE) <= ZONE.size
    # the refinement is local: beyond 1.5 radii the cells are (almost all) the parent's
    far = [_cells_beyond(x, ZONE.center, 1.5 * ZONE.radius) for x in (phantom, d)]
    assert far[0] <= far[1] < 1.1 * far[0]


def _cells_beyond(d, center, r):
    n = d.mesh.topology.index_map(3).size_local
    mid = mesh.compute_midpoints(d.mesh, 3, np.arange(n, dtype=np.int32))
    far = int(np.sum(np.linalg.norm(mid - np.asarray(center), axis=1) > r))
    return d.comm.allreduce(far, op=MPI.SUM)


def test_refine_quality_and_gathered_mesh(phantom, comm):
    d, _ = refine_domain(phantom, [ZONE])
    arrays = gather_mesh_arrays(d)
    info = comm.bcast(mesh_info(arrays) if comm.rank == 0 else None, root=0)
    assert info["cells"] == d.num_cells_global()
    assert info["slivers"] == 0 and info["min_dihedral_deg"] >= 5.0
    vols, _ = _measures(d)
    for n, v in vols.items():
        assert info["volumes_mm3"][n] == pytest.approx(v, abs=0.06)


def test_case_level_refine_at_load(comm):
    cfg = FileMesh(
        kind="file",
        path=PHANTOM,
        refine=[{"center": list(ZONE.center), "radius": "6 mm", "size": "1 mm"}],
    )
    d = load_domain(cfg, comm)
    plain = load_domain(FileMesh(kind="file", path=PHANTOM), comm)
    assert d.num_cells_global() > plain.num_cells_global()
    assert _longest_edge_in(d, ZONE) <= 1.0
    for n, v in plain.region_volumes().items():
        assert d.region_volumes()[n] == pytest.approx(v, rel=1e-11)
    assert d.region_of_point(np.array(ZONE.center)) == "white"


def test_refine_without_zones_is_identity(phantom):
    d, report = refine_domain(phantom, [])
    assert d is phantom and report.cells_after == report.cells_before


def test_schema_rejects_bad_zone():
    with pytest.raises(ValueError, match="radius"):
        FileMesh(kind="file", path=PHANTOM, refine=[{"center": [0, 0, 0], "radius": 0, "size": 1}])
    with pytest.raises(ValueError, match="center"):
        FileMesh(kind="file", path=PHANTOM, refine=[{"center": [0, 0], "radius": 1, "size": 1}])


def test_edges_to_split_geometry():
    z = RefineZone((0.0, 0.0, 0.0), 1.0, 0.5)
    p0 = np.array([[-2.0, 0.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.9, 0.0, 0.0]])
    p1 = np.array([[2.0, 0.0, 0.0], [2.0, 3.0, 0.0], [0.2, 0.0, 0.0], [0.9, 0.9, 0.0]])
    # crosses the ball (long) | outside | inside but short | touches inside, long
    assert edges_to_split(p0, p1, [z]).tolist() == [True, False, False, True]
    # coordinates in cm: the 0.2 cm edge is 2 mm long and now too long
    assert edges_to_split(p0 / 10, p1 / 10, [z], scale=10.0).tolist() == [True, False, False, True]
    assert edges_to_split(p0[2:3] * 10 / 10, p1[2:3] * 5, [z])[0]


def test_parse_zones_and_errors():
    zs = parse_zones(["1,2,3", "4 5 6"], [5.0], [1.0, 0.5])
    assert zs == [RefineZone((1, 2, 3), 5.0, 1.0), RefineZone((4, 5, 6), 5.0, 0.5)]
    assert parse_zones(None, None, None) == []
    for args, msg in (
        ((["1,2"], [1.0], [1.0]), "3 numbers"),
        ((["a,b,c"], [1.0], [1.0]), "numbers"),
        ((["1,2,3"], None, [1.0]), "--radius"),
        ((["1,2,3"], [1.0], None), "--size"),
        ((["1,2,3", "1,2,3"], [1.0, 2.0, 3.0], [1.0]), "--radius given 3 times"),
        ((["1,2,3"], [-1.0], [1.0]), "radius"),
        ((["1,2,3"], [1.0], [0.0]), "size"),
        ((None, [1.0], None), "--around"),
    ):
        with pytest.raises(ZoneError, match=msg):
            parse_zones(*args)


@pytest.mark.serial
def test_write_mesh_arrays_round_trip(tmp_path):
    m = read_msh(PHANTOM)
    out = tmp_path / "copy.msh"
    write_mesh_arrays(m, out)
    back = read_msh(out)
    assert back.regions == m.regions and back.boundaries == m.boundaries
    a, b = mesh_info(m), mesh_info(back)
    for k in ("cells", "vertices", "volumes_mm3", "boundary_areas_mm2", "min_dihedral_deg"):
        assert a[k] == b[k], k
    assert json.loads(json.dumps(b))  # JSON-ready
