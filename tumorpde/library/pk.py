"""Plasma pharmacokinetics: dose schedules and plasma concentration ``Cpl(t)`` of a drug.

Plasma PK works in clinical units: amounts mg, volumes L, time h, concentrations mg/L
(``concentration_nM`` converts with the molecular weight: 1 mg/L = 1e6/MW nM).

Models (parameters from :mod:`tumorpde.library.drugs`):

* ``two_compartment``: linear two-compartment IV model. With ``k10 = CL/V1``,
  ``k12 = Q/V1``, ``k21 = Q/V2`` the macro constants are
  ``alpha, beta = (s ± sqrt(s^2 - 4 k10 k21))/2``, ``s = k10 + k12 + k21``, and a bolus D
  gives ``C = D/V1 [(alpha-k21)/(alpha-beta) e^{-alpha t} + (k21-beta)/(alpha-beta)
  e^{-beta t}]``. A zero-order infusion of D over T is the bolus kernel integrated over the
  infusion window (closed form). Doses superpose.
* ``two_compartment_mm``: the same with parallel Michaelis–Menten elimination
  ``Vmax C/(Km + C)`` from the central compartment. This nonlinear system has no closed form:
  it is integrated with :func:`scipy.integrate.solve_ivp` (LSODA, rtol 1e-10) piecewise
  between breakpoints (dose starts and infusion ends), with dense output, so evaluating
  ``concentration(t)`` afterwards is cheap. The AUC is integrated as an extra state.
* ``oral_one_compartment``: first-order absorption,
  ``C = D ka/(V/F (ka - ke)) (e^{-ke t} - e^{-ka t})``, superposed; ``ka ≈ ke`` uses the
  limit ``D ka t e^{-k t}/(V/F)`` through a numerically stable form.

:meth:`PlasmaPK.breakpoints` lists the times where ``Cpl`` or its derivative jumps; the PDE
stepper hits these exactly. This module imports neither dolfinx nor MPI.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tumorpde.library.drugs import (
    MAX_DOSES,
    DrugError,
    DrugSpec,
    OralOneCompartmentPK,
    Patient,
    Regimen,
    TwoCompartmentMMPK,
    TwoCompartmentPK,
    load_drug,
)

__all__ = [
    "Dose",
    "PlasmaPK",
    "course_summary",
    "schedule",
    "steady_state_summary",
    "terminal_half_life_h",
]

LN2 = math.log(2.0)
_EPS_T = 1e-9  # h; time comparisons of schedule arithmetic


# ------------------------------------------------------------------------------- schedules
@dataclass(frozen=True, slots=True)
class Dose:
    """One administration: ``amount_mg`` at ``time_h``, IV over ``duration_h`` (0 = bolus)."""

    time_h: float
    amount_mg: float
    route: Literal["iv", "oral", "sc"] = "iv"
    duration_h: float = 0.0

    def __post_init__(self) -> None:
        if self.route not in ("iv", "oral", "sc"):
            raise ValueError(f"route must be 'iv', 'oral' or 'sc', got {self.route!r}")
        if not (self.amount_mg >= 0 and math.isfinite(self.amount_mg)):
            raise ValueError(f"dose amount must be >= 0 mg, got {self.amount_mg!r}")
        if not (self.duration_h >= 0 and math.isfinite(self.duration_h)):
            raise ValueError(f"infusion duration must be >= 0 h, got {self.duration_h!r}")
        if self.route != "iv" and self.duration_h:
            raise ValueError(f"an {self.route} dose has no infusion duration")

    @property
    def end_h(self) -> float:
        """End of the infusion (= ``time_h`` for a bolus or an oral dose)."""
        return self.time_h + self.duration_h


def schedule(
    regimen: Regimen, patient: Patient | None, t_end_h: float, start_h: float = 0.0
) -> list[Dose]:
    """The doses of ``regimen`` up to ``t_end_h`` (inclusive).

    The first dose is at ``start_h + regimen.start`` and uses ``loading_dose`` (and
    ``loading_infusion``) if set; later doses come at integer multiples of ``interval`` (no
    accumulated rounding). Intermittent regimens restart the interval grid each ``on + off``
    cycle and dose only while ``j*interval < on``. ``cycles`` and ``stop`` (shifted by
    ``start_h``) end the course.

    Args:
        regimen: The regimen.
        patient: Body weight and surface area for mg/kg and mg/m^2 doses (None: defaults).
        t_end_h: Last time (h) to schedule doses for.
        start_h: Offset (h) added to the regimen's own ``start``.

    Returns:
        The doses in time order.

    Raises:
        ValueError: If ``t_end_h`` is infinite and the regimen has neither cycles nor stop, or
            the regimen would give more than :data:`~tumorpde.library.drugs.MAX_DOSES` doses
            (checked by arithmetic before any dose is built).
    """
    if not math.isfinite(t_end_h) and regimen.cycles is None and regimen.stop is None:
        raise ValueError("an unbounded regimen needs a finite t_end_h (or 'cycles'/'stop')")
    n = regimen.dose_count(t_end_h, start_h)
    if n > MAX_DOSES:
        raise ValueError(
            f"the regimen gives {n:.3g} doses up to {t_end_h:g} h, above the cap of "
            f"{MAX_DOSES:.0e} (interval {regimen.interval:g} h); check its interval and units"
        )
    p = patient or Patient()
    t0 = start_h + regimen.start
    stop = math.inf if regimen.stop is None else start_h + regimen.stop
    maint = regimen.dose.mg(p)
    load = regimen.loading_dose.mg(p) if regimen.loading_dose is not None else maint
    inf = regimen.infusion
    linf = regimen.loading_infusion if regimen.loading_infusion is not None else inf
    per_cycle = regimen.doses_per_cycle
    length = regimen.cycle_length
    max_cycles = regimen.cycles if regimen.cycles is not None else math.inf
    doses: list[Dose] = []
    c = 0
    while c < max_cycles:
        base = t0 + c * length
        if base > t_end_h + _EPS_T or base >= stop - _EPS_T:
            break
        for j in range(per_cycle):
            t = base + j * regimen.interval
            if t > t_end_h + _EPS_T or t >= stop - _EPS_T:
                break
            first = not doses
            doses.append(Dose(t, load if first else maint, regimen.route, linf if first else inf))
        c += 1
    return doses


# --------------------------------------------------------------------------- math helpers
def _phi1(x: np.ndarray) -> np.ndarray:
    """``(1 - e^{-x})/x`` with the limit 1 at x = 0 (stable for small |x|)."""
    x = np.asarray(x, dtype=float)
    out = np.ones_like(x)
    nz = x != 0
    out[nz] = -np.expm1(-x[nz]) / x[nz]
    return out


def _phi2(x: np.ndarray) -> np.ndarray:
    """``(x - 1 + e^{-x})/x^2`` with a series near 0 (limit 1/2)."""
    x = np.asarray(x, dtype=float)
    out = np.empty_like(x)
    small = np.abs(x) < 1e-3
    xs = x[small]
    out[small] = 0.5 - xs / 6.0 + xs**2 / 24.0 - xs**3 / 120.0
    xl = x[~small]
    out[~small] = (xl + np.expm1(-xl)) / xl**2
    return out


def _oral_kernel(tau: np.ndarray, ka: float, ke: float) -> np.ndarray:
    """``(e^{-ke t} - e^{-ka t})/(ka - ke)``, continuous through ka = ke (limit ``t e^{-k t}``)."""
    d = ka - ke
    x = d * tau
    out = np.empty_like(tau)
    near = np.abs(x) <= 1.0
    # near ka = ke: e^{-ke t} t (1 - e^{-d t})/(d t)
    out[near] = np.exp(-ke * tau[near]) * tau[near] * _phi1(x[near])
    far = ~near
    out[far] = (np.exp(-ke * tau[far]) - np.exp(-ka * tau[far])) / d
    return out


def _macro(cl: float, v1: float, v2: float, q: float) -> tuple[float, float, float, float]:
    """(alpha, beta, A, B) with ``C = D/V1 (A e^{-alpha t} + B e^{-beta t})`` for a bolus D."""
    k10, k12, k21 = cl / v1, q / v1, q / v2
    s = k10 + k12 + k21
    disc = math.sqrt(max(s * s - 4.0 * k10 * k21, 0.0))
    alpha = 0.5 * (s + disc)
    beta = k10 * k21 / alpha  # = (s - disc)/2 without cancellation
    a = (alpha - k21) / (alpha - beta)
    b = (k21 - beta) / (alpha - beta)
    return alpha, beta, a, b


def terminal_half_life_h(pk: Any, conc_mg_L: float = 0.0) -> float:
    """Terminal half-life (h) of a PK model.

    Args:
        pk: A PK model of :mod:`tumorpde.library.drugs`.
        conc_mg_L: For the Michaelis–Menten model, the concentration at which the nonlinear
            clearance ``Vmax/(Km + C)`` is linearized (0: the low-concentration limit).

    Returns:
        ``ln 2/beta`` (two-compartment) or ``ln 2/min(ka, ke)`` (oral).
    """
    if isinstance(pk, OralOneCompartmentPK):
        return LN2 / min(pk.ka, pk.clearance / pk.volume)
    cl = pk.clearance
    if isinstance(pk, TwoCompartmentMMPK):
        cl = cl + pk.vmax / (pk.km + conc_mg_L)
    _, beta, _, _ = _macro(cl, pk.v1, pk.v2, pk.q)
    return LN2 / beta


# ------------------------------------------------------------------------------- models
class _Linear2C:
    """Closed-form superposition for the linear two-compartment model."""

    def __init__(self, pk: TwoCompartmentPK, doses: Sequence[Dose]) -> None:
        self.v1 = pk.v1
        self.alpha, self.beta, a, b = _macro(pk.clearance, pk.v1, pk.v2, pk.q)
        self.lam = np.array([self.alpha, self.beta])
        self.coef = np.array([a, b])
        self.doses = doses

    def _superpose(self, t: np.ndarray, kernel: Any, inclusive: bool) -> np.ndarray:
        """Sum over doses and exponentials of ``(dose/V1) c kernel(lam, tau, duration)``."""
        out = np.zeros_like(t)
        for d in self.doses:
            m = t >= d.time_h if inclusive else t > d.time_h
            if not m.any() or d.amount_mg == 0:
                continue
            tau = t[m] - d.time_h
            acc = np.zeros_like(tau)
            for lam, c in zip(self.lam, self.coef, strict=True):
                acc += c * kernel(lam, tau, d.duration_h)
            out[m] += d.amount_mg / self.v1 * acc
        return out

    def conc(self, t: np.ndarray) -> np.ndarray:
        def kernel(lam: float, tau: np.ndarray, T: float) -> np.ndarray:
            if T == 0:
                return np.exp(-lam * tau)
            w = np.minimum(tau, T)
            # (1/T) ∫_0^w e^{-lam (tau - s)} ds = e^{-lam (tau - w)} w phi1(lam w) / T
            return np.exp(-lam * (tau - w)) * w * _phi1(lam * w) / T

        return self._superpose(t, kernel, inclusive=True)

    def cum(self, t: np.ndarray) -> np.ndarray:
        """``∫_{-inf}^t C``  (mg·h/L)."""

        def kernel(lam: float, tau: np.ndarray, T: float) -> np.ndarray:
            if T == 0:
                return tau * _phi1(lam * tau)
            w = np.minimum(tau, T)
            during = w * w * _phi2(lam * w)  # ∫_0^w (1 - e^{-lam s})/lam ds
            rest = np.maximum(tau - T, 0.0)
            after = T * _phi1(lam * T) * rest * _phi1(lam * rest)
            return (during + after) / T

        return self._superpose(t, kernel, inclusive=False)


class _Oral1C:
    """Closed-form superposition for the one-compartment oral model."""

    def __init__(self, pk: OralOneCompartmentPK, doses: Sequence[Dose]) -> None:
        self.ka = pk.ka
        self.v = pk.volume
        self.cl = pk.clearance
        self.ke = pk.clearance / pk.volume
        self.doses = doses

    def conc(self, t: np.ndarray) -> np.ndarray:
        out = np.zeros_like(t)
        for d in self.doses:
            m = t >= d.time_h
            if m.any() and d.amount_mg:
                tau = t[m] - d.time_h
                out[m] += d.amount_mg * self.ka / self.v * _oral_kernel(tau, self.ka, self.ke)
        return out

    def cum(self, t: np.ndarray) -> np.ndarray:
        # mass balance: absorbed - in body = eliminated = CL * AUC
        out = np.zeros_like(t)
        for d in self.doses:
            m = t > d.time_h
            if m.any() and d.amount_mg:
                tau = t[m] - d.time_h
                c = d.amount_mg * self.ka / self.v * _oral_kernel(tau, self.ka, self.ke)
                absorbed = -d.amount_mg * np.expm1(-self.ka * tau)
                out[m] += (absorbed - self.v * c) / self.cl
        return out


class _MM2C:
    """Two-compartment model with Michaelis–Menten elimination, integrated piecewise."""

    RTOL = 1e-10

    def __init__(self, pk: TwoCompartmentMMPK, doses: Sequence[Dose]) -> None:
        self.pk = pk
        self.k12, self.k21 = pk.q / pk.v1, pk.q / pk.v2
        self.doses = [d for d in doses if d.amount_mg > 0]
        bps = sorted({d.time_h for d in self.doses} | {d.end_h for d in self.doses})
        self.bps = bps
        scale = max([d.amount_mg for d in self.doses], default=1.0)
        self.atol = np.array([1e-12 * scale, 1e-12 * scale, 1e-12 * scale / pk.v1])
        self.starts: list[float] = []
        self.ends: list[float] = []
        self.sols: list[Any] = []
        self.y = np.zeros(3)
        self.t = bps[0] if bps else 0.0
        self.next_bp = 0
        if bps:  # integrate through all doses (and 1 h past the last, so that a bolus
            self._advance(bps[-1] + 1.0)  # at the last breakpoint has its own segment)

    def _rate(self, t0: float) -> float:
        return sum(
            d.amount_mg / d.duration_h
            for d in self.doses
            if d.duration_h > 0 and d.time_h <= t0 < d.end_h
        )

    def _rhs(self, _t: float, y: np.ndarray, rate: float) -> list[float]:
        pk = self.pk
        c = y[0] / pk.v1
        elim = pk.clearance * c + pk.vmax * c / (pk.km + c)
        return [
            rate - elim - self.k12 * y[0] + self.k21 * y[1],
            self.k12 * y[0] - self.k21 * y[1],
            c,
        ]

    def _segment(self, t0: float, t1: float) -> None:
        from scipy.integrate import solve_ivp

        rate = self._rate(t0)
        sol = solve_ivp(
            self._rhs,
            (t0, t1),
            self.y,
            method="LSODA",
            rtol=self.RTOL,
            atol=self.atol,
            dense_output=True,
            args=(rate,),
        )
        if not sol.success:  # pragma: no cover - LSODA failure on a smooth scalar system
            raise RuntimeError(f"PK integration failed on [{t0}, {t1}] h: {sol.message}")
        self.starts.append(t0)
        self.ends.append(t1)
        self.sols.append(sol.sol)
        self.y = sol.y[:, -1].copy()
        self.t = t1

    def _advance(self, t_max: float) -> None:
        while True:
            while self.next_bp < len(self.bps) and self.bps[self.next_bp] <= self.t:
                tb = self.bps[self.next_bp]
                self.y[0] += sum(
                    d.amount_mg for d in self.doses if d.duration_h == 0 and d.time_h == tb
                )
                self.next_bp += 1
            if self.next_bp < len(self.bps):
                t1 = self.bps[self.next_bp]
            elif self.t < t_max:
                t1 = t_max
            else:
                return
            self._segment(self.t, t1)
            if self.next_bp >= len(self.bps) and self.t >= t_max:
                return

    def _eval(self, t: np.ndarray, row: int) -> np.ndarray:
        out = np.zeros_like(t)
        if not self.bps:
            return out
        if t.size and t.max() > self.t:
            self._advance(float(t.max()))
        m = t >= self.bps[0]
        if not m.any():
            return out
        tm = t[m]
        idx = np.searchsorted(np.asarray(self.starts), tm, side="right") - 1
        idx = np.clip(idx, 0, len(self.sols) - 1)
        vals = np.empty_like(tm)
        for i in np.unique(idx):
            sel = idx == i
            vals[sel] = self.sols[i](tm[sel])[row]
        out[m] = vals
        return out

    def conc(self, t: np.ndarray) -> np.ndarray:
        return self._eval(t, 0) / self.pk.v1

    def cum(self, t: np.ndarray) -> np.ndarray:
        return self._eval(t, 2)


class PlasmaPK:
    """Plasma concentration of one drug for a list of doses.

    Args:
        pk: The PK model (:class:`~tumorpde.library.drugs.TwoCompartmentPK`,
            :class:`~tumorpde.library.drugs.TwoCompartmentMMPK` or
            :class:`~tumorpde.library.drugs.OralOneCompartmentPK`).
        doses: The doses (any order); IV doses for the IV models, oral ones for the oral model.
        molecular_weight: Molar mass (g/mol) for :meth:`concentration_nM`.

    Raises:
        ValueError: If a dose route does not fit the model.
    """

    def __init__(self, pk: Any, doses: Sequence[Dose], molecular_weight: float) -> None:
        self.pk = pk
        self.doses: tuple[Dose, ...] = tuple(sorted(doses, key=lambda d: (d.time_h, d.end_h)))
        if not molecular_weight > 0:
            raise ValueError("molecular_weight must be > 0 g/mol")
        self.molecular_weight = float(molecular_weight)
        oral = isinstance(pk, OralOneCompartmentPK)
        bad = [d for d in self.doses if (d.route in ("oral", "sc")) != oral]
        if bad:
            raise ValueError(
                f"a {bad[0].route} dose (t = {bad[0].time_h:g} h) does not fit the "
                f"'{pk.model}' PK model"
            )
        if isinstance(pk, TwoCompartmentPK):
            self._impl: Any = _Linear2C(pk, self.doses)
        elif isinstance(pk, TwoCompartmentMMPK):
            self._impl = _MM2C(pk, self.doses)
        elif oral:
            self._impl = _Oral1C(pk, self.doses)
        else:
            raise TypeError(f"unknown PK model {pk!r}")

    @classmethod
    def from_regimen(
        cls,
        drug: DrugSpec,
        regimen: Regimen | str,
        patient: Patient | None = None,
        t_end_h: float = 0.0,
        start_h: float = 0.0,
    ) -> PlasmaPK:
        """Build from a drug and one of its regimens (by name) or a :class:`Regimen`."""
        reg = drug.regimen(regimen) if isinstance(regimen, str) else regimen
        return cls(drug.pk, schedule(reg, patient, t_end_h, start_h), drug.molecular_weight)

    def _apply(self, fn: Any, t: Any) -> Any:
        arr = np.asarray(t, dtype=float)
        out = fn(arr.ravel().copy()).reshape(arr.shape)
        return float(out) if arr.ndim == 0 else out

    def concentration(self, t: Any) -> Any:
        """Plasma concentration (mg/L) at time(s) ``t`` (h); right-continuous at boluses."""
        return self._apply(self._impl.conc, t)

    def concentration_nM(self, t: Any) -> Any:
        """Plasma concentration (nM) at time(s) ``t`` (h): mg/L × 1e6/MW."""
        return self._apply(lambda x: self._impl.conc(x) * (1e6 / self.molecular_weight), t)

    def auc(self, t0: float, t1: float) -> float:
        """``∫_{t0}^{t1} C dt`` (mg·h/L)."""
        v = self._impl.cum(np.array([float(t0), float(t1)]))
        return float(v[1] - v[0])

    def mean_concentration_nM(self, t0: float, t1: float) -> float:
        """Mean plasma concentration (nM) over ``[t0, t1]``: the exact AUC over the interval.

        This is the plasma level a backward-Euler step from ``t0`` to ``t1`` uses, so that the
        linear exchange term receives the exact plasma exposure of the step; ``t1 <= t0``
        gives the point value at ``t1``.
        """
        if not t1 > t0:
            return float(self.concentration_nM(t1))
        return self.auc(t0, t1) / (t1 - t0) * (1e6 / self.molecular_weight)

    def dose_times(self) -> np.ndarray:
        """Start times (h) of all doses, sorted, without repeats."""
        return np.unique(np.array([d.time_h for d in self.doses], dtype=float))

    def breakpoints(self) -> np.ndarray:
        """Dose starts and infusion ends (h), sorted, without repeats."""
        pts = [d.time_h for d in self.doses] + [d.end_h for d in self.doses if d.duration_h]
        return np.unique(np.array(pts, dtype=float))

    def terminal_half_life_h(self) -> float:
        """Terminal half-life (h); for the MM model at the low-concentration limit."""
        return terminal_half_life_h(self.pk)


# ----------------------------------------------------------------------------- summaries
def _interval_extrema(pk: PlasmaPK, t0: float, t1: float) -> tuple[float, float]:
    """(min, max) of the concentration over [t0, t1], sampled densely and refined."""
    from scipy.optimize import minimize_scalar

    bps = pk.breakpoints()
    grid = np.unique(np.concatenate([np.linspace(t0, t1, 2001), bps[(bps >= t0) & (bps <= t1)]]))
    c = np.asarray(pk.concentration(grid))
    out = []
    for sign, i in ((1.0, int(np.argmin(c))), (-1.0, int(np.argmax(c)))):
        best = c[i]
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        if hi > lo:
            r = minimize_scalar(
                lambda x, s=sign: s * pk.concentration(x),
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-9 * max(1.0, t1)},
            )
            cand = sign * r.fun
            best = min(best, cand) if sign > 0 else max(best, cand)
        out.append(float(best))
    return out[0], out[1]


def _mm_average(pk: TwoCompartmentMMPK, rate_mg_h: float) -> float:
    """Average steady-state concentration solving ``R = CL C + Vmax C/(Km + C)``."""
    cl, vmax, km = pk.clearance, pk.vmax, pk.km
    if cl == 0:
        if rate_mg_h >= vmax:
            return math.inf
        return rate_mg_h * km / (vmax - rate_mg_h)
    b = cl * km + vmax - rate_mg_h
    return (-b + math.sqrt(b * b + 4.0 * cl * rate_mg_h * km)) / (2.0 * cl)


def steady_state_summary(
    drug: DrugSpec | str,
    regimen_name: str,
    patient: Patient | None = None,
    n_half_lives: float = 8.0,
    tol: float = 1e-3,
) -> dict[str, Any]:
    """Steady-state trough and peak of a regimen of a drug.

    The regimen is simulated for at least ``n_half_lives`` (≥ 6) terminal half-lives (for the
    Michaelis–Menten model the half-life is linearized at the average steady-state
    concentration) and then for twice as many cycles until the estimated distance of the
    trough from its steady-state value is below ``tol`` (relative; estimated from the
    geometric decay of the cycle-to-cycle changes). The summary is taken over the last dosing
    interval (for intermittent regimens: the interval after the last dose of the last "on"
    window).

    Args:
        drug: A :class:`~tumorpde.library.drugs.DrugSpec` or a drug name/path.
        regimen_name: A regimen of the drug.
        patient: Body size (default 70 kg, 1.8 m^2).
        n_half_lives: Initial simulated length in terminal half-lives (at least 6 are used).
        tol: Relative steady-state tolerance of the trough.

    Returns:
        ``cmin_ss``, ``cmax_ss``, ``cavg_ss`` (mg/L), ``cmin_ss_nM``, ``cmax_ss_nM`` (nM),
        ``auc_tau_ss`` (mg·h/L over the last interval), ``accumulation_ratio`` (that AUC over
        the AUC of the first interval; with a loading dose the first interval has the loading
        dose), ``accumulation_ratio_trough`` (trough over the first-interval trough),
        ``half_life_h``, ``interval_h``, ``t_last_dose_h``, ``n_doses``, ``dose_mg``,
        ``loading_dose_mg``, ``ss_error`` (estimated relative distance from steady state) and
        the regimen description.

    Raises:
        DrugError: If the regimen does not exist, or the dose rate exceeds the saturable
            elimination capacity (no steady state).
    """
    spec = drug if isinstance(drug, DrugSpec) else load_drug(drug)
    reg = spec.regimen(regimen_name).model_copy(update={"start": 0.0, "cycles": None, "stop": None})
    p = patient or Patient()
    maint = reg.dose.mg(p)
    cyc = reg.cycle_length
    c_ref = 0.0
    if isinstance(spec.pk, TwoCompartmentMMPK):
        c_ref = _mm_average(spec.pk, maint * reg.doses_per_cycle / cyc)
        if not math.isfinite(c_ref):
            raise DrugError(
                spec.name,
                [(f"regimens.{regimen_name}", "dose rate exceeds Vmax: no steady state")],
            )
    t_half = terminal_half_life_h(spec.pk, c_ref)
    n_cycles = max(4, math.ceil(max(n_half_lives, 6.0) * t_half / cyc) + 1)
    for _ in range(8):
        t_end = (n_cycles - 1) * cyc + (reg.doses_per_cycle - 1) * reg.interval
        pk = PlasmaPK(spec.pk, schedule(reg, p, t_end), spec.molecular_weight)
        t_last = float(pk.dose_times()[-1])
        hi = t_last + reg.interval
        c0, c1, c2 = (float(pk.concentration(hi - k * cyc)) for k in range(3))
        d1, d2 = abs(c0 - c1), abs(c1 - c2)
        rho = min(d1 / d2, 0.999) if d2 > 0 else 0.0
        ss_error = d1 * rho / (1.0 - rho) / max(abs(c0), 1e-300) if d1 > 0 else 0.0
        if ss_error < tol:
            break
        n_cycles *= 2
    lo = t_last
    cmin, cmax = _interval_extrema(pk, lo, hi)
    auc_ss = pk.auc(lo, hi)
    first = float(pk.dose_times()[0])
    auc_first = pk.auc(first, first + reg.interval)
    c_first = float(pk.concentration(first + reg.interval))
    load = reg.loading_dose.mg(p) if reg.loading_dose is not None else None
    k = spec.nM_per_mg_L
    return {
        "drug": spec.name,
        "regimen": regimen_name,
        "description": reg.describe(),
        "model": spec.pk.model,
        "body_weight_kg": p.body_weight,
        "body_surface_area_m2": p.body_surface_area,
        "dose_mg": maint,
        "loading_dose_mg": load,
        "interval_h": reg.interval,
        "n_doses": len(pk.doses),
        "t_last_dose_h": t_last,
        "half_life_h": t_half,
        "cmin_ss": cmin,
        "cmax_ss": cmax,
        "cavg_ss": auc_ss / reg.interval,
        "auc_tau_ss": auc_ss,
        "cmin_ss_nM": cmin * k,
        "cmax_ss_nM": cmax * k,
        "accumulation_ratio": auc_ss / auc_first if auc_first > 0 else math.nan,
        "accumulation_ratio_trough": c0 / c_first if c_first > 0 else math.nan,
        "ss_error": ss_error,
    }


def course_summary(
    drug: DrugSpec | str,
    regimen: Regimen | str,
    days: float,
    patient: Patient | None = None,
) -> dict[str, Any]:
    """Concentrations over the first ``days`` of a course (starting at t = 0).

    Returns:
        ``n_doses``, ``c_end`` / ``c_end_nM`` (at the end), ``c_max`` / ``c_max_nM``,
        ``auc`` (mg·h/L) and ``breakpoints_h`` (dose starts and infusion ends).
    """
    spec = drug if isinstance(drug, DrugSpec) else load_drug(drug)
    t_end = float(days) * 24.0
    pk = PlasmaPK.from_regimen(spec, regimen, patient, t_end)
    grid = np.unique(np.concatenate([np.linspace(0.0, t_end, 4001), pk.breakpoints()]))
    grid = grid[grid <= t_end]
    c = np.asarray(pk.concentration(grid))
    c_end = float(pk.concentration(t_end))
    k = spec.nM_per_mg_L
    return {
        "drug": spec.name,
        "days": float(days),
        "n_doses": len(pk.doses),
        "c_end": c_end,
        "c_end_nM": c_end * k,
        "c_max": float(c.max()) if c.size else 0.0,
        "c_max_nM": float(c.max()) * k if c.size else 0.0,
        "auc": pk.auc(0.0, t_end),
        "breakpoints_h": [float(b) for b in pk.breakpoints()],
    }
