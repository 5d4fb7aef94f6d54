"""The benchmark harness: ``tumorpde bench`` kernels at tiny size and ``benchmarks/scaling.py``.

Serial only (the scaling script launches ``mpiexec`` itself); the timings are not asserted,
only that every record is complete and the summary/targets/plot machinery works.
"""

import json
import subprocess
import sys

import pytest
from helpers import REPO

from tumorpde.cli import main
from tumorpde.studies import bench


def _scaling_script() -> dict:
    """The globals of benchmarks/scaling.py (a script, not a module of the package)."""
    import runpy

    return runpy.run_path(str(REPO / "benchmarks" / "scaling.py"), run_name="scaling")


@pytest.mark.serial
def test_bench_writes_records_at_this_size(shared_tmp, comm):
    out = shared_tmp / "bench.jsonl"
    cmd = ["bench", "--size", "tiny", "--json", str(out), "--mesh-cache", str(REPO / "meshes")]
    assert main(cmd) == 0
    comm.barrier()
    records = [json.loads(s) for s in out.read_text().splitlines()]
    problems = {r["problem"] for r in records}
    assert {"stream", "setup", "diffusion_1", "diffusion_4", "coupled", "organ"} <= problems
    assert {r["ranks"] for r in records} == {comm.size}
    stream = next(r for r in records if r["problem"] == "stream")
    assert stream["triad_GBps"] > 0.1
    coupled = [r for r in records if r["problem"] == "coupled"]
    assert sorted(r["cells_per_side"] for r in coupled) == bench.SIZES["tiny"]["coupled"]
    for r in coupled:
        assert 0 < r["assembly_fraction"] <= 1.0 and r["newton_per_step"] >= 1
    setup = next(r for r in records if r["problem"] == "setup")
    assert setup["product_jit_objects"] > 1
    assert setup["product_compile_cold_s"] > setup["product_compile_warm_s"] > 0
    assert setup["product_setup_cold_s"] >= setup["product_compile_cold_s"]
    # the packaged organ case on the coarse atlas mesh (the checkout's meshes/ as the cache)
    organ = next(r for r in records if r["problem"] == "organ")
    assert organ["case"] == "her2_brain_metastasis" and bench.ORGAN_CASE.is_file()
    assert organ["mesh"] == "brain.msh" and organ["steps"] >= 1 and organ["newton_iterations"] > 0
    assert organ["unknowns"] == organ["species"] * organ["vertices"] > 0
    for key in ("mesh_read_s", "setup_s", "stepping_s", "io_s", "s_per_step"):
        assert organ[key] > 0
    assert organ["total_s"] >= organ["mesh_read_s"] + organ["setup_s"] + organ["stepping_s"]
    assert organ["bytes_per_unknown"] > 0
    for r in records:
        if "unknowns" in r:
            assert r["bytes_per_unknown"] >= 0  # > 0 where /proc lets the peak be reset
    # the targets table and the scaling plot of benchmarks/scaling.py, from these records
    scaling = _scaling_script()
    rows = {name: (goal, note) for name, _, goal, _, note in scaling["summarize"](records)}
    assert set(rows) >= {
        "diffusion_1_s_per_Mdof",
        "compile_cold_s",
        "product_compile_cold_s",
        "product_compile_warm_s",
        "organ_s_per_step_1rank",
        "bytes_per_unknown_coupled",
        "bytes_per_unknown_organ",
    }
    assert rows["coupled_s_per_Munknown_1rank"][1].startswith("n=8,")  # the largest size
    assert rows["bytes_per_unknown_organ"][0] is None  # reported, not targeted
    assert scaling["plot_scaling"](records, shared_tmp / "one.png") is None  # one rank count
    twice = records + [{**r, "ranks": 2} for r in records]
    png = scaling["plot_scaling"](twice, shared_tmp / "scaling.png")
    assert png is not None and png.stat().st_size > 1000


@pytest.mark.serial
def test_bench_scaling_script_spawns_and_summarizes(shared_tmp):
    out = shared_tmp / "bench.jsonl"
    script = REPO / "benchmarks" / "scaling.py"
    cmd = [sys.executable, str(script), "--size", "tiny", "--ranks", "1", "--problem", "coupled"]
    proc = subprocess.run(
        ["timeout", "300", *cmd, "--json", str(out)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    records = [json.loads(s) for s in out.read_text().splitlines()]
    assert {r["problem"] for r in records} == {"stream", "coupled"}
    assert {r["ranks"] for r in records} == {1}
    summary = json.loads((shared_tmp / "bench_summary.json").read_text())
    rows = {row["target"]: row for row in summary}
    assert rows["coupled_s_per_Munknown_1rank"]["note"].startswith("n=8,")
    assert rows["coupled_s_per_Munknown_1rank"]["goal"] == 5.0
    assert "coupled_s_per_Munknown_1rank" in proc.stdout  # the printed table
    assert not (shared_tmp / "bench_scaling.png").exists()  # one rank count: no plot


def test_packaged_organ_case_keeps_the_physics_of_the_example():
    """The bench's packaged HER2 case and benchmarks/cases/ differ only in the mesh table."""
    import tomllib

    packaged = tomllib.loads(bench.ORGAN_CASE.read_text())
    example = tomllib.loads(
        (REPO / "benchmarks" / "cases" / "her2_brain_metastasis.toml").read_text()
    )
    assert "mesh" not in packaged
    example.pop("mesh")
    assert packaged == example


def test_rows_after_the_speedup_are_judged_at_the_preset():
    """Every row is judged at the preset, also after the speedup row.

    The speedup row once reused the preset's name for its problem size, and every row after it
    was printed n/a instead of yes/no.
    """
    summarize = _scaling_script()["summarize"]
    common = {"problem": "coupled", "size": "full", "unknowns": 2.0e6, "cells_per_side": 79}
    records = [
        {**common, "ranks": 1, "step_s": 10.0, "s_per_Munknown": 5.0, "preconditioner": "a"},
        {**common, "ranks": 2, "step_s": 6.0, "s_per_Munknown": 3.0, "preconditioner": "b"},
        {"problem": "setup", "ranks": 1, "size": "full", "setup_s_per_Mvertex": 16.0},
    ]
    rows = {name: (value, met, note) for name, value, _, met, note in summarize(records)}
    assert rows["speedup_2ranks"][:2] == (10.0 / 6.0, True)
    assert rows["setup_s_per_Mvertex"][1] is False
    assert rows["coupled_s_per_Munknown_2ranks"][2].endswith("pc=b")
