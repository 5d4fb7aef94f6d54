"""Size fields at build time: ``mesh from-labels --refine-around`` and the lung atlas recipe."""

import json

import numpy as np
import pytest

from tumorpde.cli import main
from tumorpde.meshing.info import mesh_info
from tumorpde.meshing.msh import read_msh

#: Nested balls in a 32³ grid of 1 mm voxels: tumor r = 5 mm inside white r = 13 mm.
N, R_IN, R_OUT = 32, 5.0, 13.0


def _balls() -> np.ndarray:
    x = np.arange(N) + 0.5 - N / 2
    r = np.sqrt(sum(c**2 for c in np.meshgrid(x, x, x, indexing="ij")))
    a = np.zeros((N, N, N), dtype=np.int16)
    a[r < R_OUT] = 2
    a[r < R_IN] = 1
    return a


def _edges_near(path, center, radius):
    m = read_msh(path)
    e = np.concatenate([m.tets[:, [i, j]] for i in range(4) for j in range(i + 1, 4)])
    p0, p1 = m.points[e[:, 0]], m.points[e[:, 1]]
    near = np.linalg.norm(0.5 * (p0 + p1) - np.asarray(center), axis=1) < radius
    return np.linalg.norm(p1 - p0, axis=1)[near]


@pytest.mark.serial
def test_from_labels_refine_around(tmp_path):
    pytest.importorskip("skimage")
    pytest.importorskip("pyacvd")
    pytest.importorskip("pymeshfix")
    np.save(tmp_path / "b.npy", _balls())
    base = ["mesh", "from-labels", str(tmp_path / "b.npy"), "--spacing", "1", "--size", "3"]
    base += ["--labels", "1=tumor,2=white"]
    plain, fine = tmp_path / "plain.msh", tmp_path / "fine.msh"
    assert main([*base, "-o", str(plain)]) == 0
    # the ball centre in image coordinates: voxel centres start at 0.5 mm
    centre = [N / 2] * 3
    zone = ["--refine-around", ",".join(map(str, centre)), "--refine-radius", "4"]
    assert main([*base, *zone, "--refine-size", "1", "-o", str(fine)]) == 0
    a, b = mesh_info(plain), mesh_info(fine)
    assert b["cells"] > 1.3 * a["cells"]
    # the surfaces are the same: region volumes agree to rounding
    for name, v in a["volumes_mm3"].items():
        assert b["volumes_mm3"][name] == pytest.approx(v, abs=0.2), name
    assert b["slivers"] == 0
    assert np.median(_edges_near(fine, centre, 3.0)) < 0.6 * np.median(
        _edges_near(plain, centre, 3.0)
    )
    meta = json.loads(fine.with_suffix(".json").read_text())
    zones = meta["generator"]["parameters"]["refine"]
    assert zones == [{"center": centre, "radius": 4.0, "size": 1.0}]


@pytest.mark.serial
def test_zone_options_errors(tmp_path, capsys):
    np.save(tmp_path / "b.npy", _balls())
    argv = ["mesh", "from-labels", str(tmp_path / "b.npy"), "--spacing", "1"]
    argv += [
        "--labels",
        "1=tumor,2=white",
        "--refine-around",
        "1,2,3",
        "-o",
        str(tmp_path / "x.msh"),
    ]
    assert main(argv) == 2
    assert "--refine-radius" in capsys.readouterr().err
    assert not (tmp_path / "x.msh").exists()
    assert main(["mesh", "build", "lung", "--refine-radius", "3", "--out", str(tmp_path)]) == 2
    assert "--refine-around" in capsys.readouterr().err


@pytest.mark.serial
def test_lung_recipe_size_field(tmp_path):
    from tumorpde.meshing.atlas import build_organ
    from tumorpde.meshing.zones import RefineZone

    zone = RefineZone((121.4, -19.6, 184.6), 12.0, 4.0)
    meta = build_organ("lung", out_dir=tmp_path, size=30.0, refine=[zone])
    out = tmp_path / "lung_refined.msh"
    assert meta["generator"]["parameters"]["refine"][0]["size"] == 4.0
    plain = build_organ("lung", out_dir=tmp_path, size=30.0)
    assert meta["cells"] > plain["cells"]
    assert np.median(_edges_near(out, zone.center, 8.0)) < 8.0
    assert np.median(_edges_near(tmp_path / "lung.msh", zone.center, 8.0)) > 10.0
    assert meta["slivers_below_5deg"] == 0
