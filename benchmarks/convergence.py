"""Mesh convergence of the four organ example cases: burden and one signal QoI on three meshes.

Usage (one command; each run is a ``tumorpde run`` subprocess, serial unless ``--np``)::

    python benchmarks/convergence.py [--t-end "2 day"] [--dt "6 h"] [--radius 6] [--sizes 2,1]
        [--case her2_brain_metastasis ...] [--np 1] [--out benchmarks/results/convergence]

Levels per case: ``L0`` the shipped organ mesh; ``L1`` and ``L2`` the same mesh refined at load
(``[[mesh.refine]]``: a ball of ``--radius`` mm around the seed with edges at most
``sizes[0]``, then ``sizes[1]`` long). Reported per case: final
tumor burden (mm^3) and one signal (tumor-averaged pathway signal), their relative difference to
the finest level and the observed order ``p`` from ``(q1 - q0) / (q2 - q1) = (h0^p - h1^p) /
(h1^p - h2^p)`` (lesion edge lengths ``h``; none when the differences change sign). Writes
``convergence.json`` and ``convergence.md`` (the table of ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = {  # case -> signal QoI column of qoi.csv (the pathway that drives growth in the case)
    "her2_brain_metastasis": "signal_EGFR",
    "lung_metastasis": "signal_VEGFR2",
    "crc_liver_metastasis": "signal_MET",
    "breast_bone_metastasis": "signal_TGFBR",
}


def seed_of(case: Path) -> tuple[list[float], float, float]:
    """Seed centre (mm), seed radius (mm) and the shipped mesh's target edge length (mm)."""
    from tumorpde.config import load_config

    cfg = load_config(case)
    init = cfg.tumor.initial
    side = json.loads(Path(cfg.mesh.path).with_suffix(".json").read_text())
    h0 = float(side["generator"]["parameters"]["size"])
    return [float(c) for c in init.center], float(init.radius), h0


def run_case(
    case: Path, level: str, zone: dict | None, t_end: str, dt: str, nproc: int, work: Path
) -> dict:
    """Run one level; return the last row of qoi.csv (floats) plus cells and wall time."""
    out = work / f"{case.stem}_{level}"
    cmd = [sys.executable, "-m", "tumorpde", "run", str(case), "-o", str(out), "--overwrite"]
    if nproc > 1:
        cmd = [str(Path(sys.executable).with_name("mpiexec")), "-n", str(nproc), *cmd]
    sets = [
        f'time.t_end="{t_end}"',
        f'time.output_every="{t_end}"',
        f'time.dt="{dt}"',
        "time.adaptive=false",  # one time grid for all levels: the differences are spatial
        "output.picture=false",
        'output.format="xdmf"',
        "tumor.allow_coarse_seed=true",  # L0 is the under-resolved mesh under study
    ]
    if zone is not None:
        c = ", ".join(f'"{v} mm"' for v in zone["center"])
        sets.append(
            f'mesh.refine=[{{center = [{c}], radius = "{zone["radius"]} mm", '
            f'size = "{zone["size"]} mm"}}]'
        )
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    found = re.search(r"(\d+) cells, ", proc.stdout)
    if found is None:
        raise RuntimeError(f"no cell count in the output of {' '.join(cmd)}")
    cells = int(found.group(1))
    with (out / "qoi.csv").open() as f:
        rows = list(csv.DictReader(f))
    last = {k: float(v) for k, v in rows[-1].items() if v not in ("", None)}
    first = {k: float(v) for k, v in rows[0].items() if v not in ("", None)}
    return {"cells": cells, "wall_s": round(wall, 1), "last": last, "first": first}


def observed_order(h: list[float], q: list[float]) -> float | None:
    """Order p with (q1 - q0)/(q2 - q1) = (h0^p - h1^p)/(h1^p - h2^p); None if not monotone."""
    d1, d2 = q[1] - q[0], q[2] - q[1]
    if d1 == 0 or d2 == 0 or (d1 > 0) != (d2 > 0):
        return None
    target = d1 / d2

    def f(p: float) -> float:
        return (h[0] ** p - h[1] ** p) / (h[1] ** p - h[2] ** p) - target

    lo, hi = 0.05, 8.0
    if f(lo) * f(hi) > 0:
        return None
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if f(lo) * f(mid) <= 0:
            hi = mid
        else:
            lo = mid
    return round(0.5 * (lo + hi), 2)


def main(argv: list[str] | None = None) -> int:
    """Run the study and write the JSON and markdown table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--t-end", default="2 day", help="shortened run length (all cases)")
    ap.add_argument("--dt", default="6 h", help="fixed time step (all levels)")
    ap.add_argument("--sizes", default="2,1", help="lesion edge length of L1,L2 (mm)")
    ap.add_argument("--radius", type=float, default=6.0, help="refinement ball radius (mm)")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="default: all four")
    ap.add_argument("--np", type=int, default=1, help="MPI ranks per run")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "convergence")
    ap.add_argument("--work", type=Path, help="run directories (default: a temporary one)")
    args = ap.parse_args(argv)
    sizes = [float(v) for v in args.sizes.split(",")]
    if len(sizes) != 2 or min(sizes) <= 0:
        ap.error("--sizes needs two positive lengths, e.g. 1.5,0.75")
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="tumorpde-conv-") as tmp:
        work = args.work or Path(tmp)
        for name in args.case or list(CASES):
            case = HERE / "cases" / f"{name}.toml"
            center, r0, h0 = seed_of(case)
            signal = CASES[name]
            levels = []
            for level, size in (("L0", None), ("L1", sizes[0]), ("L2", sizes[1])):
                zone = None
                if size is not None:
                    zone = {"center": center, "radius": args.radius, "size": size}
                try:
                    res = run_case(case, level, zone, args.t_end, args.dt, args.np, work)
                except RuntimeError as exc:  # recorded: a level the solver cannot run
                    err = [ln for ln in str(exc).splitlines() if ln.startswith("error:")]
                    levels.append(
                        {
                            "level": level,
                            "h_lesion_mm": h0 if size is None else size,
                            "zone": zone,
                            "failed": (err or [str(exc)[-300:]])[-1],
                        }
                    )
                    print(f"{name} {level}: FAILED {levels[-1]['failed']}", flush=True)
                    continue
                sig = signal if signal in res["last"] else None
                levels.append(
                    {
                        "level": level,
                        "h_lesion_mm": h0 if size is None else size,
                        "zone": zone,
                        "cells": res["cells"],
                        "wall_s": res["wall_s"],
                        "initial_burden_mm3": res["first"]["tumor_burden_mm3"],
                        "burden_mm3": res["last"]["tumor_burden_mm3"],
                        "signal_column": sig,
                        "signal": res["last"][sig] if sig else None,
                    }
                )
                print(f"{name} {level}: {levels[-1]}", flush=True)
            h = [lv["h_lesion_mm"] for lv in levels]
            row = {"case": name, "seed_center_mm": center, "seed_radius_mm": r0, "levels": levels}
            for q in ("initial_burden_mm3", "burden_mm3", "signal"):
                vals = [lv.get(q) for lv in levels]
                if any(v is None for v in vals):
                    continue
                ref = vals[-1]
                row[f"{q}_rel_diff_to_L2"] = [
                    round((v - ref) / ref, 5) if ref else None for v in vals
                ]
                row[f"{q}_order"] = observed_order(h, vals)
            results.append(row)
    meta = {
        "t_end": args.t_end,
        "dt": args.dt,
        "radius_mm": args.radius,
        "sizes_mm": sizes,
        "ranks": args.np,
        "command": " ".join(["python", "benchmarks/convergence.py", *(argv or sys.argv[1:])]),
    }
    (args.out / "convergence.json").write_text(
        json.dumps({"meta": meta, "cases": results}, indent=2) + "\n"
    )
    (args.out / "convergence.md").write_text(table(results, meta))
    print(table(results, meta))
    return 0


def _pct(v: float | None) -> str:
    return "—" if v is None or math.isnan(v) else f"{100 * v:+.2f} %"


def table(results: list[dict], meta: dict) -> str:
    """Markdown table of the study."""
    lines = [
        f"t_end = {meta['t_end']}, fixed dt = {meta['dt']}, refinement ball radius "
        f"{meta['radius_mm']:g} mm around the seed, {meta['ranks']} rank(s). Differences are "
        "relative to L2.",
        "",
        "| Case | Level | h lesion (mm) | Cells | Initial burden (mm³) | Final burden (mm³) | "
        "Δ burden | Signal | Signal value | Δ signal | Wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for i, lv in enumerate(r["levels"]):
            if "failed" in lv:
                lines.append(
                    f"| {r['case'] if i == 0 else ''} | {lv['level']} | {lv['h_lesion_mm']:g} | "
                    f"| failed: {lv['failed']} | | | | | | |"
                )
                continue
            db = r.get("burden_mm3_rel_diff_to_L2", [None] * 3)[i]
            ds = r.get("signal_rel_diff_to_L2", [None] * 3)[i]
            sig = lv["signal"]
            lines.append(
                f"| {r['case'] if i == 0 else ''} | {lv['level']} | {lv['h_lesion_mm']:g} | "
                f"{lv['cells']} | {lv['initial_burden_mm3']:.2f} | {lv['burden_mm3']:.2f} | "
                f"{_pct(db)} | {lv['signal_column'] or '—'} | "
                f"{'—' if sig is None else f'{sig:.4g}'} | {_pct(ds)} | {lv['wall_s']:.0f} |"
            )
        po, ps = r.get("burden_mm3_order"), r.get("signal_order")
        lines.append(
            f"| | observed order | | | | p = {po if po is not None else '—'} | | | "
            f"p = {ps if ps is not None else '—'} | | |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
