"""Plasma PK: closed forms against ODE integration, schedules, and label steady states.

Label comparisons use the typical patient (70 kg, 1.8 m^2) and the shipped parameters; each
tolerance is stated in the test's docstring together with the measured deviation, and where a
label value cannot be matched with literature parameters the test says so instead of tuning.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from tumorpde.library.drugs import (
    OralOneCompartmentPK,
    Patient,
    Regimen,
    TwoCompartmentMMPK,
    TwoCompartmentPK,
    load_drug,
)
from tumorpde.library.pk import (
    Dose,
    PlasmaPK,
    course_summary,
    schedule,
    steady_state_summary,
    terminal_half_life_h,
)


def _p(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "source": "test", "confidence": "M"}


def _two_cmt(cl=0.241 / 24, v1=3.02, v2=2.68, q=0.544 / 24) -> TwoCompartmentPK:
    return TwoCompartmentPK.model_validate(
        {
            "model": "two_compartment",
            "clearance": _p(cl, "L/h"),
            "v1": _p(v1, "L"),
            "v2": _p(v2, "L"),
            "q": _p(q, "L/h"),
        }
    )


def _mm(cl=0.0, v1=2.83, v2=2.43, q=0.103, vmax=4.38, km=74.0) -> TwoCompartmentMMPK:
    return TwoCompartmentMMPK.model_validate(
        {
            "model": "two_compartment_mm",
            "clearance": _p(cl, "L/h"),
            "v1": _p(v1, "L"),
            "v2": _p(v2, "L"),
            "q": _p(q, "L/h"),
            "vmax": _p(vmax, "mg/h"),
            "km": _p(km, "mg/L"),
        }
    )


def _oral(ka=0.884, cl=27.1, v=938.0) -> OralOneCompartmentPK:
    return OralOneCompartmentPK.model_validate(
        {
            "model": "oral_one_compartment",
            "bioavailability": _p(1.0, "1"),
            "ka": _p(ka, "1/h"),
            "clearance": _p(cl, "L/h"),
            "volume": _p(v, "L"),
        }
    )


# ------------------------------------------------------------------ reference ODE solutions
def _ode_two_cmt(doses, t_eval, cl, v1, v2, q, vmax=0.0, km=1.0, oral=None):
    """Integrate the compartment ODEs piecewise between dose events (DOP853, rtol 1e-13)."""
    k12, k21 = q / v1, q / v2
    events = sorted({d.time_h for d in doses} | {d.end_h for d in doses} | {0.0})
    t_eval = np.asarray(t_eval, dtype=float)
    out = np.zeros_like(t_eval)
    y = np.zeros(3)  # central, peripheral, depot

    def rhs(_t, y, rate):
        c = y[0] / v1
        elim = cl * c + (vmax * c / (km + c) if vmax else 0.0)
        absorb = oral * y[2] if oral else 0.0
        return [rate + absorb - elim - k12 * y[0] + k21 * y[1], k12 * y[0] - k21 * y[1], -absorb]

    edges = [*events, max(t_eval.max(), events[-1]) + 1.0]
    for a, b in itertools.pairwise(edges):
        for d in doses:
            if d.time_h == a and d.duration_h == 0:
                y[2 if d.route == "oral" else 0] += d.amount_mg
        rate = sum(
            d.amount_mg / d.duration_h for d in doses if d.duration_h and d.time_h <= a < d.end_h
        )
        if b <= a:
            continue
        sol = solve_ivp(
            rhs, (a, b), y, method="DOP853", rtol=1e-13, atol=1e-16, dense_output=True, args=(rate,)
        )
        m = (t_eval >= a) & (t_eval < b)
        out[m] = sol.sol(t_eval[m])[0] / v1
        y = sol.y[:, -1].copy()
    return out


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12 * np.max(np.abs(b)))))


# ------------------------------------------------------------------------- closed forms
def test_two_compartment_bolus_and_infusion_match_ode():
    """Bolus, infusion and overlapping superposition agree with the ODE to <= 1e-8 relative."""
    cl, v1, v2, q = 0.241 / 24, 3.02, 2.68, 0.544 / 24
    doses = [
        Dose(0.0, 560.0, "iv", 0.0),  # bolus
        Dose(100.0, 420.0, "iv", 1.5),  # infusion
        Dose(100.5, 200.0, "iv", 3.0),  # overlaps the previous infusion
        Dose(300.0, 420.0, "iv", 0.0),
    ]
    pk = PlasmaPK(_two_cmt(cl, v1, v2, q), doses, 148000)
    t = np.unique(np.concatenate([np.linspace(0, 1500, 1201), [100.7, 101.5, 102.0, 103.4]]))
    ref = _ode_two_cmt(doses, t, cl, v1, v2, q)
    assert _rel(pk.concentration(t), ref) <= 1e-8
    assert pk.concentration(-1.0) == 0.0


def test_single_bolus_biexponential_formula():
    """C = D/V1 [(a-k21)/(a-b) e^{-a t} + (k21-b)/(a-b) e^{-b t}].

    The two-compartment bolus solution (Gibaldi & Perrier, *Pharmacokinetics*, 2nd ed., 1982).
    """
    cl, v1, v2, q = 0.2, 3.0, 2.5, 0.5
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    a = 0.5 * (s + math.sqrt(s * s - 4 * k10 * k21))
    b = 0.5 * (s - math.sqrt(s * s - 4 * k10 * k21))
    t = np.linspace(0, 100, 51)
    expect = (
        100 / v1 * ((a - k21) / (a - b) * np.exp(-a * t) + (k21 - b) / (a - b) * np.exp(-b * t))
    )
    pk = PlasmaPK(_two_cmt(cl, v1, v2, q), [Dose(0.0, 100.0)], 1.0)
    assert _rel(pk.concentration(t), expect) <= 1e-12
    assert terminal_half_life_h(pk.pk) == pytest.approx(math.log(2) / b, rel=1e-12)


def test_oral_matches_ode_including_ka_equal_ke():
    """Oral superposition matches the depot ODE; ka = ke uses the limit form continuously."""
    cl, v = 27.1, 938.0
    ke = cl / v
    doses = [Dose(24.0 * k, 1250.0, "oral") for k in range(5)]
    t = np.linspace(0, 200, 801)
    for ka in (0.884, ke * (1 + 1e-9), ke, 0.3 * ke):  # includes flip-flop kinetics
        pk = PlasmaPK(_oral(ka, cl, v), doses, 581.06)
        ref = _ode_two_cmt(doses, t, cl, v, 1.0, 1e-300, oral=ka)
        assert _rel(pk.concentration(t), ref) <= 1e-8, ka
    # exact limit ka = ke: C = D k t e^{-k t} / V for one dose
    pk = PlasmaPK(_oral(ke, cl, v), [Dose(0.0, 100.0, "oral")], 1.0)
    tt = np.array([0.5, 10.0, 100.0])
    assert _rel(pk.concentration(tt), 100 * ke * tt * np.exp(-ke * tt) / v) <= 1e-13


def test_auc_closed_forms_match_quadrature():
    """auc(t0, t1) of all three models equals the integral of concentration(t) (<= 1e-8)."""
    cases = [
        (_two_cmt(), [Dose(0.0, 560.0, "iv", 1.5), Dose(504.0, 420.0, "iv", 0.5)]),
        (_two_cmt(), [Dose(0.0, 560.0), Dose(3.0, 100.0)]),
        (_oral(), [Dose(24.0 * k, 1250.0, "oral") for k in range(3)]),
        (_mm(), [Dose(0.0, 720.0, "iv", 2.0), Dose(168.0, 450.0, "iv", 1.0)]),
    ]
    for model, doses in cases:
        pk = PlasmaPK(model, doses, 150000.0)
        bps = list(pk.breakpoints())
        for t0, t1 in ((0.0, 0.7), (0.2, 60.0), (10.0, 400.0), (0.0, 600.0)):
            pts = [b for b in bps if t0 < b < t1]
            ref, _ = quad(
                pk.concentration, t0, t1, points=pts or None, epsabs=0, epsrel=1e-12, limit=500
            )
            assert pk.auc(t0, t1) == pytest.approx(ref, rel=1e-8), (model.model, t0, t1)
    # total exposure of one bolus = D / CL
    pk = PlasmaPK(_two_cmt(cl=0.01), [Dose(0.0, 100.0)], 1.0)
    assert pk.auc(0.0, 1e6) == pytest.approx(100.0 / 0.01, rel=1e-10)


def test_michaelis_menten_matches_independent_ode():
    """The piecewise LSODA solution agrees with a separate DOP853 solve (<= 1e-7)."""
    pkm = _mm(cl=0.005)
    doses = [Dose(0.0, 720.0, "iv", 2.0)] + [Dose(168.0 * k, 450.0, "iv", 1.0) for k in (1, 2, 3)]
    doses.append(Dose(600.0, 50.0, "iv", 0.0))
    pk = PlasmaPK(pkm, doses, 152000.0)
    t = np.linspace(0.0, 900.0, 901)
    ref = _ode_two_cmt(doses, t, 0.005, 2.83, 2.43, 0.103, vmax=4.38, km=74.0)
    assert _rel(pk.concentration(t), ref) <= 1e-7
    # right-continuous at a bolus, also at the last breakpoint of the schedule
    pk2 = PlasmaPK(pkm, [Dose(0.0, 100.0, "iv", 1.0), Dose(50.0, 283.0)], 152000.0)
    jump = pk2.concentration(50.0) - pk2.concentration(50.0 - 1e-9)
    assert jump == pytest.approx(283.0 / 2.83, rel=1e-6)


def test_michaelis_menten_reduces_to_linear_for_large_km():
    """Km -> inf with Vmax/Km = CL fixed gives the linear two-compartment model."""
    cl, km = 0.241 / 24, 1e12
    doses = [Dose(0.0, 560.0, "iv", 1.5)] + [Dose(504.0 * k, 420.0, "iv", 0.5) for k in (1, 2, 3)]
    lin = PlasmaPK(_two_cmt(cl=cl), doses, 148000.0)
    mm = PlasmaPK(_mm(cl=0.0, v1=3.02, v2=2.68, q=0.544 / 24, vmax=cl * km, km=km), doses, 148000.0)
    t = np.linspace(0.0, 2500.0, 501)
    assert _rel(mm.concentration(t), lin.concentration(t)) <= 1e-7
    assert mm.auc(0, 2500) == pytest.approx(lin.auc(0, 2500), rel=1e-7)


def test_nM_conversion_uses_molecular_weight():
    """1 mg/L = 1e6/MW nM (IgG 148 kDa: 6.76 nM; lapatinib 581.06 g/mol: 1721 nM)."""
    pk = PlasmaPK(_two_cmt(), [Dose(0.0, 302.0)], 148000.0)
    t = np.array([0.0, 10.0])
    assert np.allclose(pk.concentration_nM(t), pk.concentration(t) * 1e6 / 148000.0)
    assert pk.concentration_nM(0.0) == pytest.approx(100.0 * 1e6 / 148000.0)
    assert load_drug("lapatinib").nM_per_mg_L == pytest.approx(1721.0, rel=1e-3)


def test_route_mismatch_is_rejected():
    with pytest.raises(ValueError, match="oral dose"):
        PlasmaPK(_two_cmt(), [Dose(0.0, 100.0, "oral")], 1.0)
    with pytest.raises(ValueError, match="iv dose"):
        PlasmaPK(_oral(), [Dose(0.0, 100.0, "iv")], 1.0)
    with pytest.raises(ValueError):
        Dose(0.0, 100.0, "oral", 1.0)


# ------------------------------------------------------------------------------ schedules
def test_q3w_dose_times_are_exact_and_loading_first():
    reg = load_drug("trastuzumab").regimen("q3w")
    doses = schedule(reg, Patient(), t_end_h=60 * 504)
    times = [d.time_h for d in doses]
    assert times[:3] == [0.0, 504.0, 1008.0]
    assert times == [504.0 * k for k in range(61)]  # exact integer multiples, no drift
    assert doses[0].amount_mg == pytest.approx(8 * 70) and doses[0].duration_h == 1.5
    assert all(d.amount_mg == pytest.approx(6 * 70) and d.duration_h == 0.5 for d in doses[1:])
    pk = PlasmaPK.from_regimen(load_drug("trastuzumab"), "q3w", None, 1008.0)
    assert list(pk.dose_times()) == [0.0, 504.0, 1008.0]
    assert list(pk.breakpoints()) == [0.0, 1.5, 504.0, 504.5, 1008.0, 1008.5]


def test_intermittent_14_on_14_off():
    """Galunisertib 150 mg BID: 28 doses in days 0-13.5, none in days 14-27, restart on day 28."""
    reg = load_drug("galunisertib").regimen("intermittent_bid")
    times = np.array([d.time_h for d in schedule(reg, None, 3 * 28 * 24 - 1.0)])
    days = times / 24
    assert not np.any((days >= 14) & (days < 28))
    assert np.count_nonzero(days < 14) == 28 and days[27] == 13.5
    assert days[28] == 28.0 and len(times) == 3 * 28
    # t_end is inclusive: a dose exactly at t_end is scheduled
    assert schedule(reg, None, 3 * 28 * 24)[-1].time_h == 3 * 28 * 24
    assert np.array_equal(times[:28], 12.0 * np.arange(28))


def test_bid_cycles_stop_and_start_offsets():
    reg = Regimen(route="oral", dose="250 mg", interval="12 h", start="2 day", cycles=4)
    assert [d.time_h for d in schedule(reg, None, 1000.0)] == [48.0, 60.0, 72.0, 84.0]
    assert schedule(reg, None, 1000.0, start_h=10.0)[0].time_h == 58.0
    reg = Regimen(route="oral", dose="250 mg", interval="12 h", stop="36 h")
    assert [d.time_h for d in schedule(reg, None, 1000.0)] == [0.0, 12.0, 24.0]
    reg = Regimen(route="oral", dose="150 mg", interval="12 h", on="14 day", off="14 day", cycles=2)
    assert len(schedule(reg, None, 10_000.0)) == 56
    assert len(schedule(reg, None, math.inf)) == 56
    with pytest.raises(ValueError, match="finite t_end_h"):
        schedule(Regimen(route="oral", dose="1 mg", interval="1 day"), None, math.inf)


def test_dose_unit_conversion():
    """mg/kg x weight, mg/m^2 x BSA, flat mg (and g, 'mg/m2')."""
    p = Patient(body_weight="80 kg", body_surface_area="2.0 m^2")
    reg = Regimen(route="iv", dose="6 mg/kg", loading_dose="400 mg/m^2", interval="1 week")
    doses = schedule(reg, p, 200.0)
    assert doses[0].amount_mg == pytest.approx(800.0) and doses[1].amount_mg == pytest.approx(480.0)
    assert Regimen(route="oral", dose="1.25 g", interval="1 day").dose.mg(p) == 1250.0
    assert Regimen(route="iv", dose="250 mg/m2", interval="1 week").dose.mg(p) == 500.0
    assert Regimen(route="iv", dose="2 mg/kg", interval="1 week").dose.mg() == 140.0  # 70 kg
    assert Regimen(route="iv", dose="250 mg/m^2", interval="1 week").dose.mg() == 450.0  # 1.8 m^2


# ----------------------------------------------------------------- label / literature checks
def test_bevacizumab_terminal_half_life_about_20_days():
    """V8: ln2/beta of bevacizumab is 20 d (Lu 2008) within 15%; measured 18.9 d."""
    spec = load_drug("bevacizumab")
    t_half_d = terminal_half_life_h(spec.pk) / 24
    assert abs(t_half_d - 20.0) / 20.0 < 0.15
    # the simulated terminal log-slope agrees with ln2/beta
    pk = PlasmaPK(spec.pk, [Dose(0.0, 350.0, "iv", 1.5)], spec.molecular_weight)
    c1, c2 = pk.concentration(2000.0), pk.concentration(3000.0)
    assert 1000.0 * math.log(2) / math.log(c1 / c2) / 24 == pytest.approx(t_half_d, rel=1e-3)


def test_trastuzumab_label_steady_state():
    """EU SmPC (MBC, population median): q3w Cmin,ss 44.2 / Cmax,ss 179; qw Cmin,ss 63.1 ug/mL.

    Tolerance 15% (a typical 70-kg patient with the SmPC linear parameters vs the median of a
    nonlinear population model). Measured: q3w 48.2 (+9%) / 186.9 (+4%); qw 66.1 (+5%).
    """
    spec = load_drug("trastuzumab")
    q3w = steady_state_summary(spec, "q3w")
    qw = steady_state_summary(spec, "qw")
    lab3, labw = spec.label["q3w"], spec.label["qw"]
    assert q3w["cmin_ss"] == pytest.approx(lab3.internal("cmin_ss"), rel=0.15)
    assert q3w["cmax_ss"] == pytest.approx(lab3.internal("cmax_ss"), rel=0.15)
    assert qw["cmin_ss"] == pytest.approx(labw.internal("cmin_ss"), rel=0.15)
    assert qw["cmax_ss"] == pytest.approx(labw.internal("cmax_ss"), rel=0.15)
    assert q3w["ss_error"] < 1e-3
    assert q3w["cmin_ss_nM"] == pytest.approx(q3w["cmin_ss"] * 1e6 / 148000.0)


def test_cetuximab_weekly_against_label():
    """Dirks 2008 MM model vs SmPC weekly peak 155.8 / trough 41.3 ug/mL (week 3).

    Cannot be matched with the literature parameters: the Dirks SCCHN model (V1 2.83 L, Vmax
    4.38 mg/h) clears cetuximab about half as fast as the SmPC clearance (0.022 L/h/m^2) and
    overpredicts: measured week-3 peak 217 (x1.39), trough 61 (x1.48); first peak after
    400 mg/m^2 244 vs 185 (x1.32). The test pins the overprediction to [1.0, 1.7] so that a
    parameter change is noticed, and checks that the steady state exceeds week 3 (accumulation).
    """
    spec = load_drug("cetuximab")
    lab = spec.label["weekly"]
    pk = PlasmaPK.from_regimen(spec, "weekly", None, 8 * 168.0)
    # week-3 visit = third infusion (day 15, t = 336 h): trough just before, peak at its end
    trough3, peak3 = pk.concentration(336.0), pk.concentration(337.0)
    first_peak = pk.concentration(2.0)
    assert 1.0 <= peak3 / lab.internal("cmax_ss") <= 1.7
    assert 1.0 <= trough3 / lab.internal("cmin_ss") <= 1.7
    assert 1.0 <= first_peak / lab.internal("cmax_first") <= 1.7
    ss = course_summary(spec, "weekly", 8 * 7)
    assert ss["n_doses"] == 9 and ss["c_max"] >= peak3


def test_bevacizumab_day84_trough_and_accumulation():
    """5 mg/kg q2w: label median trough 80.3 ug/mL on day 84 (tolerance 15%; measured 75.3, -6%).

    Accumulation at 10 mg/kg q2w: label 2.8 (definition not stated). Trough-based ratio 2.47
    (-12%), AUC-based 2.14 (-24%); the trough ratio is checked within 20%.
    """
    spec = load_drug("bevacizumab")
    pk = PlasmaPK.from_regimen(spec, "q2w_5", None, 84 * 24.0)
    trough = pk.concentration(84 * 24.0)  # infusion starts at day 84: C is continuous there
    assert trough == pytest.approx(spec.label["q2w_5"].internal("cmin_ss"), rel=0.15)
    s = steady_state_summary(spec, "q2w_10")
    lab = spec.label["q2w_10"].internal("accumulation_ratio")
    assert s["accumulation_ratio_trough"] == pytest.approx(lab, rel=0.20)


def test_oral_label_values():
    """Lapatinib Cmax,ss 2.43 ug/mL (5%; fitted); crizotinib half-life 42 h and accumulation.

    Lapatinib AUC_tau,ss cannot be matched together with t1/2 = 24 h in a one-compartment model:
    46.0 vs 36.2 ug h/mL (x1.27, pinned to [1.0, 1.4]). Crizotinib accumulation with constant
    CL/F 60 L/h and t1/2 42 h: AUC ratio 6.17 vs label 4.8 (x1.28, pinned to [1.0, 1.4]).
    Galunisertib: half-life 8 h (1%) and tmax 1 h (single dose).
    """
    lap = load_drug("lapatinib")
    s = steady_state_summary(lap, "daily_1250")
    lab = lap.label["daily_1250"]
    assert s["cmax_ss"] == pytest.approx(lab.internal("cmax_ss"), rel=0.05)
    assert 1.0 <= s["auc_tau_ss"] / lab.internal("auc_tau_ss") <= 1.4
    assert s["half_life_h"] == pytest.approx(24.0, rel=0.01)

    cri = load_drug("crizotinib")
    s = steady_state_summary(cri, "bid")
    assert s["half_life_h"] == pytest.approx(42.0, rel=0.01)
    assert 1.0 <= s["accumulation_ratio"] / cri.label["bid"].internal("accumulation_ratio") <= 1.4

    gal = load_drug("galunisertib")
    assert terminal_half_life_h(gal.pk) == pytest.approx(8.0, rel=0.01)
    pk = PlasmaPK(gal.pk, [Dose(0.0, 150.0, "oral")], gal.molecular_weight)
    t = np.linspace(0.0, 6.0, 6001)
    assert t[np.argmax(pk.concentration(t))] == pytest.approx(1.0, abs=0.01)
