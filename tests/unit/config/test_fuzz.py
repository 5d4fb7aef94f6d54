"""Property-based fuzzing of case validation (hypothesis).

Mutations of the shipped cases (deleted keys, swapped types, extreme and non-finite numbers,
garbage unit strings, unknown keys, broken ``extends``, random regions) go through
``tumorpde validate`` in-process. Every input must end with exit code 0 or 2, a message that
names a field path or the file, within the deadline, and without writing any file. Serial: each
rank of ``mpiexec`` would draw different examples into the same directories.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tumorpde.cli import main
from tumorpde.config import read_case_tables
from tumorpde.output.rundir import to_toml
from tumorpde.units import to_internal

pytestmark = pytest.mark.serial

CASES = sorted((REPO / "benchmarks" / "cases").glob("*.toml"))

SMALL_BOX = {
    "name": "fuzz_box",
    "mesh": {
        "kind": "box",
        "size": ["6 mm", "4 mm", "4 mm"],
        "cells": [3, 2, 2],
        "default_region": "grey",
        "regions": [{"name": "white", "min": [3, 0, 0], "max": [6, 4, 4]}],
    },
    "time": {"t_end": "2 day", "dt": "12 h"},
    "tumor": {
        "proliferation_rate": "0.3 1/day",
        "motility": "0.13 mm^2/day",
        "initial": {"kind": "gaussian", "center": ["3 mm", "2 mm", "2 mm"], "radius": "1 mm"},
    },
    "regions": {"white": {"tumor": {"motility": "0.65 mm^2/day"}}},
}

FUZZ = settings(
    max_examples=150,
    deadline=5000,  # ms per example: a hang or a runaway computation fails the test
    database=None,  # no .hypothesis directory in the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _shipped(path: Path) -> dict[str, Any]:
    tables = read_case_tables(path)
    mesh = tables.get("mesh")
    if isinstance(mesh, dict) and "path" in mesh:
        mesh["path"] = str((path.parent / mesh["path"]).resolve())
    return tables


BASES = [SMALL_BOX, *(_shipped(p) for p in CASES)]


# ------------------------------------------------------------------------------ strategies
EXTREME = st.sampled_from(
    [math.inf, -math.inf, math.nan, 1e308, -1e308, 0, 0.0, -1, 1e-300, 10**30, -(10**30), 2**63]
)
UNITS = st.sampled_from(
    ["mm", "1/day", "mm^2/day", "nM", "h", "day", "cells/mL", "1/(M*s)", "mm^2/h/nM", "foo"]
)
GARBAGE_UNIT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "9**9**9 mm^2/day",
            "1e400 mm",
            "nan 1/day",
            "inf h",
            "-inf mm",
            "1 mm^99",
            "1 ((((mm))))",
            "1 mm + 2 mm",
            "1 mm; import os",
            "1 __import__('os')",
            "1e-9 h",
            "1e9 day",
            "0 h",
            "-3 mm",
            "1 " + "mm*" * 80 + "mm",
        ]
    ),
    st.builds(lambda x, u: f"{x!r} {u}", st.floats(allow_nan=True, allow_infinity=True), UNITS),
)
SCALAR = st.one_of(
    EXTREME,
    GARBAGE_UNIT,
    st.booleans(),
    st.integers(),
    st.floats(),
    st.just([]),
    st.just({}),
    st.lists(st.integers(-5, 5), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(tables: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = []
    if isinstance(tables, dict):
        for k, v in tables.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(tables, list):
        for i, v in enumerate(tables):
            out.append((*prefix, i))
            out += _paths(v, (*prefix, i))
    return out


def _parent(tables: Any, path: tuple[Any, ...]) -> Any:
    node = tables
    for k in path[:-1]:
        node = node[k]
    return node


def _mutate(data: st.DataObject, tables: dict[str, Any]) -> dict[str, Any]:
    tables = json.loads(json.dumps(tables, allow_nan=True))
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        paths = _paths(tables)
        op = data.draw(
            st.sampled_from(["delete", "set", "unknown", "extends", "region", "retype"]),
            label="op",
        )
        if op in ("delete", "set", "retype") and paths:
            path = data.draw(st.sampled_from(paths), label="path")
            parent = _parent(tables, path)
            if op == "delete":
                if isinstance(parent, dict):
                    del parent[path[-1]]
                else:
                    parent.pop(path[-1])
            elif op == "set":
                parent[path[-1]] = data.draw(SCALAR, label="value")
            else:  # a table where a value was, and the other way round
                old = parent[path[-1]]
                parent[path[-1]] = [old] if not isinstance(old, list) else {"x": old}
        elif op == "unknown":
            tables[data.draw(st.sampled_from(["tumr", "time", "mesh", "xyz"]))] = {
                data.draw(st.text(min_size=1, max_size=8), label="key"): 1
            }
        elif op == "extends":
            tables["extends"] = data.draw(
                st.sampled_from(["nope.toml", ".", "/", "case.toml", 3, "../../../etc/passwd"])
            )
        elif op == "region":
            name = data.draw(st.sampled_from(["white", "grey", "liver", "nowhere", "1bad"]))
            key = data.draw(
                st.sampled_from(
                    ["tumor.motility", "tumor.death_rate", "vessels.barrier", "oxygen.x", "q"]
                )
            )
            section, _, leaf = key.partition(".")
            value = data.draw(SCALAR, label="region value")
            regions = tables.setdefault("regions", {})
            if isinstance(regions, dict):
                regions.setdefault(name, {})
                if isinstance(regions[name], dict):
                    regions[name][section] = {leaf or "v": value}
    return tables


def _check(rc: int, err: str, case: Path) -> None:
    assert rc in (0, 2), (rc, err)
    if rc == 2:
        assert "Traceback" not in err
        assert f"invalid case {case}" in err or str(case) in err, err
        # at least one "  field.path: message" line (or "(file)" for the file itself)
        assert re.search(r"^  \S+: \S", err, re.M), err


# -------------------------------------------------------------------------------- the tests
@FUZZ
@given(data=st.data())
def test_mutated_cases_fail_cleanly(tmp_path_factory, data, capsys):
    base = data.draw(st.sampled_from(BASES), label="base")
    tables = _mutate(data, base)
    d = tmp_path_factory.mktemp("fuzz")
    case = d / "case.toml"
    case.write_text(to_toml(tables))
    tomllib.loads(case.read_text())  # the writer itself is right
    rc = main(["validate", str(case)])
    _check(rc, capsys.readouterr().err, case)
    assert [p.name for p in d.iterdir()] == ["case.toml"]  # nothing written


@FUZZ
@given(text=st.text(max_size=200))
def test_garbage_case_text_fails_cleanly(tmp_path_factory, text, capsys):
    d = tmp_path_factory.mktemp("garbage")
    case = d / "case.toml"
    case.write_text(text)
    rc = main(["validate", str(case)])
    _check(rc, capsys.readouterr().err, case)
    assert rc == 2  # no text is a whole case


@settings(max_examples=150, deadline=500, database=None)
@given(value=GARBAGE_UNIT, kind=st.sampled_from(["length", "time", "rate", "diffusivity"]))
def test_unit_strings_are_fast_and_finite(value, kind):
    try:
        x = to_internal(value, kind)
    except ValueError:
        return
    assert math.isfinite(x)
