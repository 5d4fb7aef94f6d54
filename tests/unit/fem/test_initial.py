"""Initial conditions on the mesh: Gaussian seeds against the seed check, regions, images.

Every assertion is on MPI-reduced quantities, so the tests run at any process count.
"""

from __future__ import annotations

import math

from mpi4py import MPI

import numpy as np
import pytest
import ufl
from dolfinx import fem
from helpers import box_case, split_box

from tumorpde.config import config_from_dict
from tumorpde.config.seedcheck import gaussian_mass_box
from tumorpde.fem.domain import load_domain
from tumorpde.fem.seeds import seed_reports
from tumorpde.fem.state import create_state
from tumorpde.model import build_model


def _state(comm, initial, mesh=None, seeds=None):
    case = box_case()
    case["tumor"]["initial"] = initial
    if seeds is not None:
        case["tumor"]["seeds"] = seeds
    case.pop("ligand", None)
    case.pop("receptor", None)
    case["tumor"].pop("chemotaxis", None)
    if mesh is not None:
        case["mesh"] = mesh
    cfg = config_from_dict(case)
    domain = load_domain(cfg.mesh, comm)
    return cfg, domain, create_state(build_model(cfg), domain)


def _integral(comm, f) -> float:
    return comm.allreduce(fem.assemble_scalar(fem.form(f * ufl.dx)), op=MPI.SUM)


def _max(comm, f) -> float:
    n = f.function_space.dofmap.index_map.size_local
    return comm.allreduce(float(f.x.array[:n].max(initial=-np.inf)), op=MPI.MAX)


@pytest.mark.parametrize("cells", [4, 12])
def test_seed_report_is_what_the_state_starts_from(comm, cells):
    mesh = {"kind": "box", "size": [4.0, 4.0, 4.0], "cells": [cells] * 3}
    seed = {"kind": "gaussian", "center": [1.9, 2.3, 2.05], "radius": 0.8, "peak": 0.6}
    cfg, domain, state = _state(comm, seed, mesh)
    (rep,) = seed_reports(cfg, domain)
    u = state.fields["tumor"]
    assert rep.delivered_mass == pytest.approx(_integral(comm, u), rel=1e-12)
    assert rep.delivered_peak == pytest.approx(_max(comm, u), rel=1e-12)
    seed_cfg = cfg.tumor.initial
    assert rep.requested_mass == pytest.approx(gaussian_mass_box(seed_cfg, (4.0, 4.0, 4.0)))
    assert rep.requested_mass < 0.6 * math.pi**1.5 * 0.8**3  # 1.7 mm from a face: cut off
    assert rep.h_local == pytest.approx(4.0 / cells * math.sqrt(3))
    # 1 mm cells carry a 0.8 mm seed badly, 1/3 mm cells well
    assert rep.ok(0.1) == (cells == 12)


def test_region_seed_holds_value_times_region_volume(comm):
    mesh = split_box((4.0, 2.0, 2.0), (8, 4, 4), "normal", "lesion", 2.5)
    _, _, state = _state(comm, {"kind": "region", "region": "lesion", "value": 0.7}, mesh)
    u = state.fields["tumor"]
    assert _integral(comm, u) == pytest.approx(0.7 * 1.5 * 2 * 2, rel=1e-12)
    x = state.V.tabulate_dof_coordinates()[:, 0]
    n = state.V.dofmap.index_map.size_local
    inside = comm.allreduce(bool(np.all(np.isclose(u.x.array[:n][x[:n] > 2.6], 0.7))), MPI.LAND)
    outside = comm.allreduce(bool(np.all(u.x.array[:n][x[:n] < 2.4] == 0.0)), MPI.LAND)
    assert inside and outside
    assert _max(comm, u) == pytest.approx(0.7)


def test_several_seeds_are_summed_and_capped(comm):
    seeds = [{"kind": "gaussian", "center": [2.0, 2.0, 2.0], "radius": 1.0, "peak": 1.0}]
    cfg, domain, state = _state(comm, {"kind": "uniform", "value": 0.2}, seeds=seeds)
    u = state.fields["tumor"]
    assert _max(comm, u) == pytest.approx(1.0)  # 0.2 + 1.0 capped
    n = state.V.dofmap.index_map.size_local
    low = comm.allreduce(float(u.x.array[:n].min(initial=np.inf)), op=MPI.MIN)
    assert low == pytest.approx(0.2, abs=1e-3)  # far corners: the background only
    reports = seed_reports(cfg, domain)
    assert [r.field for r in reports] == ["tumor.seeds.0"]


def test_image_seed_is_sampled_in_world_coordinates(comm, shared_tmp):
    """An oblique, flipped NIfTI of a linear map: the nodes get the map at their position."""
    nib = pytest.importorskip("nibabel")
    az = math.radians(25)
    aff = np.eye(4)
    aff[:3, :3] = np.array(
        [[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]]
    ) @ np.diag([-0.5, 0.5, -0.4])  # i and k flipped, turned about z
    # the voxel grid covers part of the 4 mm box: nodes inside and outside it
    shape = (40, 40, 20)
    corner = np.array([3.4, -1.2, 2.6])
    aff[:3, 3] = corner
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = ijk @ aff[:3, :3].T + aff[:3, 3]
    coef = np.array([0.05, 0.08, -0.03])
    data = (0.2 + world @ coef).astype(np.float64)
    path = shared_tmp / "map.nii.gz"
    if comm.rank == 0:
        nib.save(nib.Nifti1Image(data, aff), str(path))
    comm.barrier()
    seed = {"kind": "image", "path": str(path), "scale": 2.0, "fill": 0.05}
    _, _, state = _state(comm, seed)
    u = state.fields["tumor"]
    x = state.V.tabulate_dof_coordinates()
    n = state.V.dofmap.index_map.size_local
    v = np.linalg.solve(aff[:3, :3], (x[:n] - aff[:3, 3]).T)  # voxel coordinates of the nodes
    inside = np.all((v >= 0) & (v <= (np.array(shape) - 1)[:, None]), axis=0)
    expect = np.where(inside, np.clip(2.0 * (0.2 + x[:n] @ coef), 0, 1), 0.05)
    err = comm.allreduce(float(np.abs(u.x.array[:n] - expect).max(initial=0)), op=MPI.MAX)
    n_in = comm.allreduce(int(inside.sum()), op=MPI.SUM)
    n_out = comm.allreduce(int((~inside).sum()), op=MPI.SUM)
    assert err < 1e-6  # NIfTI stores the affine in float32
    assert n_in > 20 and n_out > 20  # both kinds of node are tested (125 nodes)


def _ligand_state(comm, fields, mesh=None):
    case = box_case()
    case["initial"] = {"fields": fields}
    if mesh is not None:
        case["mesh"] = mesh
    cfg = config_from_dict(case)
    domain = load_domain(cfg.mesh, comm)
    return create_state(build_model(cfg), domain)


def test_initial_fields_preload_a_ligand_uniform_or_in_a_region(comm):
    state = _ligand_state(comm, {"EGF": "2 nM"})
    egf = state.fields["EGF"]
    assert _max(comm, egf) == pytest.approx(2.0)
    assert _integral(comm, egf) == pytest.approx(2.0 * 4**3, rel=1e-12)
    mesh = split_box((4.0, 2.0, 2.0), (8, 4, 4), "normal", "lesion", 2.5)
    state = _ligand_state(comm, {"EGF": {"region": "lesion", "value": "3e-3 uM"}}, mesh)
    assert _integral(comm, state.fields["EGF"]) == pytest.approx(3.0 * 1.5 * 4, rel=1e-12)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"EFG": "1 nM"}, "initial.fields.EFG: unknown species 'EFG'; species of this case: EGF"),
        ({"EGF": "1 mm"}, "initial.fields.EGF: "),
        ({"tumor": 0.1}, "initial.fields.tumor: the tumor starts from [tumor.initial]"),
    ],
)
def test_initial_fields_are_checked_before_compute(fields, fragment):
    from tumorpde.config import ConfigError

    case = box_case()
    case["initial"] = {"fields": fields}
    with pytest.raises(ConfigError) as info:
        build_model(config_from_dict(case))
    assert fragment in str(info.value)
