"""Therapy layer end to end: config errors, dose timing, binding equilibrium, BBB, comparison.

MPI-safe (reduced values only); runs serially and under ``mpiexec -n 2``.
"""

from __future__ import annotations

import csv
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import split_box

from tumorpde.config import ConfigError, config_from_dict
from tumorpde.library.drugs import load_drug
from tumorpde.simulation import Simulation

BOX1 = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [1, 1, 1]}


def her2_case(**sections: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "name": "her2_therapy_test",
        "mesh": BOX1,
        "time": {"t_end": "10 day", "dt": "12 h"},
        "tumor": {
            "proliferation_rate": "0.1 1/day",
            "motility": "0.05 mm^2/day",
            "initial": {"kind": "uniform", "value": 0.5},
        },
        "pathways": {"HER2": {}},
        "therapy": {"treatments": [{"drug": "trastuzumab", "regimen": "q3w"}]},
        "output": {"picture": False},
    }
    case.update(sections)
    return case


def _owned(sim: Simulation, name: str) -> np.ndarray:
    f = sim.state.fields[name]
    return f.x.array[: f.function_space.dofmap.index_map.size_local]


def test_drug_on_inactive_pathway_is_a_config_error():
    case = her2_case(pathways={"EGFR": {}})
    with pytest.raises(ConfigError) as err:
        config_from_dict(case)
    ((path, msg),) = err.value.problems
    assert path == "therapy.treatments.0"
    assert "trastuzumab" in msg and "HER2" in msg and "not active" in msg
    case = her2_case(pathways={"HER2": {"enabled": False}, "EGFR": {}})
    with pytest.raises(ConfigError, match="targets pathway HER2"):
        config_from_dict(case)


def test_unknown_regimen_and_duplicate_drug_errors():
    case = her2_case()
    case["therapy"]["treatments"][0]["regimen"] = "daily"
    with pytest.raises(ConfigError, match="no regimen 'daily'"):
        config_from_dict(case)
    case = her2_case()
    case["therapy"]["treatments"] *= 2
    with pytest.raises(ConfigError, match="listed twice"):
        config_from_dict(case)


def test_doses_are_exact_step_breakpoints(comm):
    cfg = config_from_dict(her2_case(time={"t_end": "22 day", "dt": "2 day"}))
    sim = Simulation(cfg, comm)
    # q3w: 90-min loading infusion at 0 h, then 30-min infusions from 504 h (= 21 d)
    assert sim.breakpoints == pytest.approx([0.0, 1.5, 504.0, 504.5])
    times = [info.t for info in sim.steps()]
    for b in (1.5, 504.0, 504.5):
        assert any(abs(t - b) < 1e-9 for t in times), b
    # right after the second dose starts, plasma rises again
    q = sim.qoi_values()
    assert q["plasma_trastuzumab_nM"] > 0
    sim.solver.destroy()


def test_antibody_binding_quasi_equilibrium(comm):
    """B/(R+B) = a/(a + (k_off + k_int)/k_on), a = A/phi the free interstitial antibody."""
    cfg = config_from_dict(her2_case())
    sim = Simulation(cfg, comm)
    for _ in sim.steps():
        pass
    spec = load_drug("trastuzumab")
    b = spec.binding
    k_eff = (b.k_off + b.internalization) / b.k_on
    A, B, R = (_owned(sim, n) for n in ("trastuzumab", "trastuzumab_bound", "HER2"))
    occ_model = B / (R + B)
    a = A / spec.available_volume_fraction  # binding sees the free interstitial level
    occ_exact = a / (a + k_eff)
    assert A.min() > 1.0  # the antibody reached the tissue
    assert np.abs(occ_model - occ_exact).max() < 1e-3
    q = sim.qoi_values()
    assert q["trastuzumab_occupancy_tissue"] == pytest.approx(float(occ_exact.mean()), abs=1e-3)
    assert q["relative_HER2"] < 0.5  # free HER2 is depleted, its signal falls
    assert q["trastuzumab_tissue_auc_nMh"] > 0
    sim.solver.destroy()


def _drug_file(tmp: Path, clearance: float) -> Path:
    """Trastuzumab with fast local clearance and negligible diffusion (regions decouple)."""
    src = load_drug("trastuzumab").path
    assert src is not None
    text = src.read_text()
    data = tomllib.loads(text)
    for key, value in (("tissue_clearance", clearance), ("diffusivity", 1e-14)):
        unit = "1/h" if key == "tissue_clearance" else "cm^2/s"
        old = data[key]
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{key} ="))
        new = (
            f'{key} = {{ value = {value}, unit = "{unit}", source = "{old["source"]}", '
            f'confidence = "D", note = "test variant" }}'
        )
        text = text.replace(line, new)
    path = tmp / "trastuzumab_test.toml"
    path.write_text(text)
    return path


def test_blood_brain_barrier_lowers_exposure_by_the_configured_ratio(comm, shared_tmp):
    """Quasi-steady free drug A = a f_u C / (a r/phi + k), a = P S_v: brain vs normal vessels."""
    path = _drug_file(shared_tmp, clearance=5.0)
    case = her2_case(
        mesh=split_box((10.0, 1.0, 1.0), (10, 1, 1), "brain", "body", 5.0),
        tumor={
            "proliferation_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": 1e-12},
        },
        time={"t_end": "3 day", "dt": "6 h"},
        regions={
            "brain": {"vessels": {"barrier": "brain"}},
            "body": {"vessels": {"barrier": "normal"}},
        },
    )
    case["therapy"]["treatments"][0]["drug"] = str(path)
    cfg = config_from_dict(case)
    sim = Simulation(cfg, comm)
    for _ in sim.steps():
        pass
    spec = load_drug(path)
    x = sim.state.V.tabulate_dof_coordinates()[: sim.state.V.dofmap.index_map.size_local, 0]
    A = _owned(sim, spec.name)
    from mpi4py import MPI

    def mean(mask: np.ndarray) -> float:
        s = comm.allreduce(np.array([A[mask].sum(), mask.sum()], dtype=float), op=MPI.SUM)
        return s[0] / s[1]

    brain, body = mean(x < 3.5), mean(x > 6.5)
    sv, k, phi = cfg.vessels.surface_density, spec.tissue_clearance, spec.available_volume_fraction
    pm = spec.permeability
    a_b, a_n = pm.brain * sv, pm.normal * sv
    ratio = (a_b / (a_b * pm.brain_efflux_ratio / phi + k)) / (a_n / (a_n / phi + k))
    assert brain / body == pytest.approx(ratio, rel=0.01)
    # fast clearance: the exposure ratio is the configured permeability ratio
    assert brain / body == pytest.approx(pm.brain / pm.normal, rel=0.02)
    sim.solver.destroy()


def test_compare_runs_arms_and_writes_table(comm, shared_tmp):
    from tumorpde.studies.compare import default_arms, run_comparison

    case = her2_case(
        mesh={"kind": "box", "size": [4.0, 4.0, 4.0], "cells": [3, 3, 3]},
        time={"t_end": "6 day", "dt": "1 day"},
        pathways={"HER2": {}, "EGFR": {}},
    )
    case["therapy"]["treatments"].append({"drug": "lapatinib", "regimen": "daily_1250"})
    cfg = config_from_dict(case)
    arms = default_arms(cfg)
    assert arms == {
        "control": [],
        "trastuzumab": ["trastuzumab"],
        "lapatinib": ["lapatinib"],
        "trastuzumab+lapatinib": ["trastuzumab", "lapatinib"],
    }
    res = run_comparison(cfg, shared_tmp / "cmp", comm=comm)
    rows = {r["arm"]: r for r in res["rows"]}
    assert rows["control"]["burden_vs_control"] == pytest.approx(1.0)
    for arm in ("trastuzumab", "lapatinib", "trastuzumab+lapatinib"):
        assert rows[arm]["burden_vs_control"] < 1.0, arm
    # the combination blocks HER2 through two mechanisms: at least as effective as either
    combo = rows["trastuzumab+lapatinib"]["final_burden_mm3"]
    assert combo <= min(
        rows["trastuzumab"]["final_burden_mm3"], rows["lapatinib"]["final_burden_mm3"]
    )
    if comm.rank == 0:
        with open(res["files"]["csv"]) as f:
            table = list(csv.DictReader(f))
        assert [r["arm"] for r in table] == list(arms)
        assert "trastuzumab_tissue_auc_nMh" in table[1]
        assert Path(res["files"]["markdown"]).read_text().startswith("# her2_therapy_test")


def test_arm_case_of_a_comparison_reloads_without_its_arms():
    """An arm's resolved.toml loads again: it drops [compare], whose arms name other drugs."""
    import tomllib

    from tumorpde.output.rundir import resolved_toml
    from tumorpde.studies.compare import arm_config

    case = her2_case(
        mesh={"kind": "box", "size": [4.0, 4.0, 4.0], "cells": [3, 3, 3]},
        time={"t_end": "1 day", "dt": "1 day"},
        pathways={"HER2": {}, "EGFR": {}},
    )
    case["compare"] = {"arms": {"untreated": [], "trastuzumab": ["trastuzumab"]}}
    cfg = config_from_dict(case)
    arm = arm_config(cfg, [], "untreated")
    assert arm.compare is None and not arm.therapy.treatments
    again = config_from_dict(tomllib.loads(resolved_toml(arm)))
    assert again.name == arm.name and again.compare is None
