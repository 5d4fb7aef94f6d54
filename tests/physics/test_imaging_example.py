"""The imaging example end to end: NIfTI segmentation -> mesh -> ADC-seeded case -> run -> picture.

``examples/imaging``: the shipped images are what its script writes; ``mesh from-labels`` makes
a mesh with the tumor and tissue regions from them (serial: gmsh); the shipped case starts from
the ADC map sampled at the nodes through the oblique, flipped affine and runs (any rank count).
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math

import numpy as np
import pytest
from helpers import REPO

from tumorpde.cli import main

EXAMPLE = REPO / "examples" / "imaging"


def _make_data():
    spec = importlib.util.spec_from_file_location("make_data", EXAMPLE / "make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.serial
def test_shipped_images_and_mesh_come_from_the_script(tmp_path):
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("gmsh")
    mod = _make_data()
    labels, adc = mod.make(tmp_path)
    for new, shipped in ((labels, "labels.nii.gz"), (adc, "adc.nii.gz")):
        a, b = nib.load(str(new)), nib.load(str(EXAMPLE / shipped))
        assert np.array_equal(np.asarray(a.dataobj), np.asarray(b.dataobj))
        assert np.allclose(a.affine, b.affine)
    assert abs(np.linalg.det(mod.affine()[:3, :3]) + 1) < 1e-12  # flipped (det -1), 1 mm voxels
    msh = tmp_path / "lesion.msh"
    args = ["mesh", "from-labels", str(labels), "--labels", "1=tumor,2=tissue", "--size", "2"]
    assert main([*args, "-o", str(msh), "-q"]) == 0
    meta = json.loads(msh.with_suffix(".json").read_text())
    assert set(meta["regions"]) == {"tumor", "tissue"}
    ball = 4 / 3 * math.pi * mod.TUMOR_RADIUS**3
    assert meta["volumes_mm3"]["tumor"] == pytest.approx(ball, rel=0.1)


def test_the_example_case_starts_from_the_adc_map_and_runs(shared_tmp, comm, capsys):
    from tumorpde.meshing.imagefield import read_scalar_image
    from tumorpde.meshing.msh import read_msh

    out = shared_tmp / "run"
    sets = ["--set", "time.t_end='2 day'", "--set", "time.output_every='1 day'"]
    assert main(["run", str(EXAMPLE / "case.toml"), "-o", str(out), *sets]) == 0
    rows = list(csv.DictReader((out / "qoi.csv").open()))
    u0 = float(rows[0]["tumor_burden_mm3"])
    # the same initial mass from the mesh file and the image, without DOLFINx: the P1
    # integral of u = (ADC_w - ADC) / (ADC_w - ADC_min) sampled at the vertices
    m = read_msh(EXAMPLE / "lesion.msh")
    adc = read_scalar_image(EXAMPLE / "adc.nii.gz").sample(m.points.T, fill=3.0e-3)
    u = np.clip((3.0e-3 - adc) / (3.0e-3 - 0.6e-3), 0, 1)
    p = m.points[m.tets]
    vol = np.abs(np.linalg.det(p[:, 1:] - p[:, :1])) / 6
    assert u0 == pytest.approx(float((vol * u[m.tets].mean(axis=1)).sum()), rel=1e-6)
    # and close to the continuous lesion: mean of 0.9 (1 - d^2/R^2) over the ball is 0.36
    mod = _make_data()
    assert u0 == pytest.approx(0.36 * 4 / 3 * math.pi * mod.TUMOR_RADIUS**3, rel=0.1)
    assert float(rows[0]["max_tumor"]) > 0.8
    assert float(rows[-1]["tumor_burden_mm3"]) > u0  # it grows
    if comm.rank == 0:
        assert (out / "final.png").stat().st_size > 10_000
