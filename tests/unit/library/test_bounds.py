"""Hardening of drug files and regimens: finite values, dose counts bounded before scheduling."""

import math
import time

import pytest

from tumorpde.library.drugs import MAX_DOSES, DrugError, Regimen, drug_from_dict, load_drug
from tumorpde.library.pk import schedule


def _regimen(**kw):
    base = {"route": "iv", "dose": "6 mg/kg", "interval": "3 week"}
    return Regimen.model_validate({**base, **kw})


def test_dose_count_matches_the_schedule():
    for kw, t_end in (
        ({}, 24 * 7 * 12),
        ({"on": "14 day", "off": "14 day", "interval": "12 h"}, 24 * 90),
        ({"cycles": 3}, 24 * 365),
        ({"stop": "30 day", "interval": "1 day"}, 24 * 365),
    ):
        r = _regimen(**kw)
        n = len(schedule(r, None, t_end))
        assert n <= r.dose_count(t_end) <= n + r.doses_per_cycle  # the last cycle counts whole


def test_tiny_interval_is_refused_before_building_doses():
    r = _regimen(interval="1e-9 h")
    assert r.dose_count(24 * 42) > 1e10
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="above the cap"):
        schedule(r, None, 24 * 42)
    assert time.perf_counter() - t0 < 0.1
    assert _regimen(interval="1 day", cycles=10**12).dose_count(math.inf) > MAX_DOSES


@pytest.mark.parametrize("bad", ["inf mg/kg", "nan mg", "1e400 mg", "9**9 mg"])
def test_dose_strings_must_be_finite_plain_units(bad):
    with pytest.raises(ValueError):
        _regimen(dose=bad)


def test_drug_file_values_must_be_finite():
    data = load_drug("trastuzumab").model_dump()  # internal values; rebuild one table
    spec = {
        "value": math.inf,
        "unit": "g/mol",
        "source": "test",
        "confidence": "M",
    }
    raw = {"name": "x", "mechanism": "receptor_antibody", "targets": ["HER2"]}
    raw["molecular_weight"] = spec
    with pytest.raises(DrugError) as exc:
        drug_from_dict(raw, "x.toml")
    assert any(p == "molecular_weight" and "finite" in m for p, m in exc.value.problems), (
        exc.value.problems,
        data["name"],
    )
