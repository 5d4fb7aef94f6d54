"""Time-stepper logic with a fake solver: exact output times, dt halving, failure."""

import pytest

from tumorpde.fem.solver import NewtonResult
from tumorpde.simulation.stepper import StepFailedError, output_times, steps

OK = NewtonResult(True, 2, "CONVERGED_FNORM_ABS", 2, 5)
FAIL = NewtonResult(False, -5, "DIVERGED_MAX_IT", 25, 100)


def drive(fail_when, **kw):
    state = {"dt": None, "t": 0.0, "restores": 0}

    def solve():
        return FAIL if fail_when(state["t"], state["dt"]) else OK

    def set_dt(h):
        state["dt"] = h

    def accept(t):
        state["t"] = t

    def restore():
        state["restores"] += 1

    infos = list(steps(solve, set_dt, accept, restore, **kw))
    return infos, state


def test_output_times():
    assert output_times(10.0, 2.5) == [2.5, 5.0, 7.5, 10.0]
    assert output_times(10.0, None) == [10.0]
    assert output_times(10.0, 3.0) == [3.0, 6.0, 9.0, 10.0]


def test_stops_hit_exactly_without_slivers():
    infos, _ = drive(lambda t, dt: False, t_end=10.0, dt=3.0, stops=[2.5, 5.0, 9.0])
    assert [i.t for i in infos] == [2.5, 5.0, 8.0, 9.0, 10.0]
    assert [i.t for i in infos if i.is_output] == [2.5, 5.0, 9.0, 10.0]
    # a step that would end 0.02 before a stop is stretched to it instead of leaving a sliver
    infos, _ = drive(lambda t, dt: False, t_end=7.0, dt=3.0, stops=[6.02])
    assert [round(i.t, 12) for i in infos] == [3.0, 6.02, 7.0]


def test_failed_steps_are_retried_with_half_dt():
    # fail whenever dt > 1: dt 4 -> 2 -> 1 succeeds, then grows back to 2, fails, ...
    infos, state = drive(lambda t, dt: dt > 1.0, t_end=4.0, dt=4.0, stops=[])
    assert infos[0].rejected == 2 and infos[0].dt == 1.0
    assert sum(i.dt for i in infos) == pytest.approx(4.0)
    assert state["restores"] == sum(i.rejected for i in infos)


def test_persistent_failure_raises():
    with pytest.raises(StepFailedError, match="after 3 dt halvings"):
        drive(lambda t, dt: True, t_end=1.0, dt=1.0, stops=[], max_retries=3)
