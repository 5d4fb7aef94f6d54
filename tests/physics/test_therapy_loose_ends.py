"""Therapy loose ends: ADCC with kill_max = 0, organ lymph drainage, blood-tumor barriers.

- a receptor antibody with ``response.kill_max = 0`` runs (no kill) instead of crashing, and
  Hill exponents below 1 are rejected on load (they make Newton fail at zero drug);
- the organ profiles' interstitial clearance (lymph; brain ISF bulk flow) sets the steady
  free-IgG interstitial-to-plasma ratio ``PS/(PS + Q)`` per organ;
- every shipped drug carries blood-tumor-barrier values, and a brain case rejects a drug
  without them.

MPI-safe (reduced values only); runs serially and under ``mpiexec -n 2``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tumorpde import library
from tumorpde.config import ConfigError, config_from_dict
from tumorpde.library.drugs import DrugError, available_drugs, drug_from_dict, load_drug
from tumorpde.model.drug import Drug
from tumorpde.simulation import Simulation

BOX1 = {"kind": "box", "size": [1.0, 1.0, 1.0], "cells": [1, 1, 1]}


def case(drug: str, u0: float = 0.0, **sections: Any) -> dict[str, Any]:
    """A well-mixed one-cell box with HER2 and EGFR and one trastuzumab-like treatment."""
    out: dict[str, Any] = {
        "name": "loose_ends",
        "mesh": BOX1,
        "time": {"t_end": "1 day", "dt": "6 h"},
        "tumor": {
            "proliferation_rate": 0.0,
            "death_rate": 0.0,
            "motility": 0.0,
            "initial": {"kind": "uniform", "value": u0},
        },
        "pathways": {"HER2": {}, "EGFR": {}},
        "therapy": {"treatments": [{"drug": drug, "regimen": "q3w"}], "lesion_leakiness": 0.0},
        "output": {"picture": False},
    }
    out.update(sections)
    return out


def _variant(path: Path, kill_max_per_day: float, hill: float = 2.0) -> Path:
    """Trastuzumab with ``response.kill_max`` and ``response.hill`` replaced (written to path)."""
    src = load_drug("trastuzumab").path
    assert src is not None
    out = []
    for line in src.read_text().splitlines():
        if line.startswith("kill_max ="):
            line = (
                f'kill_max = {{ value = {kill_max_per_day!r}, unit = "1/day", '
                'source = "test", confidence = "M" }'
            )
        elif line.startswith("hill ="):
            line = f'hill = {{ value = {hill!r}, unit = "1", source = "test", confidence = "M" }}'
        out.append(line)
    path.write_text("\n".join(out) + "\n")
    return path


def _write_on_root(comm: Any, path: Path, write: Any) -> Path:
    if comm.rank == 0:
        write(path)
    comm.barrier()
    return path


def _run(cfg: Any, comm: Any) -> dict[str, float]:
    sim = Simulation(cfg, comm)
    for _ in sim.steps():
        pass
    qoi = sim.qoi_values()
    sim.solver.destroy()
    return qoi


# ------------------------------------------------------------------ 1. ADCC with kill_max = 0
def test_zero_adcc_kill_max_runs_and_kills_nothing(comm, shared_tmp):
    """kill_max = 0 used to crash (UFL folded 0 * Hill into a mesh-less zero kill rate)."""
    u0 = 0.5
    burden, kill = {}, {}
    for k in (0.0, 0.5):
        path = shared_tmp / f"trastuzumab_kill{k}.toml"
        _write_on_root(comm, path, lambda p, k=k: _variant(p, k))
        c = case(str(path), u0=u0)
        c["therapy"]["effector_factor"] = 1.0  # ADCC on (as in peripheral tissue)
        qoi = _run(config_from_dict(c), comm)
        burden[k], kill[k] = qoi["tumor_burden_mm3"], qoi["mean_kill_rate"]
    assert kill[0.0] == 0.0
    assert burden[0.0] == pytest.approx(u0, rel=1e-9)  # no growth, no death, no kill
    assert kill[0.5] > 0.0 and burden[0.5] < u0 * (1 - 1e-3)  # the same set-up can kill


def test_hill_exponent_below_one_is_rejected_on_load():
    """x^h with h < 1 has an infinite slope at x = 0, where every run starts (Newton fails)."""
    tra = tomllib.loads(load_drug("trastuzumab").path.read_text())  # type: ignore[union-attr]
    tra["response"]["hill"]["value"] = 0.5
    with pytest.raises(DrugError, match=r"response\.hill: .*Hill exponent must be >= 1"):
        drug_from_dict(tra, source="trastuzumab_h05")
    tra["response"]["hill"]["value"] = 1.0
    assert drug_from_dict(tra).response.hill == 1.0  # type: ignore[union-attr]
    lap = tomllib.loads(load_drug("lapatinib").path.read_text())  # type: ignore[union-attr]
    lap["potency"]["HER2"]["hill"]["value"] = 0.8
    with pytest.raises(DrugError, match=r"potency\.HER2\.hill: .*got 0\.8"):
        drug_from_dict(lap, source="lapatinib_h08")


# ---------------------------------------------------- 2. organ lymph (interstitial clearance)
def organ_ratio(organ: str) -> tuple[float, float, float]:
    """PS, Q (1/h) and the steady free-IgG ISF/plasma ratio PS/(PS + Q) of an organ profile."""
    extra: dict[str, Any] = {}
    if organ == "bone":  # the bone profile's per-region module values need the module
        extra = {"bone": {}, "pathways": {"HER2": {}, "EGFR": {}, "TGFBR": {}}}
    cfg = config_from_dict(case("trastuzumab", organ=organ, **extra))
    drug = Drug(cfg, cfg.therapy.treatments[0])  # type: ignore[union-attr]
    f = {fld.key.split(".")[-1]: fld.default for fld in drug.cell_fields()}
    return f["PS"], f["Q"], f["PS"] / (f["PS"] + f["Q"])


def test_organ_lymph_sets_the_igg_isf_to_plasma_ratio():
    """The profiles' Q reach the model; print PS/(PS + Q) per organ for trastuzumab."""
    perm = load_drug("trastuzumab").permeability
    ratios = {}
    for organ in ("brain", "liver", "lung", "bone"):
        profile = library.load("organs", organ)
        ps, q, ratios[organ] = organ_ratio(organ)
        v = profile["vessels"]
        assert q == pytest.approx(v["interstitial_clearance"]["value"])  # given in 1/h
        s_v = v["surface_density"]["value"] / 10.0  # 1/cm -> 1/mm
        assert ps == pytest.approx(perm.by_class()[v["barrier"]] * s_v)
        print(f"{organ}: PS = {ps:.3g} /h, Q = {q:.3g} /h, PS/(PS + Q) = {ratios[organ]:.3g}")
    assert ratios["brain"] < 0.01  # BBB: CSF:serum ~1:420 (Stemmler 2007)
    assert 0.9 < ratios["liver"] < 1.0  # sinusoids pass IgG faster than lymph drains it
    assert 0.2 < ratios["lung"] < 0.5  # continuous capillaries: lymph matters
    assert ratios["bone"] == 1.0  # no lymphatics in bone (Edwards 2008)


def test_lung_lymph_lowers_free_igg_to_the_closed_form(comm):
    """Run: free ISF / unbound plasma in lung tissue -> PS/(PS + Q) (plus a small lag)."""
    exact = organ_ratio("lung")[2]
    c = case("trastuzumab", organ="lung", time={"t_end": "20 day", "dt": "12 h"})
    qoi = _run(config_from_dict(c), comm)
    spec = load_drug("trastuzumab")
    a = qoi["trastuzumab_mean_nM"] / spec.available_volume_fraction
    cp = qoi["plasma_trastuzumab_nM"] * spec.plasma_unbound_fraction
    # relaxation rate (PS + Q)/phi ~ 0.046/h against a terminal plasma decline ~0.0016/h:
    # the ISF lags the falling plasma by a few percent (ratio high by lambda/(lambda - k))
    assert a / cp == pytest.approx(exact, rel=0.06)
    assert a / cp < 0.6  # far below the no-lymph value 1: the term acts
    print(f"lung: simulated {a / cp:.4f}, closed form {exact:.4f}")


# ------------------------------------------------------------------ 3. blood-tumor barrier
def test_every_shipped_drug_has_blood_tumor_barrier_values():
    tra = load_drug("trastuzumab").permeability
    for name in available_drugs():
        spec = load_drug(name)
        perm = spec.permeability
        assert perm.btb is not None, name
        p, r = perm.lesion_btb(0.0)
        assert perm.brain < p <= perm.tumor, name  # leakier than the BBB, not than periphery
        assert 1.0 <= r <= perm.brain_efflux_ratio, name  # efflux at most the BBB's
        if spec.molecular_weight > 1e5:  # IgGs: the trastuzumab values (same class)
            assert (perm.btb, perm.btb_spread) == (tra.btb, tra.btb_spread), name
            assert r == 1.0, name
    criz = load_drug("crizotinib").permeability
    lap = load_drug("lapatinib").permeability
    # crizotinib: the lesion/normal-brain factor of lapatinib (Taskar 2012) on its own BBB ratio
    assert criz.brain_efflux_ratio / criz.btb_efflux_ratio == pytest.approx(
        lap.brain_efflux_ratio / lap.btb_efflux_ratio, rel=0.05
    )


def test_brain_case_rejects_a_drug_without_blood_tumor_barrier(tmp_path):
    src = load_drug("trastuzumab").path
    assert src is not None
    path = tmp_path / "igg_no_btb.toml"
    path.write_text(
        "\n".join(ln for ln in src.read_text().splitlines() if not ln.startswith("btb"))
    )
    assert load_drug(path).permeability.btb is None  # the file itself is valid
    config_from_dict(case(str(path), vessels={"barrier": "normal"}))  # fine outside brain
    for where in (
        {"vessels": {"barrier": "brain"}},
        {"regions": {"tissue": {"vessels": {"barrier": "brain"}}}},
    ):
        with pytest.raises(ConfigError) as info:
            config_from_dict(case(str(path), **where))
        problems = dict(info.value.problems)
        assert "permeability.btb" in problems["therapy.treatments.0.drug"]


# ------------------------------------------------------------ 4. adaptive step error estimate
class _Arr:
    def __init__(self, v: float) -> None:
        self.x = type("X", (), {"array": np.array([v])})()


class _FakeComm:
    def allreduce(self, x: Any, op: Any = None) -> Any:
        return x


def _fake_state(t: float, w1: float, w0: float, w: float, hist: list[float]) -> Any:
    imap = type("IM", (), {"size_local": 1})()
    V = type("V", (), {"dofmap": type("DM", (), {"index_map": imap})()})()
    sp = type("Sp", (), {"name": "y", "kind": "pde"})()
    return type(
        "State",
        (),
        {
            "t": t,
            "dt_history": hist,
            "V": V,
            "species": [sp],
            "fields": {"y": _Arr(w)},
            "previous": {"y": _Arr(w0)},
            "older": {"y": _Arr(w1)},
            "oldest": {"y": _Arr(w1)},
        },
    )()


@pytest.mark.parametrize(("h", "h1"), [(1.0, 1.0), (0.5, 2.0), (3.0, 0.25)])
def test_backward_euler_error_estimate_is_the_local_error(h, h1):
    """For y' = 2t (y = t^2) BE's local error is exactly h^2 = h^2 y''/2 for any h, h1.

    The linear predictor through (t_n - h1, t_n) misses by h (h + h1), so Milne's device needs
    the factor h/(2h + h1) (it used h/(h + h1): 1.5x too large at equal steps, up to 2x).
    """
    from tumorpde.simulation.stepper import ErrorEstimator

    tn, tol = 3.0, 1e-3
    w = tn**2 + h * 2 * (tn + h)  # backward Euler from the exact t_n value
    state = _fake_state(tn, (tn - h1) ** 2, tn**2, w, [h1])
    est = ErrorEstimator(state, np.array([1.0]), _FakeComm(), "be", tol)
    lte = w - (tn + h) ** 2
    assert lte == pytest.approx(h * h)
    expected = abs(lte) / (tol * max(abs(w), tn**2) + 1e-6 * tol)
    assert est(h) == pytest.approx(expected, rel=1e-12)


def test_no_step_growth_right_after_an_error_rejection():
    """After a rejected step, the next step is at most the accepted one (HNW II.4)."""
    from tumorpde.fem.solver import NewtonResult
    from tumorpde.simulation.stepper import steps

    ok = NewtonResult(True, 2, "CONVERGED_FNORM_ABS", 2, 5)
    errors = iter([None, 4.0, 0.01, 0.01, 0.01])  # first step, a rejection, then tiny errors
    run = steps(
        lambda: ok,
        lambda h: None,
        lambda t: None,
        lambda: None,
        t_end=100.0,
        dt=1.0,
        stops=[],
        error=lambda h: next(errors, 0.01),
        dt_max=100.0,
    )
    infos = _take(run, 3)
    assert infos[1].rejected_error == 1
    assert infos[1].h_next <= infos[1].dt * (1 + 1e-12)  # no growth after the rejection
    assert infos[2].h_next > 2 * infos[2].dt  # then the controller grows again


def _take(it: Any, n: int) -> list[Any]:
    out = []
    for x in it:
        out.append(x)
        if len(out) == n:
            break
    return out
