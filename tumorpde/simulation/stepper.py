"""Time stepper: a generator of accepted steps with exact stop times, retries and step control.

Also the local-error estimator that drives the adaptive control (:class:`ErrorEstimator`).

Each step solves the coupled system once. A step whose Newton solve fails is rejected: the fields
are restored, dt is halved and the step is retried (at most ``max_retries`` times in a row).
Without error control, dt grows back by 2x per step up to the nominal value after a failure.
With error control (``error``), a step whose local-error estimate exceeds the tolerance is
rejected too, and every next step size follows the standard controller
``dt * 0.9 * err**(-1/(p+1))`` (Hairer, Norsett & Wanner, *Solving ODEs I*, II.4), without
growth on the step after an error rejection (ibid.). Requested
times (outputs, dose times, t_end) are hit exactly by shortening the step that would cross them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from tumorpde.fem.state import State

__all__ = ["ErrorEstimator", "SolveResult", "StepFailedError", "StepInfo", "output_times", "steps"]


class SolveResult(Protocol):
    """What ``solve`` returns (:class:`tumorpde.fem.solver.NewtonResult` or a test fake)."""

    converged: bool
    reason_name: str
    newton_iterations: int
    linear_iterations: int


class StepFailedError(RuntimeError):
    """The nonlinear solve kept failing after the allowed dt reductions."""


@dataclass(frozen=True)
class StepInfo:
    """One accepted step (identical on all ranks)."""

    step: int
    t: float
    dt: float
    newton_iterations: int
    linear_iterations: int
    rejected: int
    is_output: bool
    is_last: bool
    error: float = float("nan")
    rejected_error: int = 0
    h_next: float = float("nan")


def output_times(t_end: float, every: float | None) -> list[float]:
    """Output times in (0, t_end], always including t_end."""
    times: list[float] = []
    if every is not None:
        n = 1
        while n * every < t_end * (1 - 1e-12):
            times.append(n * every)
            n += 1
    times.append(t_end)
    return times


def steps(
    solve: Callable[[], SolveResult],
    set_dt: Callable[[float], None],
    accept: Callable[[float], None],
    restore: Callable[[], None],
    *,
    t_end: float,
    dt: float,
    stops: Sequence[float],
    max_retries: int = 8,
    t0: float = 0.0,
    breakpoints: Sequence[float] = (),
    error: Callable[[float], float | None] | None = None,
    order: int = 1,
    dt_min: float = 0.0,
    dt_max: float | None = None,
    h0: float | None = None,
    step0: int = 0,
) -> Iterator[StepInfo]:
    """Advance from ``t0`` to ``t_end``, yielding each accepted step.

    Args:
        solve: Solves the step for the dt last passed to ``set_dt``.
        set_dt: Sets the step size used by ``solve``.
        accept: Called with the new time after a successful (and accurate enough) solve.
        restore: Called after a rejected solve to reset the unknowns.
        t_end: Final time.
        dt: Nominal (fixed-step) or initial (adaptive) step.
        stops: Output times to hit exactly (``is_output`` marks them).
        max_retries: Consecutive Newton-failure halvings allowed before giving up.
        t0: Start time.
        breakpoints: Further times to hit exactly (e.g. dose times), not marked as outputs.
        error: Adaptive control: returns the local error estimate of the solved step, scaled so
            that 1 is the tolerance, or None when it cannot be estimated yet. Steps with an
            estimate above 1 are rejected and retried with a smaller dt; the next dt follows
            ``0.9 * err**(-1/(order+1))``, limited to [0.2, 5] times the last step.
        order: Order of the time scheme (for the step-size controller).
        dt_min: Smallest step the controller may choose (error rejections stop there).
        dt_max: Largest step (default: ``dt`` without control, unbounded with it).
        h0: Size of the first step tried (default ``dt``); a resumed run passes the
            ``h_next`` of the step it resumes after.
        step0: Number of the last step already taken (a resumed run continues the count).

    Yields:
        Information about each accepted step.

    Raises:
        StepFailedError: If a step's Newton solve fails ``max_retries + 1`` times in a row.
    """
    t, step, h = t0, step0, (dt if h0 is None else h0)
    outputs = [s for s in sorted(stops) if s > t0 * (1 + 1e-14)]
    if not outputs or outputs[-1] < t_end:
        outputs.append(t_end)
    out_set = set(outputs)
    pending = sorted(set(outputs) | {b for b in breakpoints if t0 < b < t_end})
    pending = [s for s in pending if s > t0 * (1 + 1e-14)]
    eps = 1e-10 * dt
    cap = dt_max if dt_max is not None else (math.inf if error is not None else dt)
    while t < t_end - eps:
        target = pending[0]
        h_try = min(h, target - t)
        if target - (t + h_try) < eps or target - (t + h_try) < 0.01 * h_try:
            h_try = target - t  # avoid a sliver step just before a stop
        rejected = rejected_error = 0
        err: float | None = None
        while True:
            set_dt(h_try)
            res = solve()
            if not res.converged:
                restore()
                rejected += 1
                if rejected > max_retries:
                    raise StepFailedError(
                        f"Newton failed at t={t:g} h ({res.reason_name}) after {max_retries} dt "
                        f"halvings (last dt={h_try:g} h); loosen tolerances or reduce time.dt"
                    )
                h_try *= 0.5
                continue
            err = error(h_try) if error is not None else None
            if err is not None and err > 1.0 and h_try > dt_min * (1 + 1e-12):
                restore()
                rejected_error += 1
                h_try = max(dt_min, h_try * max(0.2, 0.9 * err ** (-1.0 / (order + 1))))
                continue
            break
        hit = abs((t + h_try) - target) <= eps
        t = target if hit else t + h_try
        if hit:
            pending.pop(0)
        accept(t)
        step += 1
        if error is not None:
            grow = (
                2.0
                if err is None
                else min(5.0, max(0.2, 0.9 * max(err, 1e-10) ** (-1.0 / (order + 1))))
            )
            if rejected:
                grow = min(grow, 2.0)
            if rejected_error:  # no growth right after an error rejection (HNW II.4)
                grow = min(grow, 1.0)
            h = min(cap, max(dt_min, h_try * grow))
        else:
            h = min(dt, 2 * h_try) if rejected else h
        yield StepInfo(
            step=step,
            t=t,
            dt=h_try,
            newton_iterations=res.newton_iterations,
            linear_iterations=res.linear_iterations,
            rejected=rejected + rejected_error,
            is_output=hit and target in out_set,
            is_last=t >= t_end - eps,
            error=float("nan") if err is None else float(err),
            rejected_error=rejected_error,
            h_next=h,
        )


class ErrorEstimator:
    r"""Local error of the step just solved, scaled so that 1 is the tolerance.

    Milne's device: the difference between the solution and the polynomial predictor through
    the last accepted values (linear for backward Euler, quadratic for BDF2), times the
    error-constant ratio (``h/(2h + h_1)`` for BE, 1/3 at constant steps: BE's local error
    ``h^2 w''/2`` over the sum of it and the linear predictor's ``h (h + h_1) w''/2``; 2/11 for
    BDF2 at constant steps), measured per species in
    the lumped L2 norm relative to ``tolerance * ||w|| + 1e-3 * tolerance * scale``;
    quasi-steady species are excluded.

    Stiff components: a species that relaxes to its input within a step (a small-molecule drug
    following the plasma curve, a receptor state at binding equilibrium) has a large raw
    estimate that is not error: backward Euler damps it. With a ``filter`` (set by the
    simulation) the estimate is multiplied node by node by
    :math:`\phi_i = (a_0 m_i/h) / A_{ii} \in [0, 1]`, the diagonal of
    :math:`(I - h\,\partial f/\partial w)^{-1}` read from the step's Newton matrix
    :math:`A_{ii} = a_0 m_i/h - m_i\,\partial f_i/\partial w_i` (+ diffusion): Shampine's
    filtered error estimate (Shampine 1980, ACM TOMS 6:254; Hairer & Wanner, Solving ODEs II,
    IV.8) with the Jacobian replaced by its diagonal. Slow species (:math:`h|\partial f/\partial w|
    \ll 1`) keep their raw estimate; components with a growing mode (:math:`\phi > 1`) are not
    amplified.

    After a dose the multistep history restarts (``state.dt_history`` is emptied so that the
    scheme restarts with backward Euler), but the fields at t_n and t_{n-1} are still known: the
    estimator remembers the size of the last step it saw accepted and uses the linear
    (backward-Euler) predictor through them, so the first step after a dose carries an error
    estimate too. Only the very first step of a run, which has no past, has none.

    Args:
        state: The run's state (fields and their history, species kinds).
        mass: Lumped mass of the owned nodes (the vertex-quadrature weights).
        comm: The mesh communicator (sums over ranks).
        scheme: ``"be"`` or ``"bdf2"``.
        tolerance: Relative tolerance of the step control.
    """

    def __init__(
        self, state: State, mass: np.ndarray, comm: Any, scheme: str, tolerance: float
    ) -> None:
        from mpi4py import MPI

        self.state, self.mass, self.comm = state, mass, comm
        self.scheme, self.tolerance = scheme, tolerance
        self.volume = float(comm.allreduce(mass.sum(), op=MPI.SUM))
        # per species, the mass with the constrained (fixed-value) nodes left out
        self._weights: dict[str, np.ndarray] = {}
        # (t_n, h) of the last estimate, and the last accepted step size it implies
        self._seen: tuple[float, float] | None = None
        self._h_accepted: float | None = None
        #: Stiffness filter: called with h, returns per species the factors phi_i of the owned
        #: nodes (None: no filter for this step)
        self.filter: Callable[[float], Mapping[str, np.ndarray] | None] | None = None

    def _last_step(self) -> float | None:
        """Size of the step that ended at ``state.t`` (history, or as seen by this estimator)."""
        st = self.state
        if st.dt_history:
            return st.dt_history[0]
        if self._seen is None:
            return None
        t_seen, h_seen = self._seen
        if t_seen == st.t:  # a retry of the same step
            return self._h_accepted
        if abs(t_seen + h_seen - st.t) <= 1e-9 * max(1.0, abs(st.t)):
            return h_seen  # the step last estimated was accepted
        return None

    def memory(self) -> dict[str, float | None]:
        """What a checkpoint keeps: the size of the step that ended at ``state.t``."""
        return {"h_last": self._last_step()}

    def set_memory(self, saved: dict[str, float | None] | None) -> None:
        """Restore :meth:`memory` (a resumed run estimates its first step like the original)."""
        h = (saved or {}).get("h_last")
        if h is not None:
            self._seen = (float(self.state.t) - float(h), float(h))

    def exclude(self, species: str, dofs: np.ndarray) -> None:
        """Leave owned nodes ``dofs`` of ``species`` out of the estimate (fixed boundary values).

        Their values are prescribed (:class:`tumorpde.fem.forms.FixedRows`), not integrated:
        the jump from the initial value to a fixed value would otherwise reject the first step.
        """
        ms = self._weights.setdefault(species, self.mass.copy())
        ms[dofs] = 0.0

    def __call__(self, h: float) -> float | None:
        """The scaled error of a step of size ``h`` (None while there is too little history)."""
        from mpi4py import MPI

        st = self.state
        hist = st.dt_history
        h_last = self._last_step()
        self._h_accepted = h_last
        self._seen = (float(st.t), float(h))
        if h_last is None:
            return None
        n = st.V.dofmap.index_map.size_local
        m = self.mass
        bdf2 = self.scheme == "bdf2" and len(hist) >= 2
        damp = self.filter(h) if self.filter is not None else None
        local = []
        for sp in st.species:
            if sp.kind == "algebraic":
                continue
            w = st.fields[sp.name].x.array[:n]
            w0 = st.previous[sp.name].x.array[:n]
            w1 = st.older[sp.name].x.array[:n]
            if bdf2:
                h1, h2 = hist[0], hist[1]
                w2 = st.oldest[sp.name].x.array[:n]
                # quadratic extrapolation through (t_n, w0), (t_n - h1, w1), (t_n - h1 - h2, w2)
                d1 = (w0 - w1) / h1
                d2 = ((w1 - w2) / h2 - d1) / (h1 + h2)  # = -(divided difference of order 2)
                pred = w0 + h * d1 - h * (h + h1) * d2
                c = 2.0 / 11.0
            else:
                h1 = h_last
                pred = w0 + h * (w0 - w1) / h1
                # BE error h^2/2 w'', predictor error h (h + h1)/2 w'': their ratio
                c = h / (2.0 * h + h1)
            e = c * (w - pred)
            if damp is not None and sp.name in damp:
                e = e * damp[sp.name]
            ms = self._weights.get(sp.name, m)
            local += [float(ms @ (e * e)), float(ms @ (w * w)), float(ms @ (w0 * w0))]
        tot = np.array(self.comm.allreduce(np.array(local), op=MPI.SUM)).reshape(-1, 3)
        tol = self.tolerance
        err = 0.0
        for ee, ww, w0w0 in tot:
            scale = max(np.sqrt(ww), np.sqrt(w0w0))
            denom = tol * scale + 1e-3 * tol * np.sqrt(self.volume) * 1e-3
            err = max(err, np.sqrt(ee) / denom)
        return float(err)
