"""Time stepper: a generator of accepted backward-Euler steps with exact output times and retries.

Each step solves the coupled system once. A step whose Newton solve fails is rejected: the fields
are restored, dt is halved and the step is retried (at most ``max_retries`` times in a row). After
a success dt grows back by 2x per step up to the nominal value. Requested times (outputs, t_end)
are hit exactly by shortening the step that would cross them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from tumorpde.solver import NewtonResult

__all__ = ["StepFailedError", "StepInfo", "output_times", "steps"]


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
    solve: Callable[[], NewtonResult],
    set_dt: Callable[[float], None],
    accept: Callable[[float], None],
    restore: Callable[[], None],
    *,
    t_end: float,
    dt: float,
    stops: Sequence[float],
    max_retries: int = 8,
    t0: float = 0.0,
) -> Iterator[StepInfo]:
    """Advance from ``t0`` to ``t_end``, yielding each accepted step.

    Args:
        solve: Solves the step for the dt last passed to ``set_dt``.
        set_dt: Sets the step size used by ``solve``.
        accept: Called with the new time after a successful solve.
        restore: Called after a failed solve to reset the unknowns.
        t_end: Final time.
        dt: Nominal step.
        stops: Times to hit exactly (sorted, within (t0, t_end]); ``is_output`` marks them.
        max_retries: Consecutive dt halvings allowed before giving up.
        t0: Start time.

    Yields:
        Information about each accepted step.

    Raises:
        StepFailedError: If a step fails ``max_retries + 1`` times in a row.
    """
    t, step, h = t0, 0, dt
    pending = [s for s in sorted(stops) if s > t0 * (1 + 1e-14)]
    if not pending or pending[-1] < t_end:
        pending.append(t_end)
    eps = 1e-10 * dt
    while t < t_end - eps:
        target = pending[0]
        h_try = min(h, target - t)
        if target - (t + h_try) < eps or target - (t + h_try) < 0.01 * h_try:
            h_try = target - t  # avoid a sliver step just before an output time
        rejected = 0
        while True:
            set_dt(h_try)
            res = solve()
            if res.converged:
                break
            restore()
            rejected += 1
            if rejected > max_retries:
                raise StepFailedError(
                    f"Newton failed at t={t:g} h ({res.reason_name}) after {max_retries} dt "
                    f"halvings (last dt={h_try:g} h); loosen tolerances or reduce time.dt"
                )
            h_try *= 0.5
        hit = abs((t + h_try) - target) <= eps
        t = target if hit else t + h_try
        if hit:
            pending.pop(0)
        accept(t)
        step += 1
        h = min(dt, 2 * h_try) if rejected else h
        yield StepInfo(
            step=step,
            t=t,
            dt=h_try,
            newton_iterations=res.newton_iterations,
            linear_iterations=res.linear_iterations,
            rejected=rejected,
            is_output=hit,
            is_last=t >= t_end - eps,
        )
