"""Strong-scaling harness: the benchmark kernels at several MPI rank counts, targets and a plot.

Usage (from a checkout; records are appended, so earlier runs stay in the file)::

    python benchmarks/scaling.py --size full --ranks 1,2        # ~22 min on 2 cores
    python benchmarks/scaling.py --size tiny --ranks 1 --problem coupled

For each rank count N this spawns ``mpiexec -n N python -m tumorpde bench --size S --json TMP``
(the in-package kernels, :mod:`tumorpde.studies.bench`), collects the records into ``--json``
(default ``benchmarks/results/bench.jsonl``), prints the performance targets
(:data:`tumorpde.studies.bench.TARGETS`: measured, target, met; judged at ``--size full``
only, ``n/a`` at smaller sizes), writes them to ``<json stem>_summary.json`` and, with more
than one rank count, plots time per step and speedup against the rank count
(``<json stem>_scaling.png``).
The organ problem uses the coarse meshes shipped in ``meshes/`` at ``tiny`` and ``small`` and
the fine atlas mesh from ``--mesh-cache`` (default ``~/.cache/tumorpde/meshes``, built once) at
``full``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.studies.bench import PROBLEMS, SIZES, TARGET_SIZE, TARGETS, judge

REPO = Path(__file__).resolve().parents[1]

#: A summary row: name, measured value, target (None: reported only), met (None: no target),
#: note (sizes the value refers to).
Row = tuple[str, float, float | None, bool | None, str]


def _mega(unknowns: float) -> str:
    return f"{unknowns / 1e6:.3g}M unknowns"


def summarize(records: list[dict[str, Any]]) -> list[Row]:
    """Compare the measured values with :data:`TARGETS`; add reported (untargeted) values.

    Coupled targets use the largest size run at each rank count, and the 2-rank speedup the
    largest size run at both 1 and 2 ranks; the note of each row says which size.

    Returns:
        Rows ``(name, measured, target or None, met or None, note)``.
    """
    rows: list[Row] = []

    def pick(problem: str, ranks: int, key: str) -> list[dict[str, Any]]:
        return [r for r in records if r["problem"] == problem and r["ranks"] == ranks and key in r]

    def best(problem: str, key: str, ranks: int, lower: bool = True) -> float | None:
        vals = [r[key] for r in pick(problem, ranks, key)]
        if not vals:
            return None
        return min(vals) if lower else max(vals)

    def largest(problem: str, key: str, ranks: int) -> dict[str, Any] | None:
        cand = pick(problem, ranks, key)
        if not cand:
            return None
        top = max(r["unknowns"] for r in cand)
        return min((r for r in cand if r["unknowns"] == top), key=lambda r: r[key])

    # the targets are set for the full-size problems: other sizes are reported, not judged
    sizes = {r.get("size", TARGET_SIZE) for r in records}
    size = sizes.pop() if len(sizes) == 1 else "mixed"

    def add(
        name: str, value: float | None, lower: bool = True, note: str = "", target: str = ""
    ) -> None:
        if value is not None:
            goal = TARGETS[target or name]
            rows.append((name, value, goal, judge(value, goal, size, lower), note))

    def report(name: str, value: float | None, note: str = "") -> None:
        if value is not None:
            rows.append((name, value, None, None, note))

    def coupled_note(r: dict[str, Any]) -> str:
        pc = r.get("preconditioner", "default")
        return f"n={r.get('cells_per_side', '?')}, {_mega(r['unknowns'])}, pc={pc}"

    add("diffusion_1_s_per_Mdof", best("diffusion_1", "s_per_Munknown", 1))
    add("diffusion_4_s_per_Munknown", best("diffusion_4", "s_per_Munknown", 1))
    for ranks, name in ((1, "coupled_s_per_Munknown_1rank"), (2, "coupled_s_per_Munknown_2ranks")):
        r = largest("coupled", "s_per_Munknown", ranks)
        if r is not None:
            add(name, r["s_per_Munknown"], note=coupled_note(r))
    add("krylov_stream_fraction", best("diffusion_1", "krylov_stream_fraction", 1, False), False)
    both = {r["unknowns"] for r in pick("coupled", 1, "step_s")}
    both &= {r["unknowns"] for r in pick("coupled", 2, "step_s")}
    if both:
        # (not ``size``: that names the preset the rows are judged at)
        top = max(both)
        c1 = min(r["step_s"] for r in pick("coupled", 1, "step_s") if r["unknowns"] == top)
        c2 = min(r["step_s"] for r in pick("coupled", 2, "step_s") if r["unknowns"] == top)
        r = next(r for r in pick("coupled", 1, "step_s") if r["unknowns"] == top)
        if c2 > 0:
            add("speedup_2ranks", c1 / c2, False, note="coupled " + coupled_note(r))
    add("setup_s_per_Mvertex", best("setup", "setup_s_per_Mvertex", 1))
    add("compile_cold_s", best("setup", "compile_cold_s", 1), note="one small form")
    add("compile_warm_s", best("setup", "compile_warm_s", 1), note="one small form")
    setup = pick("setup", 1, "product_compile_cold_s")
    if setup:
        s = setup[0]
        objs = (
            f"default box case, {s['product_jit_objects']} JIT calls + "
            f"{s.get('product_jit_batches', 0)} batches, "
            f"{s.get('product_jit_kernels_cold', '?')} modules compiled"
        )
        for label in ("cold", "warm"):
            add(
                f"product_compile_{label}_s",
                s[f"product_compile_{label}_s"],
                note=f"{objs}; Simulation() {s[f'product_setup_{label}_s']:.3g} s",
                target="product_compile_cold_s" if label == "cold" else "compile_warm_s",
            )
    for ranks in sorted({r["ranks"] for r in records}):
        org = pick("organ", ranks, "s_per_step")
        if org:
            o = org[0]
            tag = "1rank" if ranks == 1 else f"{ranks}ranks"
            note = f"{o['mesh']}, {_mega(o['unknowns'])}, {o['steps']} step(s)"
            report(f"organ_s_per_step_{tag}", o["s_per_step"], note)
            report(f"organ_s_per_step_per_Munknown_{tag}", o["s_per_step_per_Munknown"], note)
            report(f"organ_total_s_{tag}", o["total_s"], note)
    for problem in ("diffusion_1", "diffusion_4", "coupled", "organ"):
        r = largest(problem, "bytes_per_unknown", 1)
        if r is not None:
            note = _mega(r["unknowns"]) + (f", pc={r['pc']}" if "pc" in r else "")
            report(f"bytes_per_unknown_{problem}", r["bytes_per_unknown"], note)
    return rows


def _print_table(rows: list[Row]) -> None:
    print(f"{'target':38s} {'measured':>10s} {'target':>8s}  met  note")
    unjudged = False
    for name, value, target, met, note in rows:
        goal = f"{target:8.3g}" if target is not None else f"{'-':>8s}"
        if target is not None and met is None:
            flag, unjudged = "n/a", True
        else:
            flag = "rep" if met is None else ("yes" if met else "NO ")
        print(f"{name:38s} {value:10.4g} {goal}  {flag}  {note}".rstrip())
    if unjudged:
        print(f"n/a: the targets are set for --size {TARGET_SIZE}; this size is not judged")


def _series(record: dict[str, Any]) -> tuple[str, float] | None:
    """Scaling-plot series name and time per step of a record (None: not plotted)."""
    p = record["problem"]
    if p.startswith("diffusion") and "step_s" in record:
        mode = record.get("mode", "tuned")
        return f"{p} {record['pc']} ({mode})", record["step_s"]
    if p == "coupled" and "step_s" in record:
        return f"coupled n={record['cells_per_side']}", record["step_s"]
    if p == "organ" and "s_per_step" in record:
        return f"organ ({record['mesh']})", record["s_per_step"]
    return None


def plot_scaling(records: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Plot time per step and speedup against the MPI rank count (strong scaling).

    One line per diffusion preconditioner and substrate count, coupled box size and organ case,
    each with its ideal (time proportional to 1/N from its smallest rank count).

    Args:
        records: Records of runs at several rank counts.
        path: The PNG to write.

    Returns:
        The path, or None if no series has two rank counts or matplotlib is missing (a note
        is printed).
    """
    series: dict[str, dict[int, float]] = {}
    for r in records:
        s = _series(r)
        if s is not None:
            pts = series.setdefault(s[0], {})
            pts[r["ranks"]] = min(s[1], pts.get(r["ranks"], np.inf))
    series = {k: v for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scaling plot skipped: matplotlib is not installed")
        return None
    fig, (ax_t, ax_s) = plt.subplots(1, 2, figsize=(12, 4.8))
    all_ranks = sorted({n for pts in series.values() for n in pts})
    for i, (name, pts) in enumerate(sorted(series.items())):
        ranks = sorted(pts)
        t = np.array([pts[n] for n in ranks])
        n0 = ranks[0]
        color = f"C{i % 10}"
        ax_t.loglog(ranks, t, "o-", color=color, label=name)
        ax_t.loglog(ranks, [t[0] * n0 / n for n in ranks], ":", color=color)
        ax_s.plot(ranks, n0 * t[0] / t, "o-", color=color, label=name)
    ax_s.plot(all_ranks, all_ranks, "k:", label="ideal")
    ax_t.set_xlabel("MPI ranks")
    ax_t.set_ylabel("time per step (s)")
    ax_t.set_title("time per step (dotted: ideal 1/N)")
    ax_s.set_xlabel("MPI ranks")
    ax_s.set_ylabel("speedup (vs 1 rank)")
    ax_s.set_title("speedup")
    for ax in (ax_t, ax_s):
        ax.set_xticks(all_ranks, [str(n) for n in all_ranks])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
    ax_s.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _mpiexec() -> str:
    """The ``mpiexec`` next to this Python (the venv's MPI), else the first one on PATH."""
    local = Path(sys.executable).parent / "mpiexec"
    return str(local) if local.is_file() else shutil.which("mpiexec") or "mpiexec"


def spawn(
    ranks: list[int], size: str, problems: list[str], out: Path, extra: list[str]
) -> list[dict[str, Any]]:
    """Run ``tumorpde bench`` under ``mpiexec -n N`` for each N; append its records to ``out``.

    Args:
        ranks: MPI rank counts, run one after the other.
        size: Key of :data:`tumorpde.studies.bench.SIZES`.
        problems: Subset of :data:`tumorpde.studies.bench.PROBLEMS`.
        out: JSON-lines file the records are appended to.
        extra: Further ``tumorpde bench`` arguments (``--case``, ``--mesh-cache``).

    Returns:
        The records of all runs.

    Raises:
        subprocess.CalledProcessError: If a run fails (or exceeds 50 minutes).
    """
    records: list[dict[str, Any]] = []
    for n in ranks:
        tmp = Path(tempfile.mkdtemp(prefix="tumorpde-bench-")) / "r.jsonl"
        cmd = [_mpiexec(), "-n", str(n), sys.executable, "-m", "tumorpde", "bench"]
        cmd += ["--size", size, "--problem", *problems, "--json", str(tmp), *extra]
        try:
            subprocess.run(["timeout", "3000", *cmd], check=True)
            lines = tmp.read_text().splitlines()
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)
        records += [json.loads(s) for s in lines]
        with out.open("a") as f:
            f.write("\n".join(lines) + "\n")
    return records


def main(argv: list[str] | None = None) -> int:
    """Spawn the runs, print and write the targets summary, plot the scaling."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=list(SIZES), default="full")
    p.add_argument("--problem", nargs="+", choices=PROBLEMS, help="default: all")
    p.add_argument("--ranks", default="1,2", help="comma-separated MPI rank counts to run")
    p.add_argument(
        "--json",
        type=Path,
        default=REPO / "benchmarks" / "results" / "bench.jsonl",
        help="JSON-lines file the records are appended to",
    )
    p.add_argument("--case", type=Path, help="case of --problem organ (default: packaged)")
    p.add_argument(
        "--mesh-cache",
        type=Path,
        help="organ atlas meshes (default: meshes/ of this checkout for the coarse mesh at "
        "tiny/small, ~/.cache/tumorpde/meshes for the fine one at full)",
    )
    p.add_argument(
        "--coupled-pc",
        default="default,condensed",
        help="[solver] preconditioners of the coupled problem, each recorded (the targets take "
        "the fastest at the largest size)",
    )
    args = p.parse_args(argv)
    out: Path = args.json
    out.parent.mkdir(parents=True, exist_ok=True)
    ranks = [int(r) for r in args.ranks.split(",")]
    problems = args.problem or list(PROBLEMS)
    extra: list[str] = ["--coupled-pc", args.coupled_pc]
    if args.case is not None:
        extra += ["--case", str(args.case.resolve())]
    cache = args.mesh_cache
    if cache is None and SIZES[args.size]["organ_mesh"] == "coarse":
        cache = REPO / "meshes"
    if cache is not None:
        extra += ["--mesh-cache", str(Path(cache).resolve())]
    records = spawn(ranks, args.size, problems, out, extra)
    rows = summarize(records)
    _print_table(rows)
    summary = out.with_name(out.stem + "_summary.json")
    summary.write_text(
        json.dumps(
            [
                {"target": n, "measured": v, "goal": t, "met": m, "note": note}
                for n, v, t, m, note in rows
            ],
            indent=2,
        )
    )
    print(f"records: {out}\nsummary: {summary}")
    if len(set(ranks)) > 1:
        png = plot_scaling(records, out.with_name(out.stem + "_scaling.png"))
        print(f"scaling: {png}" if png else "scaling: no plot (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
