"""Meshing pipeline, mesh CLI and organ atlas (serially and under ``mpiexec -n 2``)."""

import ast
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from mpi4py import MPI

import numpy as np
import pytest
from helpers import REPO

from tumorpde.config import FileMesh
from tumorpde.fem.domain import load_domain
from tumorpde.meshing.labels import MeshingError, parse_labels, read_label_image

ATLAS = [p for p in sorted((REPO / "meshes").glob("*.json")) if p.stem != "brain_phantom"]

#: Two nested balls in a 40³ grid of 1 mm voxels: tumor r = 8 mm inside white r = 16 mm.
R_IN, R_OUT, N = 8.0, 16.0, 40
#: Mesh volumes vs the exact ball volumes (smoothing at 0.3 x size rounds the voxel steps).
VOLUME_RTOL = 0.05


def _balls() -> np.ndarray:
    x = np.arange(N) + 0.5 - N / 2
    r = np.sqrt(sum(c**2 for c in np.meshgrid(x, x, x, indexing="ij")))
    a = np.zeros((N, N, N), dtype=np.int16)
    a[r < R_OUT] = 2
    a[r < R_IN] = 1
    return a


def _on_rank0(fn):
    """Run ``fn`` on rank 0 only and share its result (or its exception) with every rank."""
    comm = MPI.COMM_WORLD
    res, err = None, None
    if comm.rank == 0:
        try:
            res = fn()
        except Exception as exc:  # re-raised on every rank below
            err = exc
    res, err = comm.bcast((res, err), root=0)
    if err is not None:
        raise err
    return res


@pytest.fixture(scope="module")
def balls_msh():
    comm = MPI.COMM_WORLD
    tmp = Path(comm.bcast(tempfile.mkdtemp(prefix="tumorpde-balls-") if comm.rank == 0 else None))

    def build():
        pytest.importorskip("skimage")
        pytest.importorskip("pyacvd")
        pytest.importorskip("pymeshfix")
        from tumorpde.meshing.labels import MeshParameters, labels_to_mesh

        np.save(tmp / "balls.npy", _balls())
        img = read_label_image(tmp / "balls.npy", spacing="1")
        labels_to_mesh(
            img, {1: "tumor", 2: "white"}, tmp / "balls.msh", params=MeshParameters(size=2.5)
        )
        return tmp / "balls.msh"

    yield _on_rank0(build)
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)


def test_import_is_cheap():
    code = (
        "import sys, tumorpde.meshing.labels, tumorpde.meshing.info, tumorpde.meshing.atlas, "
        "tumorpde.meshing.msh, tumorpde.cli.mesh; "
        "print([m for m in ('gmsh', 'skimage', 'scipy', 'pyacvd', 'pymeshfix', 'pyvista', "
        "'nilearn', 'nibabel', 'nrrd', 'meshio', 'dolfinx') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_meshing_imports_no_later_layer():
    """Every import in ``tumorpde/meshing`` (lazy ones too) is of the base layer or meshing."""
    allowed = ("tumorpde.meshing", "tumorpde.units", "tumorpde.errors", "tumorpde._version")
    allowed += ("tumorpde.progress",)
    bad = []
    for path in sorted((REPO / "tumorpde" / "meshing").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                mods = [node.module]
                if node.module == "tumorpde":  # only the version of the root package
                    mods = [] if {a.name for a in node.names} == {"__version__"} else ["tumorpde"]
            elif isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            else:
                continue
            bad += [
                f"{path.name}: {m}"
                for m in mods
                if (m == "tumorpde" or m.startswith("tumorpde.")) and not m.startswith(allowed)
            ]
            bad += [f"{path.name}: {m}" for m in mods if m.split(".")[0] == "dolfinx"]
    assert bad == []


@pytest.mark.parametrize(
    "meta_path", sorted((REPO / "meshes").glob("*.json")), ids=lambda p: p.stem
)
def test_physical_names_header_agrees_with_full_read(meta_path):
    from tumorpde.meshing.msh import read_msh, read_physical_names

    meta = json.loads(meta_path.read_text())
    names = read_physical_names(meta_path.with_suffix(".msh"))
    assert {g.name: g.tag for g in names if g.dim == 3} == meta["regions"]
    assert {g.name: g.tag for g in names if g.dim == 2} == meta["boundaries"]
    if meta_path.stem == "brain_phantom":  # one full read is enough (gmsh, a few seconds)
        m = read_msh(meta_path.with_suffix(".msh"))
        assert m.regions == meta["regions"] and m.boundaries == meta["boundaries"]
        assert m.tets.shape == (meta["cells"], 4) and m.tet_tags.shape == (meta["cells"],)


def test_read_msh_errors(tmp_path):
    from tumorpde.meshing.msh import read_msh, read_physical_names

    with pytest.raises(FileNotFoundError, match="no such mesh file"):
        read_msh(tmp_path / "nope.msh")
    bare = tmp_path / "bare.msh"
    bare.write_text("$MeshFormat\n4.1 0 8\n$EndMeshFormat\n$Entities\n0 0 0 0\n$EndEntities\n")
    assert read_physical_names(bare) == []


def test_parse_labels():
    assert parse_labels("1=tumor, 2=white,3=white") == {1: "tumor", 2: "white", 3: "white"}
    for bad, msg in (
        ("1=tumor,1=grey", "given twice"),
        ("x=tumor", "not an integer"),
        ("1", "not LABEL=NAME"),
        ("0=bg", "background"),
        ("2=white matter", "letters"),
        ("", "no labels"),
    ):
        with pytest.raises(MeshingError, match=msg):
            parse_labels(bad)


def test_read_label_image_errors(tmp_path):
    with pytest.raises(MeshingError, match="not found"):
        read_label_image(tmp_path / "missing.nii.gz")
    np.save(tmp_path / "a.npy", _balls())
    with pytest.raises(MeshingError, match="needs --spacing"):
        read_label_image(tmp_path / "a.npy")
    np.save(tmp_path / "zero.npy", np.zeros((4, 4, 4), dtype=np.uint8))
    with pytest.raises(MeshingError, match="no labels"):
        read_label_image(tmp_path / "zero.npy", spacing="1")
    (tmp_path / "x.stl").write_text("solid")
    with pytest.raises(MeshingError, match="unknown label-image format"):
        read_label_image(tmp_path / "x.stl")
    img = read_label_image(tmp_path / "a.npy", spacing="0.5,0.5,2")
    assert img.spacing.tolist() == [0.5, 0.5, 2.0]
    assert img.labels() == [1, 2]


def test_label_formats_agree(tmp_path):
    nib = pytest.importorskip("nibabel")
    nrrd = pytest.importorskip("nrrd")
    a = _balls()
    aff = np.diag([0.5, 0.5, 2.0, 1.0])
    nib.save(nib.Nifti1Image(a, aff), str(tmp_path / "a.nii.gz"))
    nrrd.write(
        str(tmp_path / "a.nrrd"),
        a,
        {"space directions": np.diag([0.5, 0.5, 2.0]), "space": "left-posterior-superior"},
    )
    for name in ("a.nii.gz", "a.nrrd"):
        img = read_label_image(tmp_path / name)
        assert np.array_equal(img.data, a)
        assert np.allclose(img.spacing, [0.5, 0.5, 2.0])


def test_unknown_label_is_reported(tmp_path):
    from tumorpde.meshing.labels import labels_to_mesh

    np.save(tmp_path / "a.npy", _balls())
    img = read_label_image(tmp_path / "a.npy", spacing="1")
    with pytest.raises(MeshingError, match=r"label 7 \(bone\) does not occur.*present: \[1, 2\]"):
        labels_to_mesh(img, {1: "tumor", 7: "bone"}, tmp_path / "x.msh")


def test_from_labels_recovers_volumes(balls_msh, comm):
    meta = json.loads(balls_msh.with_suffix(".json").read_text())
    exact = {"tumor": 4 / 3 * np.pi * R_IN**3, "white": 4 / 3 * np.pi * (R_OUT**3 - R_IN**3)}
    assert set(meta["regions"]) == {"tumor", "white"}
    assert meta["boundaries"] == {"outer": 10, "white_tumor_interface": 11}
    assert meta["slivers_below_5deg"] == 0
    dom = load_domain(FileMesh(kind="file", path=balls_msh), comm)  # 1 or 2 ranks
    vols = dom.region_volumes()
    for name, v in vols.items():
        assert v == pytest.approx(meta["volumes_mm3"][name], abs=0.06)  # JSON: 0.1 mm³
        assert v == pytest.approx(exact[name], rel=VOLUME_RTOL)
    c = (N - 1) / 2  # .npy: voxel (i, j, k) is centred at (i, j, k) * spacing
    assert dom.region_of_point([c, c, c]) == "tumor"
    assert dom.region_of_point([c + 12.0, c, c]) == "white"


@pytest.mark.serial
def test_cli_from_labels_import_and_info(tmp_path, capsys):
    pytest.importorskip("skimage")
    meshio = pytest.importorskip("meshio")
    from tumorpde.cli import main
    from tumorpde.meshing.msh import read_msh

    np.save(tmp_path / "b.npy", _balls())
    out = tmp_path / "b.msh"
    argv = [
        "mesh",
        "from-labels",
        str(tmp_path / "b.npy"),
        "--spacing",
        "1",
        "--size",
        "3",
        "--labels",
        "1=tumor,2=white",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    assert main(["mesh", "from-labels", str(tmp_path / "b.npy"), "--labels", "1=t"]) == 2
    assert "needs --spacing" in capsys.readouterr().err
    assert (
        main(
            [
                "mesh",
                "from-labels",
                str(tmp_path / "b.npy"),
                "--spacing",
                "1",
                "--labels",
                "1=t,9=x",
            ]
        )
        == 2
    )
    assert "label 9 (x) does not occur" in capsys.readouterr().err

    # meshio format (names lost: tags become region_<tag>) and .msh (names kept)
    m = read_msh(out)
    vtu = tmp_path / "b.vtu"
    meshio.write(
        vtu, meshio.Mesh(m.points, [("tetra", m.tets)], cell_data={"regions": [m.tet_tags]})
    )
    assert main(["mesh", "import", str(vtu), "--unit", "cm", "-o", str(tmp_path / "v.msh")]) == 0
    meta_v = json.loads((tmp_path / "v.json").read_text())
    meta_b = json.loads(out.with_suffix(".json").read_text())
    assert set(meta_v["regions"]) == {f"region_{t}" for t in m.regions.values()}
    assert meta_v["volumes_mm3"]["total"] == pytest.approx(
        1000 * meta_b["volumes_mm3"]["total"], rel=1e-5
    )
    assert main(["mesh", "import", str(out), "-o", str(tmp_path / "k.msh")]) == 0
    meta_k = json.loads((tmp_path / "k.json").read_text())
    assert meta_k["regions"] == meta_b["regions"]
    assert meta_k["boundaries"] == meta_b["boundaries"]
    assert meta_k["volumes_mm3"] == meta_b["volumes_mm3"]
    assert main(["mesh", "import", str(tmp_path / "nope.vtk")]) == 2

    capsys.readouterr()
    assert main(["mesh", "info", str(out), "--json", "--check"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cells"] == meta_b["cells"] and info["slivers"] == 0
    assert main(["mesh", "info", str(out), "--threshold", "89", "--check"]) == 1
    assert "below 89 deg" in capsys.readouterr().err


@pytest.mark.serial
def test_info_png(tmp_path, balls_msh):
    pytest.importorskip("pyvista")
    from tumorpde.cli import main

    png = tmp_path / "cut.png"
    assert main(["mesh", "info", str(balls_msh), "--png", str(png), "--axis", "x"]) == 0
    assert png.stat().st_size > 10_000


def test_atlas_errors(monkeypatch, tmp_path):
    from tumorpde.meshing import atlas

    with pytest.raises(MeshingError, match="unknown organ 'heart'"):
        atlas.build_organ("heart", out_dir=tmp_path)
    with pytest.raises(MeshingError, match="--resolution 'medium'"):
        atlas.build_organ("liver", "medium", out_dir=tmp_path)
    monkeypatch.setattr(atlas, "CGAL_DATA", tmp_path / "absent.tar.gz")
    with pytest.raises(MeshingError, match="apt-get install libcgal-demo"):
        atlas.build_organ("liver", out_dir=tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert atlas.default_cache_dir() == tmp_path / "tumorpde" / "meshes"


@pytest.mark.parametrize("meta_path", ATLAS, ids=[p.stem for p in ATLAS])
def test_atlas_mesh_metadata_and_seed(meta_path, comm):
    from tumorpde.meshing.info import mesh_info

    meta = json.loads(meta_path.read_text())
    for key in ("source", "license", "attribution", "generator", "build_time_s", "resolution"):
        assert key in meta, key
    assert meta["units"] == "mm" and meta["slivers_below_5deg"] == 0
    assert all(t < 10 for t in meta["regions"].values())
    assert all(t >= 10 for t in meta["boundaries"].values())
    assert not set(meta["regions"]) & set(meta["boundaries"])
    msh = meta_path.with_suffix(".msh")
    info = _on_rank0(lambda: mesh_info(msh))
    assert info["min_dihedral_deg"] == meta["min_dihedral_deg"] >= 5.0
    assert info["volumes_mm3"] == meta["volumes_mm3"]
    dom = load_domain(FileMesh(kind="file", path=msh), comm)
    assert dom.region_of_point(meta["seed_point_mm"]) == meta["seed_region"]


@pytest.mark.serial
def test_nifti_small_region_is_kept_or_reported(tmp_path, capsys):
    """A NIfTI segmentation end to end; a region too small for --size is an error, never dropped."""
    from tumorpde.cli import main

    nib = pytest.importorskip("nibabel")
    n = 40
    x, y, z = np.mgrid[:n, :n, :n] - n / 2 + 0.5
    r = np.sqrt(x**2 + y**2 + z**2)
    lab = np.zeros((n, n, n), np.uint8)
    lab[r < 16] = 2
    lab[r < 7] = 1  # tumor: 184 mm^3 at 0.5 mm voxels
    path = tmp_path / "seg.nii.gz"
    nib.save(nib.Nifti1Image(lab, np.diag([0.5, 0.5, 0.5, 1.0])), str(path))
    out = tmp_path / "seg.msh"
    assert (
        main(["mesh", "from-labels", str(path), "--labels", "1=tumor,2=white", "-o", str(out)]) == 0
    )
    meta = json.loads(out.with_suffix(".json").read_text())
    assert set(meta["regions"]) == {"tumor", "white"}
    exact = 4 / 3 * np.pi * 3.5**3
    assert meta["volumes_mm3"]["tumor"] == pytest.approx(exact, rel=0.2)
    capsys.readouterr()
    bad = tmp_path / "coarse.msh"
    args = ["mesh", "from-labels", str(path), "--labels", "1=tumor,2=white", "--size", "4"]
    assert main([*args, "-o", str(bad)]) == 2
    assert "region(s) ['tumor'] vanish at mesh size 4 mm" in capsys.readouterr().err
    assert not bad.exists()
