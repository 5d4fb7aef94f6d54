"""Soak test of crash safety: a run killed again and again, resumed each time, loses nothing.

One uninterrupted reference run, then a faulty run of the same case: it is launched as
``mpiexec -n R tumorpde run CASE -o OUT`` (the first time) or ``... --resume`` (afterwards) in
its own process group, and the whole launch gets SIGKILL or SIGTERM at a random
moment (seeded): one launch in five during start-up (0.3 s to 0.9 x the reference's time to its
first QoI row: import, lock, mesh, JIT, checkpoint read), the others mid-run, 0-0.1 s after the
run passed a random point between 2 % and 50 % of what is left of it (so every fault lands
before the end, whatever the speed of the rank count, and never in the last three steps). Both
signals occur on every rank count. ``R`` alternates over ``--ranks``, so every resume runs on a
different rank count than the launch that was killed. The signal goes to the launcher's process
group and to the group of each of its descendants (``os.killpg``): MPICH's ``mpiexec`` puts every
rank into a process group of its own, and a batch system's SIGTERM or an OOM kill reaches every
process. After ``--faults`` faults the last
launch runs to the end. A launch that neither ends nor dies within the hang guard fails the
benchmark.

Checks at the end:

* ``manifest.json`` says ``complete``; a further ``--resume`` leaves the complete run alone;
* ``qoi.csv``: ``t`` strictly increasing, consecutive step numbers from 0, the last row at
  ``t_end`` (a missing step is a *QoI gap*);
* every output time of the reference is present exactly once across ``fields.xdmf`` and the
  resume segments ``fields.r<k>.xdmf``, and each of its datasets is readable with h5py (a
  missing or unreadable time is *lost*; data lost = lost output times + QoI gaps, must be 0);
* the final QoIs against the reference (wall time, iteration counters and ``balance_*``
  residuals excluded: round-off diagnostics): the largest relative difference, with whether the
  last launch ran on the reference's rank count. Every launch on one rank count (``--ranks 2``)
  should reproduce the reference to ~1e-10; a change of rank count changes the inexact linear
  solves, so agreement is then to the solver/time tolerance (``time.tolerance``).

Usage::

    python benchmarks/soak.py                               # default case, 12 faults, ranks 1,2
    python benchmarks/soak.py --faults 16 --ranks 1,2 --seed 3 --out benchmarks/results/soak
    python benchmarks/soak.py --quick                       # small box case, 2 faults (< 1 min)

Prints a summary table and writes ``OUT/soak.json``; exit 1 if a check failed.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEFAULT_CASE = REPO / "benchmarks" / "cases" / "default.toml"
DEFAULT_SETS = [
    "time.t_end=120 day",
    "time.output_every=5 day",
    "output.picture=false",
    "output.checkpoint.every_steps=10",
]
#: QoI columns that are round-off diagnostics, not results.
SKIP_COLUMNS = ("wall_s", "newton_iterations", "linear_iterations", "rejected_steps")

QUICK_CASE = """\
# soak.py --quick: the default physics on a small box (a few seconds per run)
name = "soak_quick"
[mesh]
kind = "box"
size = [8.0, 8.0, 8.0]
cells = [12, 12, 12]
[time]
t_end = "40 day"
dt = "6 h"
output_every = "4 day"
[tumor]
proliferation_rate = "0.05 1/day"
motility = "0.65 mm^2/day"
chemotaxis = "0.5 mm^2/day/nM"
initial = { kind = "gaussian", center = [4.0, 4.0, 4.0], radius = 1.6 }
[ligand]
diffusivity = "6e-7 cm^2/s"
decay_rate = "1e-4 1/s"
tumor_secretion = "1 nM/h"
stromal_secretion = "0.02 nM/h"
[receptor]
receptors_per_cell = 5e4
k_on = "1e6 1/M/s"
k_off = "2e-3 1/s"
k_t = "0.03 1/min"
k_e = "0.15 1/min"
[output]
format = "xdmf"  # this soak checks the XDMF writer (VTKHDF: tests/physics/test_readable_output.py)
picture = false
checkpoint = { every_steps = 8 }
"""


def _tool(name: str) -> str:
    exe = BIN / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"soak.py: {name} not found beside {sys.executable} nor on PATH")
    return found


def _run_cmd(case: Path, out: Path, ranks: int, sets: list[str], resume: bool) -> list[str]:
    cmd = [_tool("mpiexec"), "-n", str(ranks), _tool("tumorpde"), "run", str(case), "-o", str(out)]
    for s in sets:
        cmd += ["--set", s]
    if resume:
        cmd.append("--resume")
    return cmd


def _kill_group(pgid: int) -> None:
    with _suppress():
        os.killpg(pgid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (children, grandchildren, ...; from /proc)."""
    children: dict[int, list[int]] = {}
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            stat = (p / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(p.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def alive(pids: list[int]) -> list[int]:
    """The processes of ``pids`` that still run (zombies count as gone)."""
    left = []
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2] != "Z":
            left.append(pid)
    return left


def signal_tree(pid: int, sig: int) -> list[int]:
    """Send ``sig`` to the process group of ``pid`` and to the group of every descendant.

    MPICH's launcher puts its proxy and each rank into a process group of its own, so the
    launcher's group alone does not reach the ranks; a batch system's SIGTERM or an OOM kill
    reaches all of them. Returns the processes that were signalled.
    """
    pids = [pid, *descendants(pid)]
    groups = []
    for p in pids:
        with _suppress():
            g = os.getpgid(p)
            if g not in groups:
                groups.append(g)
    for g in groups:
        with _suppress():
            os.killpg(g, sig)
    return pids


class _suppress:
    """Ignore a process that is already gone."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> bool:
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError | PermissionError)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _read_manifest(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        return {"status": f"<unreadable: {type(exc).__name__}>"}


def _read_qoi(path: Path) -> list[dict[str, float]]:
    try:
        with path.open(newline="") as f:
            return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    except (OSError, ValueError):
        return []


def _progress(out: Path, t_end: float) -> float:
    rows = _read_qoi(out / "qoi.csv")
    return min(1.0, rows[-1]["t_h"] / t_end) if rows else 0.0


def _last_t(qoi: Path) -> float:
    """Time of the last complete row of a ``qoi.csv`` being written (-1 if none)."""
    try:
        lines = qoi.read_bytes().splitlines()
    except OSError:
        return -1.0
    for line in reversed(lines[1:]):
        parts = line.split(b",")
        if len(parts) > 2:
            try:
                return float(parts[1])
            except ValueError:
                continue
    return -1.0


def _wait_for_t(proc: subprocess.Popen, qoi: Path, t: float, deadline: float) -> float | None:
    """The monotonic time at which ``qoi`` first has a row at time >= ``t``.

    None if ``proc`` ended or ``deadline`` passed first.
    """
    while time.monotonic() < deadline and proc.poll() is None:
        if _last_t(qoi) >= t:
            return time.monotonic()
        time.sleep(0.02)
    return None


def launch(
    cmd: list[str],
    log: Path,
    *,
    kill_after: float | None,
    sig: int,
    hang_s: float,
    kill_at_t: float | None = None,
    qoi: Path | None = None,
) -> dict[str, Any]:
    """Run ``cmd`` in its own process group and signal the group mid-run.

    The signal goes ``kill_after`` seconds after the launch or, with ``kill_at_t``, that many
    seconds after ``qoi`` first has a row at time >= ``kill_at_t``.

    Returns a record: exit code, whether the signal was sent, wall time, whether it hung,
    processes of the group left alive after the launcher exited.
    """
    t0 = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(
            cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, start_new_session=True
        )
    rec: dict[str, Any] = {"sent": None, "hung": False}
    tree: list[int] = []
    deadline = t0 + hang_s
    try:
        if kill_at_t is not None and qoi is not None:
            seen = _wait_for_t(proc, qoi, kill_at_t, deadline)
            if seen is not None:
                rec["first_row_s"] = seen - t0
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                rec["sent"] = signal.Signals(sig).name
                rec["sent_at_s"] = time.monotonic() - t0
                tree = signal_tree(proc.pid, sig)
                rec["signalled_processes"] = len(tree)
        remaining = max(1.0, deadline - time.monotonic())
        if rec["sent"] == "SIGTERM":  # graceful stop: a checkpoint, then exit; 120 s at most
            remaining = min(remaining, 120.0)
        proc.wait(timeout=remaining)
    except subprocess.TimeoutExpired:
        rec["hung"] = True
        tree = signal_tree(proc.pid, signal.SIGKILL)
        proc.wait()
    rec["rc"] = proc.returncode
    rec["wall_s"] = time.monotonic() - t0
    left: list[int] = []
    if tree:  # every process of the launch must be gone soon after the launcher
        for _ in range(50):
            left = alive(tree[1:])
            if not left:
                break
            time.sleep(0.1)
    rec["leftover_pids"] = left
    for pid in left:  # a rank outlived its launcher by 5 s: ours, end it
        with _suppress():
            os.kill(pid, signal.SIGKILL)
    return rec


# ------------------------------------------------------------------------------ the checks
def field_times(out: Path) -> tuple[dict[float, list[str]], list[str]]:
    """Output times found in ``fields*.xdmf`` (time -> files holding it) and read errors.

    A time counts when every field's dataset at that time opens and reads with h5py. The first
    frame of a resume segment ``fields.r<k>.xdmf`` (the state at the resume time) is listed as
    ``"fields.r<k>.xdmf (start)"``.
    """
    import h5py

    found: dict[float, list[str]] = {}
    errors: list[str] = []
    for xdmf in sorted(out.glob("fields*.xdmf")):
        try:
            root = ET.parse(xdmf).getroot()
        except (OSError, ET.ParseError) as exc:
            errors.append(f"{xdmf.name}: {exc}")
            continue
        per_time: dict[float, list[str]] = {}
        for coll in root.iter("Grid"):
            if coll.get("CollectionType") != "Temporal":
                continue
            for g in coll.findall("Grid"):
                tnode = g.find("Time")
                item = g.find("Attribute/DataItem")
                if tnode is None or item is None or item.text is None:
                    continue
                per_time.setdefault(float(tnode.get("Value", "nan")), []).append(item.text.strip())
        handles: dict[str, Any] = {}
        try:
            for t, items in per_time.items():
                ok = True
                for ref in items:
                    fname, dset = ref.split(":", 1)
                    try:
                        if fname not in handles:
                            handles[fname] = h5py.File(out / fname, "r")
                        data = handles[fname][dset][()]
                        if data.size == 0 or not all(math.isfinite(v) for v in data.ravel()[:5]):
                            raise ValueError("empty or non-finite")
                    except (OSError, KeyError, ValueError) as exc:
                        errors.append(f"{xdmf.name} t={t:g}: {ref}: {exc}")
                        ok = False
                if ok:
                    first = xdmf.name != "fields.xdmf" and t == min(per_time)
                    found.setdefault(t, []).append(xdmf.name + (" (start)" if first else ""))
        finally:
            for h in handles.values():
                h.close()
    return found, errors


def check_qoi(rows: list[dict[str, float]], t_end: float) -> dict[str, Any]:
    """Monotone times, consecutive steps from 0 and the last row at ``t_end``."""
    gaps = 0
    problems = []
    if not rows:
        return {"rows": 0, "gaps": 1, "problems": ["qoi.csv empty or unreadable"]}
    if int(rows[0]["step"]) != 0:
        problems.append(f"first step {rows[0]['step']:g}, not 0")
        gaps += int(rows[0]["step"])
    for a, b in itertools.pairwise(rows):
        if not b["t_h"] > a["t_h"]:
            problems.append(f"t not increasing: {a['t_h']:g} -> {b['t_h']:g} (step {b['step']:g})")
        ds = int(b["step"]) - int(a["step"])
        if ds != 1:
            problems.append(f"step {a['step']:g} -> {b['step']:g}")
            gaps += max(ds - 1, 1)
    last_ok = math.isclose(rows[-1]["t_h"], t_end, rel_tol=1e-9, abs_tol=1e-9)
    if not last_ok:
        problems.append(f"last row at t = {rows[-1]['t_h']:g} h, t_end = {t_end:g} h")
    return {"rows": len(rows), "gaps": gaps, "last_at_t_end": last_ok, "problems": problems[:20]}


def qoi_difference(a: dict[str, float], b: dict[str, float]) -> dict[str, Any]:
    """Largest relative difference of the final QoIs (diagnostic columns excluded)."""
    worst, col, per = 0.0, None, {}
    for key, ref in b.items():
        if key in SKIP_COLUMNS or key.startswith("balance_") or key not in a:
            continue
        x = a[key]
        if (math.isnan(x) and math.isnan(ref)) or x == ref:
            d = 0.0
        else:
            d = abs(x - ref) / max(abs(x), abs(ref))
        per[key] = d
        if d > worst or (math.isnan(d) and col is None):
            worst, col = d, key
    return {"max_rel": worst, "column": col, "per_column": per}


def _case_info(case: Path, sets: list[str]) -> dict[str, Any]:
    """t_end and the time tolerance of the case as it will run (``validate --json``)."""
    cmd = [_tool("tumorpde"), "validate", str(case), "--json"]
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"soak.py: the case is invalid:\n{proc.stderr}")
    cfg = json.loads(proc.stdout)["config"]
    return {"t_end_h": float(cfg["time"]["t_end"]), "tolerance": float(cfg["time"]["tolerance"])}


# ------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--case",
        type=Path,
        help="case file (default: benchmarks/cases/default.toml "
        "with t_end 120 day, output every 5 day, checkpoints every 10 steps)",
    )
    ap.add_argument(
        "--set",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        help="case overrides (with --case; replaces the defaults)",
    )
    ap.add_argument("--faults", type=int, help="faults to inject (default 12; --quick 2)")
    ap.add_argument("--ranks", default="1,2", help="rank counts to alternate over (default 1,2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "soak")
    ap.add_argument("--hang-s", type=float, help="hang guard per launch (default 4x reference+60)")
    ap.add_argument("--quick", action="store_true", help="small box case, 2 faults (smoke test)")
    args = ap.parse_args(argv)

    ranks = [int(r) for r in args.ranks.split(",") if r.strip()]
    nfaults = args.faults if args.faults is not None else (2 if args.quick else 12)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.quick:
        case = out / "soak_quick.toml"
        case.write_text(QUICK_CASE)
        sets = list(args.set or [])
    elif args.case is not None:
        case, sets = args.case.resolve(), list(args.set or [])
    else:
        case, sets = DEFAULT_CASE, list(args.set or DEFAULT_SETS)
    info = _case_info(case, sets)
    t_end = info["t_end_h"]
    rng = random.Random(args.seed)
    ref_dir, run_dir, logs = out / "reference", out / "faulty", out / "logs"
    for d in (ref_dir, run_dir, logs):
        if d.exists():
            shutil.rmtree(d)
    logs.mkdir()

    # ------------------------------------------------------------- the reference run
    print(
        f"soak: case {case.name} {' '.join(sets)}; t_end {t_end:g} h; ranks {ranks}; "
        f"{nfaults} faults; seed {args.seed}",
        flush=True,
    )
    t0 = time.monotonic()
    ref = launch(
        _run_cmd(case, ref_dir, ranks[0], sets, False),
        logs / "reference.log",
        kill_after=None,
        sig=0,
        hang_s=args.hang_s or 3600,
        kill_at_t=0.0,
        qoi=ref_dir / "qoi.csv",
    )
    if ref["rc"] != 0:
        print(f"soak: reference run failed (exit {ref['rc']}):\n{_tail(logs / 'reference.log')}")
        return 1
    ref_wall = ref["wall_s"]
    ref_manifest = _read_manifest(ref_dir)
    solve_s = float(ref_manifest.get("timings_s", {}).get("solve_s", 0.8 * ref_wall))
    startup_s = ref.get("first_row_s", max(1.0, ref_wall - solve_s))  # launch to the t=0 row
    hang_s = args.hang_s or 4 * ref_wall + 60
    ref_rows = _read_qoi(ref_dir / "qoi.csv")
    last_kill_t = ref_rows[-4]["t_h"] if len(ref_rows) > 4 else 0.0
    print(
        f"soak: reference {ref_wall:.1f} s on {ranks[0]} rank(s) (start-up ~{startup_s:.1f} s)",
        flush=True,
    )

    # ------------------ the fault plan: every (signal, rank count) pair once in each 2*len(ranks)
    n = len(ranks)
    shift = (lambda i: i // n) if n % 2 == 0 else (lambda i: 0)  # both signals on each count
    sig_at = [signal.SIGKILL if (i + shift(i)) % 2 == 0 else signal.SIGTERM for i in range(nfaults)]
    for first in range(min(n, 2) if nfaults > 2 else n):  # shuffle within a rank count
        idx = list(range(first, nfaults, n))
        sigs = [sig_at[j] for j in idx]
        rng.shuffle(sigs)
        for j, sg in zip(idx, sigs, strict=True):
            sig_at[j] = sg
    plan = [(ranks[i % n], int(sig_at[i])) for i in range(nfaults)]

    # ----------------------------------------------------------------- the faulty run
    launches: list[dict[str, Any]] = []
    problems: list[str] = []
    t_faulty = time.monotonic()
    i = 0
    while True:
        r = ranks[i % len(ranks)]
        frac = _progress(run_dir, t_end)
        cmd = _run_cmd(case, run_dir, r, sets, resume=i > 0)
        kill_at = None
        if i < len(plan):
            sig = plan[i][1]
            late = frac * t_end >= last_kill_t  # already in the last steps: start-up only
            if late or rng.random() < 0.2:  # start-up: import, lock, mesh, JIT, checkpoint read
                delay = rng.uniform(0.3, max(0.5, 0.9 * startup_s))
            else:  # mid-run: once the run passed a random point of what is left, then a bit
                kill_at = t_end * (frac + rng.uniform(0.02, 0.5) * (1.0 - frac))
                kill_at = min(kill_at, last_kill_t)  # not in the last steps: the run would end
                delay = rng.uniform(0.0, 0.1)
        else:
            delay, sig = None, 0
        rec = launch(
            cmd,
            logs / f"launch{i:02d}.log",
            kill_after=delay,
            sig=sig,
            hang_s=hang_s,
            kill_at_t=kill_at,
            qoi=run_dir / "qoi.csv",
        )
        rec["kill_at_t_h"] = kill_at
        man = _read_manifest(run_dir)
        rec.update(
            launch=i,
            ranks=r,
            resume=i > 0,
            planned_signal=signal.Signals(sig).name if sig else None,
            delay_s=delay,
            progress_before=frac,
            progress_after=_progress(run_dir, t_end),
            status_after=man.get("status"),
            reason_after=man.get("reason"),
            last_t_h=man.get("last_t_h"),
            checkpoints=sorted(p.name for p in (run_dir / "checkpoints").glob("*.npz"))
            if (run_dir / "checkpoints").exists()
            else [],
        )
        launches.append(rec)
        tag = rec["sent"] or "-"
        print(
            f"  launch {i:2d}: {r} rank(s) {'resume' if i else 'start '} "
            f"signal {tag:7s} after {rec.get('sent_at_s', rec['wall_s']):6.1f} s -> exit "
            f"{rec['rc']:4d}, status {rec['status_after']}, progress "
            f"{rec['progress_before']:.2f} -> {rec['progress_after']:.2f}",
            flush=True,
        )
        if rec["hung"]:
            problems.append(
                f"launch {i} hung (> {hang_s:.0f} s; signal {tag}); log "
                f"{logs / f'launch{i:02d}.log'}"
            )
            break
        if rec["leftover_pids"]:
            problems.append(
                f"launch {i}: processes left after the launcher exited: {rec['leftover_pids']}"
            )
        if rec["sent"] is None:
            if rec["rc"] == 0:
                break
            problems.append(
                f"launch {i} ({'resume' if i else 'start'}, {r} ranks) failed "
                f"without a fault: exit {rec['rc']}:\n"
                f"{_tail(logs / f'launch{i:02d}.log')}"
            )
            break
        term_ok = rec["sent"] == "SIGTERM" and rec["rc"] == 128 + signal.SIGTERM
        if term_ok and rec["status_after"] != "interrupted":
            problems.append(
                f"launch {i}: exit 143 after SIGTERM but manifest status "
                f"{rec['status_after']!r} (expected 'interrupted')"
            )
        if rec["status_after"] == "complete":
            # the signal came after the last step (teardown): the run is done, its data complete;
            # the --resume below must leave it alone
            rec["fault_after_completion"] = True
            break
        i += 1
        if i > nfaults + 5:
            problems.append("too many launches")
            break
    faulty_wall = time.monotonic() - t_faulty

    # ------------------------------------------------------------- the run is left alone
    again = None
    if not problems:
        before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}
        again = launch(
            _run_cmd(case, run_dir, ranks[-1], sets, resume=True),
            logs / "resume_complete.log",
            kill_after=None,
            sig=0,
            hang_s=hang_s,
        )
        after = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.is_file()}
        changed = sorted(k for k in before if after.get(k) != before[k] and k != ".lock")
        again["changed_files"] = changed
        if again["rc"] != 0 or changed:
            problems.append(f"--resume of the complete run: exit {again['rc']}, changed {changed}")

    # ------------------------------------------------------------------------ checks
    man = _read_manifest(run_dir)
    if man.get("status") != "complete":
        problems.append(f"final manifest status {man.get('status')!r}")
    rows = _read_qoi(run_dir / "qoi.csv")
    qoi = check_qoi(rows, t_end)
    problems += [f"qoi.csv: {p}" for p in qoi["problems"]]
    ref_times, ref_err = field_times(ref_dir)
    times, field_err = field_times(run_dir)
    problems += [f"reference fields: {e}" for e in ref_err]
    problems += [f"fields: {e}" for e in field_err]
    missing = sorted(t for t in ref_times if t not in times)

    def _counted(files: list[str]) -> list[str]:
        # a segment's start frame repeats the state it resumed from: counted only if alone
        plain = [f for f in files if not f.endswith("(start)")]
        return plain or files[:1]

    duplicated = sorted(t for t, files in times.items() if len(_counted(files)) > 1)
    extra = sorted(
        t
        for t, files in times.items()
        if t not in ref_times and _counted(files) == files[:1] and not files[0].endswith("(start)")
    )
    segment_starts = sorted(t for t, files in times.items() if any("(start)" in f for f in files))
    if missing:
        problems.append(f"output times missing: {missing}")
    if duplicated:
        problems.append(
            "output times written twice: "
            + ", ".join(f"{t:g} ({', '.join(times[t])})" for t in duplicated)
        )
    if extra:
        problems.append(f"output times not in the reference: {extra}")
    data_lost = len(missing) + qoi["gaps"]
    diff = qoi_difference(rows[-1], ref_rows[-1]) if rows and ref_rows else None
    last_ranks = launches[-1]["ranks"]
    all_same = all(rec["ranks"] == ranks[0] for rec in launches)
    if diff is not None:
        limit = 1e-10 if all_same else max(info["tolerance"], 1e-6)
        if not diff["max_rel"] <= limit:
            problems.append(
                f"final QoIs differ from the reference by {diff['max_rel']:.3g} "
                f"({diff['column']}) > {limit:g}"
            )

    faults = [rec for rec in launches if rec["sent"]]
    by_signal: dict[str, int] = {}
    by_ranks: dict[str, int] = {}
    by_both: dict[str, int] = {}
    for rec in faults:
        by_signal[rec["sent"]] = by_signal.get(rec["sent"], 0) + 1
        by_ranks[str(rec["ranks"])] = by_ranks.get(str(rec["ranks"]), 0) + 1
        key = f"{rec['sent']}@{rec['ranks']}"
        by_both[key] = by_both.get(key, 0) + 1
    exits: dict[str, int] = {}
    for rec in faults:
        key = f"{rec['sent']}: {rec['rc']}"
        exits[key] = exits.get(key, 0) + 1
    statuses: dict[str, int] = {}
    for rec in faults:
        key = f"{rec['sent']}: {rec['status_after']}"
        statuses[key] = statuses.get(key, 0) + 1
    doc = {
        "case": str(case),
        "sets": sets,
        "seed": args.seed,
        "ranks": ranks,
        "t_end_h": t_end,
        "faults_requested": nfaults,
        "faults_injected": len(faults),
        "faults_by_signal": by_signal,
        "faults_by_ranks": by_ranks,
        "faults_by_signal_and_ranks": by_both,
        "exit_codes_after_fault": exits,
        "manifest_status_after_fault": statuses,
        "faults_after_completion": sum(1 for rec in launches if rec.get("fault_after_completion")),
        "resumes": sum(1 for rec in launches if rec["resume"]),
        "launches": launches,
        "resume_of_complete_run": again,
        "final_status": man.get("status"),
        "qoi": qoi,
        "output_times_expected": len(ref_times),
        "output_times_found": len(times),
        "output_times_missing": missing,
        "output_times_duplicated": duplicated,
        "field_segments": sorted(p.name for p in run_dir.glob("fields*.xdmf")),
        "segment_start_times": segment_starts,
        "output_times_extra": extra,
        "data_lost": data_lost,
        "final_qoi_difference": diff,
        "reference_ranks": ranks[0],
        "last_launch_ranks": last_ranks,
        "last_launch_same_ranks_as_reference": last_ranks == ranks[0],
        "all_launches_same_ranks_as_reference": all_same,
        "wall_s": {
            "reference": ref_wall,
            "faulty_total": faulty_wall,
            "faulty_launches": sum(rec["wall_s"] for rec in launches),
            "whole_benchmark": time.monotonic() - t0,
        },
        "problems": problems,
        "passed": not problems,
    }
    (out / "soak.json").write_text(json.dumps(doc, indent=2, default=str))

    w = 44
    print("\nsoak summary")
    table = [
        ("faults injected (requested)", f"{len(faults)} ({nfaults})"),
        ("  by signal", ", ".join(f"{k} {v}" for k, v in sorted(by_signal.items()))),
        ("  by rank count", ", ".join(f"{k} rank(s) {v}" for k, v in sorted(by_ranks.items()))),
        ("  by signal and ranks", ", ".join(f"{k} {v}" for k, v in sorted(by_both.items()))),
        ("  exit codes", ", ".join(f"{k} x{v}" for k, v in sorted(exits.items()))),
        ("  manifest after fault", ", ".join(f"{k} x{v}" for k, v in sorted(statuses.items()))),
        ("  landed after the last step (teardown)", str(doc["faults_after_completion"])),
        ("resumes", str(doc["resumes"])),
        ("final status", str(man.get("status"))),
        ("qoi rows / gaps", f"{qoi['rows']} / {qoi['gaps']}"),
        (
            "output times found / expected / twice",
            f"{len(ref_times) - len(missing)} / {len(ref_times)} / {len(duplicated)}",
        ),
        ("resume-segment start frames", str(len(segment_starts))),
        ("field segments", ", ".join(doc["field_segments"])),
        ("data lost", str(data_lost)),
        (
            "final QoIs max rel. diff vs reference",
            f"{diff['max_rel']:.3g} ({diff['column']})" if diff else "-",
        ),
        (
            "last launch on reference rank count",
            f"{last_ranks == ranks[0]} ({last_ranks} vs {ranks[0]}); all launches: {all_same}",
        ),
        (
            "wall: reference / faulty / total",
            f"{ref_wall:.1f} s / {faulty_wall:.1f} s / {doc['wall_s']['whole_benchmark']:.1f} s",
        ),
    ]
    for k, v in table:
        print(f"  {k:{w}s} {v}")
    if problems:
        print("\nPROBLEMS:")
        for p in problems:
            print(f"  - {p}")
    print(f"\nwritten: {out / 'soak.json'}")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
