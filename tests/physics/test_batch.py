"""Batch runs: communicator splitting, dynamic scheduling, failure isolation, resume.

Runs serially and under ``mpiexec -n 2`` (then two groups of one rank, or one of two).
"""

import json
import time
from pathlib import Path

import pytest
from helpers import box_case

from tumorpde.output.rundir import to_toml
from tumorpde.studies.batch import Scheduler, dispatch, read_summary, run_batch, split_groups
from tumorpde.studies.sweep import load_sweep


def test_split_groups_sizes_and_leftovers():
    assert split_groups(4, 1) == [0, 1, 2, 3]
    assert split_groups(4, 2) == [0, 0, 1, 1]
    assert split_groups(5, 2) == [0, 0, 1, 1, 1]  # the leftover rank joins the last group
    assert split_groups(5, 2, "idle") == [0, 0, 1, 1, None]
    assert split_groups(7, 3, "idle") == [0, 0, 0, 1, 1, 1, None]
    assert split_groups(2, 4) == [0, 0]  # fewer ranks than K: one group of them all
    assert split_groups(2, 4, "idle") == [0, 0]
    with pytest.raises(ValueError):
        split_groups(2, 0)


def simulate(costs, workers):
    """Event simulation of the dynamic scheduler: makespan and the runs of each worker."""
    sched = Scheduler(costs)
    free = [0.0] * workers
    got: list[list[int]] = [[] for _ in range(workers)]
    while True:
        w = min(range(workers), key=lambda k: free[k])
        i = sched.take()
        if i < 0:
            break
        got[w].append(i)
        free[w] += costs[i]
        sched.done(i)
    return max(free), got


def test_dynamic_scheduling_with_uneven_costs():
    costs = [1, 1, 1, 1, 8, 1, 1, 1, 1, 4]
    sched = Scheduler(costs)
    order = [sched.take() for _ in costs]
    assert order[:2] == [4, 9] and sorted(order) == list(range(10))  # largest first
    assert sched.take() == -1
    makespan, got = simulate(costs, 2)
    assert makespan == 10  # the optimum: total 20 over 2 workers
    assert sum(len(g) for g in got) == 10
    # a static split in sweep order (round robin) would give 12
    static = max(sum(costs[0::2]), sum(costs[1::2]))
    assert makespan < static


def test_dispatch_runs_every_index_once(comm):
    costs = [0.05, 0.05, 0.4, 0.05, 0.05, 0.05]
    seen = []
    results = []

    def execute(i, group, poll):
        seen.append(i)
        t_end = time.perf_counter() + costs[i]
        while time.perf_counter() < t_end:  # a "run" that polls like a time loop
            if poll is not None:
                poll()
            time.sleep(0.005)
        return {"index": i, "rank": comm.rank} if group.rank == 0 else None

    group = comm.Split(0 if comm.size == 1 else comm.rank, comm.rank)
    dispatch(comm, group, costs, execute, results.append)
    group.Free()
    everything = sorted(i for part in comm.allgather(seen) for i in part)
    assert everything == list(range(len(costs)))
    if comm.rank == 0:
        assert sorted(r["index"] for r in results) == list(range(len(costs)))
        if comm.size == 2:  # the 0.4 s run takes one group, the other does most of the rest
            by_rank = {r["index"]: r["rank"] for r in results}
            big = by_rank[2]
            assert sum(1 for i, r in by_rank.items() if r == big) <= 2


SWEEP = """
base = "case.toml"
name = "tiny"
[[runs]]
"tumor.proliferation_rate" = "0.1 1/day"
[[runs]]
"tumor.proliferation_rate" = "0.3 1/day"
[[runs]]
"tumor.proliferation_rate" = "0.5 1/day"
[[runs]]
"tumor.proliferation_rate" = "1 1/day"
[[runs]]
"tumor.proliferation_rate" = "2 1/day"
[[runs]]  # fails on purpose: Newton cannot take this growth, one retry only
"tumor.proliferation_rate" = "1e4 1/day"
"time.max_retries" = 1
"""


def write_sweep(directory: Path, comm) -> Path:
    if comm.rank == 0:
        case = box_case(
            time={"t_end": "1 day", "dt": "6 h", "output_every": "12 h"},
            output={"picture": False},
        )
        (directory / "case.toml").write_text(to_toml(case))
        (directory / "sweep.toml").write_text(SWEEP)
    comm.barrier()
    return directory / "sweep.toml"


def mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("runs/*/manifest.json")}


def test_sweep_with_a_failing_run_then_resume(shared_tmp, comm):
    path = write_sweep(shared_tmp, comm)
    sweep = load_sweep(path)
    assert len(sweep.runs) == 6
    bad = sweep.runs[5].id
    out = shared_tmp / "out"
    res = run_batch(sweep, out, comm=comm, procs_per_run=1, progress=False)
    assert res["groups"] == comm.size
    assert sorted(res["executed"]) == sorted(r.id for r in sweep.runs)
    assert res["counts"] == {"complete": 5, "failed": 1}
    rows = {r["run"]: r for r in read_summary(out / "summary.csv")}
    assert rows[bad]["status"] == "failed"
    assert "StepFailedError" in rows[bad]["error"]
    assert "StepFailedError" in (out / "logs" / f"{bad}.log").read_text()
    assert (out / "summary.parquet").is_file()
    for r in sweep.runs[:5]:
        row = rows[r.id]
        assert row["status"] == "complete" and row["error"] == ""
        assert row["tumor.proliferation_rate"] == r.values["tumor.proliferation_rate"]
        assert float(row["t_final_h"]) == 24
        assert float(row["tumor_burden_mm3_peak"]) >= float(row["tumor_burden_mm3_timeavg"])
        assert int(row["ranks"]) == 1 and float(row["wall_s"]) > 0
        manifest = json.loads((out / "runs" / r.id / "manifest.json").read_text())
        assert manifest["status"] == "complete"
    burdens = [float(rows[r.id]["tumor_burden_mm3_final"]) for r in sweep.runs[:5]]
    assert burdens == sorted(burdens)  # faster growth, larger tumor
    before = mtimes(out)

    # the same command again, keeping failures: nothing is recomputed or rewritten
    again = run_batch(sweep, out, comm=comm, procs_per_run=1, progress=False, retry_failed=False)
    assert again["executed"] == []
    assert mtimes(out) == before
    assert again["counts"] == {"complete": 5, "failed": 1}

    # retrying failures (the default) runs only the failed one (here on one group of all ranks)
    third = run_batch(sweep, out, comm=comm, procs_per_run=comm.size, progress=False)
    assert third["executed"] == [bad]
    after = mtimes(out)
    assert {k: v for k, v in after.items() if k != bad} == {
        k: v for k, v in before.items() if k != bad
    }
    rows = {r["run"]: r for r in read_summary(out / "summary.csv")}
    assert rows[bad]["status"] == "failed" and int(rows[bad]["ranks"]) == comm.size


def test_interrupted_and_half_written_runs_are_resumed(shared_tmp, comm):
    path = write_sweep(shared_tmp, comm)
    sweep = load_sweep(path)
    sweep.runs = sweep.runs[:2]
    out = shared_tmp / "out"
    run_batch(sweep, out, comm=comm, progress=False)
    a, b = sweep.runs
    if comm.rank == 0:
        # a: killed mid-run (manifest still says running, a checkpoint exists)
        m = out / "runs" / a.id / "manifest.json"
        data = json.loads(m.read_text())
        data["status"] = "running"
        m.write_text(json.dumps(data))
        # b: killed before its manifest was written
        for p in sorted((out / "runs" / b.id).rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (out / "runs" / b.id / "junk").write_text("half")
    comm.barrier()
    res = run_batch(sweep, out, comm=comm, progress=False)
    assert sorted(res["executed"]) == sorted([a.id, b.id])
    assert res["counts"] == {"complete": 2}
    ma = json.loads((out / "runs" / a.id / "manifest.json").read_text())
    assert ma["status"] == "complete" and ma.get("resumed")
    assert not (out / "runs" / b.id / "junk").exists()


COHORT_SWEEP = """
base = "case.toml"
name = "tiny_cohort"
control = "ctl"
[[vary]]
param = "tumor.motility"
values = ["0.05 mm^2/day", "0.2 mm^2/day"]
[arms.ctl]
[arms.slow]
"tumor.proliferation_rate" = "0.01 1/day"
"""


def test_batch_cohort_and_plots(shared_tmp, comm):
    from tumorpde.studies.batch_plots import write_batch_plots
    from tumorpde.studies.cohort import batch_cohort

    if comm.rank == 0:
        case = box_case(
            time={"t_end": "1 day", "dt": "12 h", "output_every": "1 day"},
            tumor={"proliferation_rate": "0.5 1/day"},
            output={"picture": False},
        )
        (shared_tmp / "case.toml").write_text(to_toml(case))
        (shared_tmp / "sweep.toml").write_text(COHORT_SWEEP)
    comm.barrier()
    sweep = load_sweep(shared_tmp / "sweep.toml")
    assert sweep.control_arm() == "ctl"
    out = shared_tmp / "out"
    res = run_batch(sweep, out, comm=comm, procs_per_run=1, progress=False)
    assert res["counts"] == {"complete": 4}
    if comm.rank != 0:
        return
    rows = read_summary(out / "summary.csv")
    assert len({r["sample"] for r in rows}) == 2  # two points, each in two arms
    cohort = batch_cohort(sweep, rows, out)
    (resp,) = cohort["response"]
    assert resp["arm"] == "slow" and resp["n"] == 2
    assert 0 < resp["median_ratio"] < 1  # slower growth, smaller tumor than its control
    assert (out / "cohort.csv").is_file() and (out / "cohort.json").is_file()
    pytest.importorskip("matplotlib")
    files, note = write_batch_plots(out, rows, sweep.params, control="ctl", pairs=cohort["pairs"])
    assert note is None
    assert set(files) == {"tumor.motility", "heatmap", "response"}
    for path in files.values():
        assert Path(path).stat().st_size > 1000 and path.endswith(".png")
