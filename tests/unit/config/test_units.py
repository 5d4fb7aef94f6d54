"""Unit conversions to internal units (mm, h, nM), checked against hand-computed values."""

import math
import re
import time

import pytest
from helpers import REPO

from tumorpde.units import (
    check_unit_expression,
    receptors_per_cell_to_nM,
    split_quantity,
    to_internal,
)


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        ("1 cm^2/s", "diffusivity", 3.6e5),
        ("1e-6 cm^2/s", "diffusivity", 0.36),
        ("1 um^2/s", "diffusivity", 3.6e-3),
        ("1 cm^2/day", "diffusivity", 100 / 24),
        ("1e7 1/M/s", "second_order_rate", 36.0),
        ("1 1/(M*s)", "second_order_rate", 3.6e-6),
        ("1e-3 1/s", "rate", 3.6),
        ("0.012 1/day", "rate", 0.0005),
        ("1e8 cells/mL", "cell_density", 1e5),
        ("2 ug/mL", "concentration", None),  # mass concentration: wrong dimension
        ("1 nM/h", "concentration_rate", 1.0),
        ("1 pM", "concentration", 1e-3),
        ("5 cm", "length", 50.0),
        ("3 day", "time", 72.0),
        (0.25, "rate", 0.25),
        ("0.25", "rate", 0.25),
    ],
)
def test_conversions(text, kind, expected):
    if expected is None:
        with pytest.raises(ValueError, match="expected a concentration"):
            to_internal(text, kind)
    else:
        assert to_internal(text, kind) == pytest.approx(expected, rel=1e-12)


def test_receptor_number_to_concentration():
    # 1e5 receptors/cell at 1e8 cells/mL (= 1e5 /mm^3): 1e5 * 1e8 / 6.022e23 / 1e-3 L = 16.6 nM.
    assert receptors_per_cell_to_nM(1e5, 1e5) == pytest.approx(16.6054, rel=1e-4)


@pytest.mark.parametrize("bad", ["3 mm", "abc", "1 foo/h", True, [1, 2]])
def test_bad_rates_rejected(bad):
    with pytest.raises(ValueError):
        to_internal(bad, "rate")


# ----------------------------------------------------------------- hardening: the unit grammar


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("9**9**9 mm^2/day", "expected a unit name"),
        ("1e400 mm", "out of range"),
        ("nan 1/day", "must be finite"),
        ("inf", "not finite"),
        ("-inf h", "must be finite"),
        ("1 mm^5", "exponent 5"),
        ("1 mm^2^2", "repeated exponent"),
        ("1 ((((mm))))", "nested too deep"),
        ("1 mm + 2 mm", "unexpected character '+'"),
        ("1 mm 2", "unexpected '2'"),
        ("1 __import__('os')", "unexpected character"),
        ("1 " + "mm*" * 100 + "mm", "too long"),
        ("mm", "expected '<number> <unit>'"),
    ],
)
def test_unit_strings_without_arithmetic(text, fragment):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=re.escape(fragment)):
        to_internal(text, "length")
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan, 10**400, {"value": math.nan}])
def test_non_finite_numbers_rejected(value):
    with pytest.raises(ValueError, match=r"finite|out of range"):
        to_internal(value, "time")


def test_overflow_after_conversion_rejected():
    with pytest.raises(ValueError, match="not finite"):
        to_internal("1e300 km^4/mm^3", "length")


@pytest.mark.parametrize("unit", ["mm^2/day", "1/(M*s)", "mm^2/h/nM", "ug*h/mL", "m**-3", "1/M/s"])
def test_unit_grammar_accepts(unit):
    check_unit_expression(unit)


def test_every_shipped_unit_string_parses():
    """Every quantity string and unit of the library, the cases and the README parses."""
    files = [
        *(REPO / "tumorpde" / "library" / "data").rglob("*.toml"),
        *(REPO / "benchmarks" / "cases").glob("*.toml"),
        REPO / "README.md",
    ]
    quantity = re.compile(r'"([-+]?\d[\d.]*(?:[eE][-+]?\d+)?) ([^"\s,;]+)"')
    unit = re.compile(r'unit *= *"([^"]*)"')
    seen = 0
    for path in files:
        text = path.read_text()
        for number, u in quantity.findall(text):
            if not re.fullmatch(r"[\w^*/()+-]+", u) or u in ("x", "u"):
                continue  # prose in notes ("... 6x normal")
            split_quantity(f"{number} {u}")
            seen += 1
        for u in unit.findall(text):
            if u not in ("", "1", "{unit}"):
                check_unit_expression(u)
                seen += 1
    assert seen > 300
