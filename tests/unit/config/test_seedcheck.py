"""Seed check kernels, seed schema and image sampling (numpy only, no MPI).

The quadrature that gives a seed's requested mass on a mesh file is checked against the
analytic box integral; the h the check asks for is checked to deliver the peak; image
sampling is checked in world coordinates through flipped and oblique affines.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import box_case
from pydantic import ValidationError

from tumorpde.config import CaseConfig, ConfigError, config_from_dict
from tumorpde.config.schema import GaussianSeed, ImageSeed, RegionSeed, UniformSeed
from tumorpde.config.seedcheck import (
    gaussian_mass_box,
    gaussian_mass_quadrature,
    needed_h,
    p1_mass_peak,
    seed_report,
    seed_sums,
)
from tumorpde.meshing.imagefield import ScalarImage, read_scalar_image
from tumorpde.meshing.labels import MeshingError

#: Six tetrahedra of a unit cube around its main diagonal, as corner bits (x + 2y + 4z).
_CUBE = np.array(
    [[0, 1, 3, 7], [0, 1, 5, 7], [0, 2, 3, 7], [0, 4, 5, 7], [0, 2, 6, 7], [0, 4, 6, 7]]
)


def _box_tets(size: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points and tetrahedra of the cube [0, size]^3 with n cells per edge."""
    ax = np.arange(n + 1)
    g = np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=-1).reshape(-1, 3)
    points = g * size / n
    c = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)
    base = (c[:, 0] * (n + 1) + c[:, 1]) * (n + 1) + c[:, 2]
    corner = np.array([((b & 1) * (n + 1) + ((b >> 1) & 1)) * (n + 1) + (b >> 2) for b in range(8)])
    return points, (base[:, None, None] + corner[_CUBE][None]).reshape(-1, 4)


def _seed(center, radius, peak=0.5) -> GaussianSeed:
    return GaussianSeed(kind="gaussian", center=tuple(center), radius=radius, peak=peak)


@pytest.mark.parametrize(
    ("center", "radius"),
    [((10, 10, 10), 0.5), ((10, 10, 10), 2.0), ((1, 2, 19.5), 2.0), ((0, 0, 0), 6.0)],
)
def test_quadrature_matches_the_analytic_box_integral(center, radius):
    points, tets = _box_tets(20.0, 4)  # 5 mm cells: coarse against the seed
    seed = _seed(center, radius)
    exact = gaussian_mass_box(seed, (20.0, 20.0, 20.0))
    assert gaussian_mass_quadrature(seed, points, tets) == pytest.approx(exact, rel=1e-5)
    # a seed fully inside holds peak pi^(3/2) r^3
    if min(center) > 5 * radius:
        assert exact == pytest.approx(0.5 * math.pi**1.5 * radius**3, rel=1e-9)


def test_p1_mass_of_a_linear_field_is_exact():
    points, tets = _box_tets(3.0, 3)
    mass, peak = p1_mass_peak(points, tets, 1.0 + points[:, 0])
    assert mass == pytest.approx(27.0 * 2.5, rel=1e-12)  # volume x mean of 1 + x
    assert peak == pytest.approx(4.0)


def test_the_needed_h_delivers_the_peak_and_twice_it_does_not():
    rng = np.random.default_rng(7)
    r, tol = 3.0, 0.1
    h = needed_h(r, tol)
    worst = {}
    for factor in (1.0, 3.0):
        n = math.ceil(30.0 * math.sqrt(3) / (factor * h))  # longest edge = cube diagonal
        points, tets = _box_tets(30.0, n)
        cells = points[tets]
        ratios = []
        for _ in range(10):
            seed = _seed(15.0 + rng.uniform(-2, 2, 3), r)
            sums = seed_sums(seed, cells, quadrature=False)
            exact = gaussian_mass_box(seed, (30.0, 30.0, 30.0))
            rep = seed_report("s", seed, sums, exact, h, tol)
            ratios.append(rep.peak_ratio)
            assert rep.h_local == h  # passed through
        worst[factor] = min(ratios)
    assert worst[1.0] >= 1 - tol
    assert worst[3.0] < 1 - tol


def test_seed_sums_far_from_the_cells():
    points, tets = _box_tets(4.0, 2)
    sums = seed_sums(_seed((50, 2, 2), 1.0), points[tets], quadrature=True)
    assert sums["mass"] == 0.0 and sums["requested"] == 0.0 and sums["gap"] == pytest.approx(46)


# ------------------------------------------------------------------------------- schema
def _cfg(initial, seeds=None) -> CaseConfig:
    case = box_case()
    if initial is None:
        del case["tumor"]["initial"]
    else:
        case["tumor"]["initial"] = initial
    if seeds is not None:
        case["tumor"]["seeds"] = seeds
    return config_from_dict(case)


def test_single_table_and_further_seeds():
    one = _cfg({"kind": "gaussian", "center": [2, 2, 2], "radius": "1 mm"})
    assert isinstance(one.tumor.initial, GaussianSeed)
    assert [w for w, _ in one.tumor.seed_list()] == ["tumor.initial"]
    more = [{"kind": "uniform", "value": 0.01}, {"kind": "region", "region": "tissue"}]
    many = _cfg({"kind": "gaussian", "center": [1, 1, 1], "radius": 1.0}, more)
    assert [type(s) for _, s in many.tumor.seed_list()] == [GaussianSeed, UniformSeed, RegionSeed]
    assert [w for w, _ in many.tumor.seed_list()] == [
        "tumor.initial",
        "tumor.seeds.0",
        "tumor.seeds.1",
    ]
    assert many.tumor.initial_tolerance == 0.1 and not many.tumor.allow_coarse_seed


@pytest.mark.parametrize(
    ("initial", "seeds", "fragment"),
    [
        (None, None, "tumor.initial: required field is missing"),
        (
            {"kind": "uniform", "value": 0},
            [{"kind": "gaussian", "center": [9, 2, 2], "radius": 1}],
            "tumor.seeds.0.center",
        ),
        (
            {"kind": "uniform", "value": 0},
            [{"kind": "cube"}],
            "'gaussian', 'uniform', 'region', 'image'",
        ),
        ({"kind": "image", "path": "nope.nii.gz"}, None, "does not exist"),
        ({"kind": "image", "path": "x.png"}, None, "must be NIfTI"),
        ({"kind": "region", "region": "tissue", "value": 1.5}, None, "less than or equal to 1"),
        ({"kind": "gaussian", "center": [2, 2, 2]}, None, "radius: required field is missing"),
    ],
)
def test_bad_seeds_are_named(initial, seeds, fragment):
    with pytest.raises(ConfigError) as info:
        _cfg(initial, seeds)
    assert fragment in str(info.value)


def test_adc_conversion_needs_both_levels(tmp_path):
    img = tmp_path / "adc.nii"
    img.write_bytes(b"")
    base = {"kind": "image", "path": str(img), "conversion": "adc"}
    with pytest.raises(ValidationError, match="needs adc_water and adc_min"):
        ImageSeed.model_validate(base)
    with pytest.raises(ValidationError, match="must be below adc_water"):
        ImageSeed.model_validate({**base, "adc_water": 1e-3, "adc_min": 2e-3})
    with pytest.raises(ValidationError, match="need conversion = 'adc'"):
        ImageSeed.model_validate({"kind": "image", "path": str(img), "adc_water": 3e-3})


# ------------------------------------------------------------------------------- images
def _oblique_flipped() -> np.ndarray:
    """A voxel-to-world affine with i flipped, turned 30 deg about z and 15 deg about y."""
    az, ay = math.radians(30), math.radians(15)
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    a = np.eye(4)
    a[:3, :3] = rz @ ry @ np.diag([-0.8, 1.0, 1.25])
    a[:3, 3] = [12.0, -3.0, 4.0]
    return a


def _linear_image(aff: np.ndarray, shape=(12, 10, 9)) -> tuple[np.ndarray, np.ndarray]:
    """Voxel values of f(x) = 0.3 + 0.01 x - 0.02 y + 0.015 z at the voxel centres."""
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    x = ijk @ aff[:3, :3].T + aff[:3, 3]
    coef = np.array([0.01, -0.02, 0.015])
    return 0.3 + x @ coef, coef


def test_trilinear_sampling_in_world_coordinates():
    aff = _oblique_flipped()
    data, coef = _linear_image(aff)
    img = ScalarImage(data, aff)
    # points inside the image: voxel coordinates in (0, n-1), mapped to world
    rng = np.random.default_rng(3)
    ijk = rng.uniform(0, 1, (3, 200)) * (np.array(data.shape) - 1)[:, None]
    x = aff[:3, :3] @ ijk + aff[:3, 3:4]
    assert np.allclose(img.sample(x), 0.3 + coef @ x, atol=1e-12)  # trilinear is exact
    # outside (beyond the last voxel centre along the flipped axis) -> fill
    out = aff[:3, :3] @ np.array([[-0.5], [2.0], [2.0]]) + aff[:3, 3:4]
    assert img.sample(out, fill=-7.0)[0] == -7.0


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_read_scalar_image_keeps_the_affine(tmp_path, suffix):
    nib = pytest.importorskip("nibabel")
    nrrd = pytest.importorskip("nrrd")
    aff = _oblique_flipped()
    data, coef = _linear_image(aff)
    path = tmp_path / f"map{suffix}"
    if suffix == ".nrrd":
        hdr = {
            "space": "right-anterior-superior",
            "space directions": aff[:3, :3].T,
            "space origin": aff[:3, 3],
        }
        nrrd.write(str(path), data.astype(np.float64), hdr)
    else:
        im = nib.Nifti1Image(data.astype(np.float32), aff)
        im.header.set_xyzt_units("mm")
        nib.save(im, str(path))
    img = read_scalar_image(path)
    assert np.allclose(img.affine, aff, atol=1e-6)
    x = aff[:3, :3] @ np.array([[2.5], [3.25], [4.75]]) + aff[:3, 3:4]
    assert img.sample(x)[0] == pytest.approx(0.3 + coef @ x[:, 0], abs=1e-6)


def test_bad_images_are_named(tmp_path):
    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    with pytest.raises(MeshingError, match=r"broken\.nii\.gz: cannot read the image"):
        read_scalar_image(bad)
    with pytest.raises(MeshingError, match="image not found"):
        read_scalar_image(tmp_path / "none.nii")


def test_mesh_problems_name_unknown_regions_and_unreadable_images(tmp_path):
    from tumorpde.config.meshcheck import mesh_problems

    bad = tmp_path / "broken.nii.gz"
    bad.write_bytes(b"not an image")
    case = box_case()
    case["tumor"]["initial"] = {"kind": "region", "region": "lesion"}
    case["tumor"]["seeds"] = [{"kind": "image", "path": str(bad)}]
    case["initial"] = {"fields": {"EGF": {"region": "core", "value": "1 nM"}}}
    problems = dict(mesh_problems(config_from_dict(case))[0])
    assert problems["tumor.initial.region"].startswith("'lesion' is not a region of the mesh")
    assert "cannot read the image" in problems["tumor.seeds.0.path"]
    assert problems["initial.fields.EGF.region"].startswith("'core' is not a region")
