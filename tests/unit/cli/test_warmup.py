"""``tumorpde warmup``: after it, a ``tumorpde run`` of the case compiles no kernel.

The warm-up runs the case in a child process; the run afterwards is another fresh process, as a
user's would be, and counts its JIT cache misses (the suite's cache: the assertion is that the
run compiles nothing, whoever compiled the kernels before). Serial and under ``mpiexec -n 2``
(rank 0 warms, the other rank waits).
"""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO, box_toml

from tumorpde.cli import main
from tumorpde.cli.warmup import _LAUNCHER_PREFIXES, default_cases


def test_default_cases_are_the_shipped_ones():
    cases = default_cases()
    names = {c.name for c in cases}
    assert {"default.toml", "her2_brain_metastasis.toml"} <= names
    assert all(c.is_file() for c in cases)
    assert any("library" in c.parts for c in cases)  # the packaged case
    assert len(cases) == len(list((REPO / "benchmarks" / "cases").glob("*.toml"))) + 1


#: A ``tumorpde run`` in a fresh process that prints how many kernels it had to compile (JIT
#: cache misses: FFCx creates the module's C file only when it is not in the cache).
_COUNTING_RUN = """
import sys
import tumorpde.fem.backend
import ffcx.codegeneration.jit as jit
from tumorpde.cli import main
misses = []
lookup = jit.get_cached_module
def counted(name, *args):
    found = lookup(name, *args)
    if found[0] is None:
        misses.append(name)
    return found
jit.get_cached_module = counted
rc = main(sys.argv[1:])
print("MISSES", len(misses))
sys.exit(rc)
"""


def test_run_after_warmup_compiles_nothing(shared_tmp, comm, capsys):
    case = shared_tmp / "warm_box.toml"
    if comm.rank == 0:
        case.write_text(box_toml("warm_box", nx=4, t_end="1 day", output_every="1 day"))
    comm.barrier()
    assert main(["warmup", str(case)]) == 0
    out = capsys.readouterr().out
    if comm.rank == 0:
        assert "warm_box.toml" in out and " ok " in out and "in the cache" in out
        # a user's run in a fresh process (2 steps, output at the end; warmup ran 1 step)
        env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_PREFIXES)}
        cmd = [sys.executable, "-c", _COUNTING_RUN, "run", str(case), "-o"]
        cmd += [str(shared_tmp / "run"), "--quiet"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "MISSES 0" in proc.stdout, proc.stdout[-500:]
    comm.barrier()


def test_warmup_reports_a_broken_case(shared_tmp, comm, capsys):
    case = shared_tmp / "broken.toml"
    if comm.rank == 0:
        case.write_text('name = "broken"\n[time]\nt_end = "not a time"\n')
    comm.barrier()
    assert main(["warmup", str(case)]) == 1
    if comm.rank == 0:
        assert "failed" in capsys.readouterr().out
