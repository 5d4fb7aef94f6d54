"""Regenerate the example gallery (docs/gallery.md and docs/gallery/*.png) from the shipped cases.

For every shipped case (``benchmarks/cases/*.toml`` and ``examples/*/case.toml``) it runs, as
a user would::

    tumorpde run CASE -o runs/gallery/NAME --overwrite -q
    tumorpde plot runs/gallery/NAME -o docs/gallery/NAME.png

timing each command (wall clock, including start-up and the JIT), and writes the page with the
pictures, the commands, the run sizes and the times, plus ``docs/gallery/timings.json``. A case
that fails is listed with its error and the others go on. The cases run as shipped (their own
``t_end``) unless ``--set`` shortens them.

Usage::

    .venv/bin/python benchmarks/gallery.py                 # every case, 1 process each
    .venv/bin/python benchmarks/gallery.py --np 2 lung bone  # some cases, mpiexec -n 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CASES = REPO / "benchmarks" / "cases"
#: Per-case overrides, shown in the page's commands: the therapy case's 42 days of daily
#: lapatinib doses take most of an hour on 2 cores, so the gallery shows its first day
#: (loading doses of both drugs in the lesion).
CASE_SETS: dict[str, list[str]] = {"her2_brain_therapy": ["time.t_end=1 day"]}


def case_files() -> dict[str, Path]:
    """The shipped example cases by name: benchmarks/cases/NAME.toml and examples/NAME/case.toml."""
    out = {f.stem: f for f in sorted(CASES.glob("*.toml"))}
    out.update({f.parent.name: f for f in sorted((REPO / "examples").glob("*/case.toml"))})
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _timed(cmd: list[str], log: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with log.open("a") as f:
        f.write("$ " + shlex.join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - start, rc


def _tail(log: Path, n: int = 3) -> str:
    lines = [x for x in log.read_text().splitlines() if x.strip()]
    return " / ".join(lines[-n:])


def run_case(name: str, case: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run and plot one case; return its gallery entry."""
    out = args.runs / name
    picture = args.docs / "gallery" / f"{name}.png"
    log = args.runs / f"{name}.log"
    log.unlink(missing_ok=True)
    launcher = [str(BIN / "mpiexec"), "-n", str(args.np)] if args.np > 1 else []
    run_cmd = [
        str(BIN / "tumorpde"),
        "run",
        os.path.relpath(case, REPO),
        "-o",
        os.path.relpath(out, REPO),
    ]
    sets = [*CASE_SETS.get(name, []), *args.set]
    run_cmd += ["--overwrite", "-q"] + [x for s in sets for x in ("--set", s)]
    plot_cmd = [str(BIN / "tumorpde"), "plot", os.path.relpath(out, REPO)]
    plot_cmd += ["-o", os.path.relpath(picture, REPO)]
    entry: dict[str, Any] = {"case": name, "file": str(case.relative_to(REPO)), "np": args.np}
    print(f"gallery: {name}: run ...", flush=True)
    entry["run_s"], rc = _timed(launcher + run_cmd, log)
    if rc != 0:
        entry["error"] = f"tumorpde run exited {rc}: {_tail(log)}"
        return entry
    print(f"gallery: {name}: run {entry['run_s']:.1f} s; plot ...", flush=True)
    entry["plot_s"], rc = _timed(plot_cmd, log)
    if rc != 0:
        entry["error"] = f"tumorpde plot exited {rc}: {_tail(log)}"
        return entry
    manifest = json.loads((out / "manifest.json").read_text())
    res = manifest.get("resolved", {})
    entry.update(
        picture=str(picture.relative_to(args.docs)),
        description=manifest.get("description") or res.get("description", ""),
        t_end_h=res.get("time", {}).get("t_end"),
        steps=manifest.get("steps"),
        cells=(manifest.get("mesh") or {}).get("cells"),
        status=manifest.get("status"),
        commands=[
            shlex.join(["tumorpde", *run_cmd[1:]]),
            shlex.join(["tumorpde", *plot_cmd[1:]]),
        ],
    )
    print(f"gallery: {name}: plot {entry['plot_s']:.1f} s", flush=True)
    return entry


def _days(hours: Any) -> str:
    return f"{float(hours) / 24:g} d" if hours is not None else "?"


def write_page(entries: list[dict[str, Any]], args: argparse.Namespace) -> Path:
    """Write docs/gallery.md."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    shown = {e["case"] for e in entries}
    missing = [n for n in case_files() if n not in shown]
    lines = [
        "# Example gallery",
        "",
        "One picture per shipped example case (`benchmarks/cases/*.toml`, `examples/*/case.toml`), "
        "made by the commands "
        "shown under it: `tumorpde run` with the case as shipped, then `tumorpde plot` with the "
        "default (`auto`) preset at the last stored time. Regenerate the page with "
        "`.venv/bin/python benchmarks/gallery.py`.",
        "",
        f"Times are wall-clock seconds of each whole command (start-up, mesh reading and the "
        f"form compilation included) on {args.np} MPI process(es) of a {os.cpu_count()}-core "
        f"{_cpu()} machine shared with other jobs, so read them as indicative only; "
        f"generated {when}.",
        "",
        *(
            [f"Every case ran with `{' '.join('--set ' + x for x in args.set)}`.", ""]
            if args.set
            else []
        ),
        *(
            [f"Shipped cases not in this regeneration: {', '.join(missing)}.", ""]
            if missing
            else []
        ),
        "| case | simulated | steps | cells | run (s) | plot (s) |",
        "|---|---|---|---|---|---|",
    ]
    for e in entries:
        if "error" in e:
            lines.append(f"| [{e['case']}](#{e['case']}) | failed | | | | |")
        else:
            lines.append(
                f"| [{e['case']}](#{e['case']}) | {_days(e['t_end_h'])} | {e['steps']} | "
                f"{e['cells'] or ''} | {e['run_s']:.1f} | {e['plot_s']:.1f} |"
            )
    for e in entries:
        lines += ["", f"## {e['case']}", ""]
        if "error" in e:
            lines += [f"`{e['file']}` failed: {e['error']}"]
            continue
        lines += [
            e["description"],
            "",
            f"![{e['case']}]({e['picture']})",
            "",
            "```sh",
            *e["commands"],
            "```",
            "",
            f"run {e['run_s']:.1f} s ({_days(e['t_end_h'])} simulated, {e['steps']} steps), "
            f"plot {e['plot_s']:.1f} s.",
        ]
    page = args.docs / "gallery.md"
    page.write_text("\n".join(lines) + "\n")
    return page


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cases", nargs="*", help="case names (default: every shipped case)")
    p.add_argument("--np", type=int, default=1, help="MPI processes per run (default 1)")
    p.add_argument("--runs", type=Path, default=REPO / "runs" / "gallery", help="run folder")
    p.add_argument("--docs", type=Path, default=REPO / "docs", help="docs folder")
    p.add_argument("--set", action="append", default=[], help="override for every case")
    args = p.parse_args()
    shipped = case_files()
    if args.cases:
        unknown = set(args.cases) - set(shipped)
        if unknown:
            p.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    files = {n: f for n, f in shipped.items() if not args.cases or n in args.cases}
    args.runs = args.runs.resolve()
    args.docs = args.docs.resolve()
    args.runs.mkdir(parents=True, exist_ok=True)
    (args.docs / "gallery").mkdir(parents=True, exist_ok=True)
    # keep the entries of cases not re-run this time (regenerate a subset with `gallery.py NAME`)
    timings = args.docs / "gallery" / "timings.json"
    known = {e["case"]: e for e in json.loads(timings.read_text())} if timings.exists() else {}
    failed = False
    for name, f in files.items():
        entry = run_case(name, f, args)
        failed |= "error" in entry
        known[name] = entry
        entries = [known[n] for n in shipped if n in known]
        timings.write_text(json.dumps(entries, indent=1) + "\n")  # after every case
        page = write_page(entries, args)
    print(f"gallery: wrote {page}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
