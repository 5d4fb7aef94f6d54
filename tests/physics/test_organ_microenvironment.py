"""Oxygen, vessels and necrosis in the liver and bone organ cases (issue 14).

Checks that the liver and bone profiles' ``[oxygen.*]`` and VEGF entries load in internal units
(mm, h, mmHg, nM), and runs a small box version of each organ case (its own tables, with the
organ's region names, the seed moved to the box centre) for a few steps: the lesion's oxygen
drops below the host level, vessels start to regress there and hypoxic VEGF rises. All asserts
use MPI-reduced quantities (QoIs, global extrema), so the runs work at any process count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import REPO, split_box

from tumorpde.config import config_from_dict
from tumorpde.config.resolve import read_case_tables

CASES = REPO / "benchmarks" / "cases"

#: Host (tumor-free) oxygen tension O_b (mmHg), supply k_s (1/h) and free VEGF (nM) by organ:
#: the profile values (liver.toml, bone.toml) in internal units.
HOST = {
    "liver": {"blood": 40.0, "supply": 4000.0, "vegf": 0.002},
    "bone": {"blood": 20.0, "supply": 1000.0, "vegf": 0.002},
}
#: O2 diffusivity 1.75e-5 cm^2/s (Grote 1977) in mm^2/h.
D_O2 = 1.75e-5 * 100 * 3600


def _profile_case(organ: str) -> Any:
    """A minimal case on the organ profile with the modules switched on (no mesh is built)."""
    pathways: dict[str, Any] = {"VEGFR2": {"ligand": {"hypoxic_secretion": "0.15 nM/h"}}}
    extra: dict[str, Any] = {}
    mesh = {"kind": "box", "size": [4.0] * 3, "cells": [2] * 3, "default_region": "liver"}
    if organ == "bone":
        mesh = split_box((4.0, 4.0, 4.0), (2, 2, 2), "marrow", "cortical", 3.0)
        # the bone profile's per-region turnover/matrix entries need the [bone] module
        pathways["TGFBR"] = {}
        extra["bone"] = {"pathway": "TGFBR"}
    return config_from_dict(
        {
            "name": f"{organ}_profile_units",
            "organ": organ,
            "mesh": mesh,
            "time": {"t_end": 1.0, "dt": 1.0},
            "tumor": {
                "proliferation_rate": "0.02 1/day",
                "initial": {"kind": "uniform", "value": 0.1},
            },
            "pathways": pathways,
            "oxygen": {},
            "angiogenesis": {},
            "output": {"picture": False},
            **extra,
        }
    )


@pytest.mark.parametrize("organ", ["liver", "bone"])
def test_profile_oxygen_entries_in_internal_units(organ: str) -> None:
    """cm^2/s -> mm^2/h, 1/h and mmHg kept, nM/h and nM for VEGF; bone's cortical supply."""
    cfg = _profile_case(organ)
    host = HOST[organ]
    assert cfg.oxygen is not None
    assert cfg.oxygen.diffusivity == pytest.approx(D_O2, rel=1e-12)  # 6.3 mm^2/h
    assert cfg.oxygen.blood_level == pytest.approx(host["blood"], rel=1e-12)
    assert cfg.oxygen.supply_rate == pytest.approx(host["supply"], rel=1e-12)
    lig = cfg.pathways["VEGFR2"].ligand
    assert lig is not None
    assert lig.initial == pytest.approx(host["vegf"], rel=1e-12)
    # the profile's secretion holds the tumor-free VEGF at its initial value: s = k V_0
    assert lig.stromal_secretion == pytest.approx(lig.decay_rate * lig.initial, rel=0.01)
    # supply from the organ's own oxygen uptake: it sustains a packed lesion on host vessels
    assert cfg.oxygen.supply_rate * cfg.oxygen.blood_level > cfg.oxygen.consumption
    if organ == "bone":
        assert cfg.regions["cortical"]["oxygen.supply_rate"] == pytest.approx(150.0, rel=1e-12)
        assert cfg.regions["marrow"]["oxygen.supply_rate"] == pytest.approx(1000.0, rel=1e-12)


def _box_case(case_file: Path, mesh: dict[str, Any]) -> Any:
    """The organ case's own tables on a 12 mm box, seed at the centre, four 6 h steps."""
    tables = read_case_tables(case_file)
    tables["mesh"] = mesh
    seed = dict(tables["tumor"]["initial"])
    seed["center"] = [6.0, 6.0, 6.0]
    seed["peak"] = 1.0  # a packed seed: hypoxic from the first step
    tables["tumor"] = {**tables["tumor"], "initial": seed}
    tables["time"] = {
        **tables["time"],
        "t_end": "1 day",
        "dt": "6 h",
        "adaptive": False,
        "output_every": "1 day",
    }
    tables["output"] = {"picture": False}
    return config_from_dict(tables, base_dir=case_file.parent)


LIVER_BOX = {"kind": "box", "size": [12.0] * 3, "cells": [8] * 3, "default_region": "liver"}
BONE_BOX = split_box((12.0, 12.0, 12.0), (8, 8, 8), "marrow", "cortical", 10.5)


def local_balance(k_s: float, blood: float, m: float, consumption: float, km: float) -> float:
    """pO2 of a packed node (u = 1) where supply balances uptake: k_s m (O_b - O) = M O/(O + K)."""
    a, b = k_s * m, consumption
    # a (O_b - O)(O + K) = b O  ->  a O^2 + (a K - a O_b + b) O - a O_b K = 0
    qb = a * km - a * blood + b
    return (-qb + np.sqrt(qb * qb + 4 * a * a * blood * km)) / (2 * a)


@pytest.mark.parametrize(
    ("organ", "case_file", "mesh"),
    [
        ("liver", "crc_liver_metastasis.toml", LIVER_BOX),
        ("bone", "breast_bone_metastasis.toml", BONE_BOX),
    ],
)
def test_box_case_lesion_oxygen_follows_the_local_balance(
    comm, organ: str, case_file: str, mesh: dict
) -> None:
    """Packed seed: lesion pO2 drops to the supply/uptake balance, vessels regress, VEGF rises.

    The O2 diffusion length sqrt(D/k_s) (0.04-0.08 mm) is far below the mesh size, so the seed
    centre's pO2 is bracketed by the closed-form local balance of a packed node with the
    lesion's highest and lowest vessel density.
    """
    from mpi4py import MPI

    from tumorpde.simulation import Simulation

    cfg = _box_case(CASES / case_file, mesh)
    sim = Simulation(cfg, comm)
    steps = sum(1 for _ in sim.steps())
    q = sim.qois.evaluate()
    f = sim.state.fields
    n = f["oxygen"].function_space.dofmap.index_map.size_local

    def global_max(name: str) -> float:
        local = float(f[name].x.array[:n].max()) if n else -np.inf
        return float(comm.allreduce(local, op=MPI.MAX))

    o_max, vegf_max = global_max("oxygen"), global_max("VEGF")
    m_min = -global_max_neg(f["vessel_density"], n, comm)
    sim.solver.destroy()
    o2 = cfg.oxygen
    blood = HOST[organ]["blood"]
    k_s = HOST[organ]["supply"] if organ == "liver" else cfg.regions["marrow"]["oxygen.supply_rate"]
    assert steps == 4
    assert q["lesion_volume_mm3"] > 1.0
    hi = local_balance(k_s, blood, 1.0, o2.consumption, o2.consumption_half)
    lo = local_balance(k_s, blood, m_min, o2.consumption, o2.consumption_half)
    assert lo < hi < blood
    assert 0.95 * lo <= q["min_oxygen"] <= 1.05 * hi
    assert q["mean_oxygen_lesion_mmHg"] < blood
    assert o_max > 0.9 * blood
    # co-opted vessels regress inside the lesion (k_r u (1 - sigma) for a day)
    assert q["mean_vessel_density_lesion"] < 1.0
    assert m_min < 0.95
    # tumor (and, where hypoxic, hypoxia-driven) VEGF lifts free VEGF above its tumor-free level
    assert vegf_max > 2 * HOST[organ]["vegf"]


def global_max_neg(fn: Any, n: int, comm: Any) -> float:
    """max(-f) over the owned dofs of all ranks (the global minimum, negated)."""
    from mpi4py import MPI

    local = float((-fn.x.array[:n]).max()) if n else -np.inf
    return float(comm.allreduce(local, op=MPI.MAX))
