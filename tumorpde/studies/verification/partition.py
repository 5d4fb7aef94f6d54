"""Partition invariance: the same coupled run on the whole communicator and on one rank.

* ``partition``: integrals, H1 seminorms and extrema of every species after a coupled run on all
  ranks agree with the run on rank 0 alone (a sub-communicator) to 1e-9 relative.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tumorpde.config import config_from_dict
from tumorpde.output.qoi import global_max, global_min
from tumorpde.studies.verification.harness import (
    _NAME,
    SPECIES,
    Row,
    _case,
    _dx,
    _integral,
    _march,
    _row,
    _setup,
)

__all__ = ["case_partition"]


def _partition_qois(comm: Any) -> list[float]:
    import ufl

    cfg = config_from_dict(
        _case(
            mesh={"kind": "box", "size": [1.0] * 3, "cells": [7, 6, 5]},
            tumor={"initial": {"kind": "gaussian", "center": [0.3, 0.5, 0.5], "radius": 0.3}},
            ligand={"initial": 0.2},
        )
    )
    p = _setup(cfg, comm)
    p.state.fields[_NAME["ligand"]].interpolate(lambda x: 1.0 + np.sin(3 * x[0]) * np.cos(2 * x[1]))
    p.state.accept()
    _march(p, 1.0, 0.25)
    dx = _dx(p.domain.mesh, 2)
    out = []
    for s in SPECIES:
        f = p.state.fields[_NAME[s]]
        out += [
            _integral(comm, f * dx),
            math.sqrt(_integral(comm, ufl.inner(ufl.grad(f), ufl.grad(f)) * dx)),
        ]
        out += [global_min(f), global_max(f)]
    p.destroy()
    return out


def case_partition(comm: Any, full: bool = False) -> list[Row]:
    """The coupled run on all ranks against the same run on rank 0 alone."""
    from mpi4py import MPI

    here = _partition_qois(comm)
    ref = None
    if comm.size > 1:
        sub = comm.Split(0 if comm.rank == 0 else MPI.UNDEFINED, 0)
        if comm.rank == 0:
            ref = _partition_qois(sub)
            sub.Free()
        ref = comm.bcast(ref, root=0)
    else:
        ref = here
    dev = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(here, ref, strict=True))
    return [
        _row(
            "partition",
            f"max rel. QoI difference, {comm.size} ranks vs 1",
            0.0,
            dev,
            1e-9,
            "le",
            qois=here,
            ranks=comm.size,
        )
    ]
