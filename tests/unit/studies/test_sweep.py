"""Sweep specs: grid, list, samples, distributions, units, errors, ids (no MPI, no DOLFINx)."""

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, box_case

from tumorpde.library import read_toml
from tumorpde.output.rundir import to_toml
from tumorpde.studies.sweep import (
    SampledParam,
    SweepError,
    VaryEntry,
    load_sweep,
    run_id,
    sample_unit,
    sweep_from_dict,
)
from tumorpde.units import to_internal


@pytest.fixture
def base(tmp_path: Path) -> Path:
    path = tmp_path / "case.toml"
    path.write_text(to_toml(box_case()))
    return path


def sweep(base: Path, text: str, validate: bool = True):
    path = base.parent / "sweep.toml"
    path.write_text(f'base = "{base.name}"\n' + text)
    return load_sweep(path, validate=validate)


def test_base_round_trips(base):
    assert read_toml(base)["name"] == "test_box"


def test_grid_is_the_cartesian_product_crossed_with_arms(base):
    s = sweep(
        base,
        """
[[vary]]
param = "tumor.proliferation_rate"
values = ["0.1 1/day", "0.2 1/day", "0.3 1/day"]
[[vary]]
param = "tumor.motility"
values = [0.001, 0.002]
[arms.a]
[arms.b]
"receptor.k_on" = "2e6 1/M/s"
""",
    )
    assert len(s.runs) == 12
    assert s.params == ["tumor.proliferation_rate", "tumor.motility"]
    combos = {
        (r.values["tumor.proliferation_rate"], r.values["tumor.motility"], r.arm) for r in s.runs
    }
    assert len(combos) == 12
    b = next(r for r in s.runs if r.arm == "b")
    assert b.overrides["receptor.k_on"] == "2e6 1/M/s"
    cfg = s.config(b)
    assert cfg.name.endswith(b.id)
    assert math.isclose(
        cfg.pathways["EGFR"].receptor.k_on, to_internal("2e6 1/M/s", "second_order_rate")
    )
    assert all(r.cost > 0 for r in s.runs)


def test_explicit_runs_and_common_overrides(base):
    s = sweep(
        base,
        """
set = { "time.t_end" = "2 h" }
[[runs]]
"tumor.proliferation_rate" = "0.1 1/day"
[[runs]]
tumor.motility = 0.002
""",
    )
    assert [r.values for r in s.runs] == [
        {"tumor.proliferation_rate": "0.1 1/day"},
        {"tumor.motility": 0.002},
    ]
    assert all(s.config(r).time.t_end == 2.0 for r in s.runs)
    assert s.params == ["tumor.proliferation_rate", "tumor.motility"]


SAMPLED = """
[[vary]]
param = "tumor.proliferation_rate"
distribution = "log-uniform"
bounds = ["0.01 1/day", "1 1/day"]
[[vary]]
param = "tumor.motility"
distribution = "uniform"
bounds = [0.001, 0.002]
[sample]
method = "{method}"
n = 64
seed = {seed}
"""


@pytest.mark.parametrize("method", ["random", "lhs", "sobol"])
def test_samples_are_reproducible_from_the_seed(base, method):
    a = sweep(base, SAMPLED.format(method=method, seed=7), validate=False)
    b = sweep(base, SAMPLED.format(method=method, seed=7), validate=False)
    c = sweep(base, SAMPLED.format(method=method, seed=8), validate=False)
    assert [r.values for r in a.runs] == [r.values for r in b.runs]
    assert [r.id for r in a.runs] == [r.id for r in b.runs]
    assert [r.values for r in a.runs] != [r.values for r in c.runs]
    rates = np.array([float(r.values["tumor.proliferation_rate"].split()[0]) for r in a.runs])
    assert all(r.values["tumor.proliferation_rate"].endswith(" 1/day") for r in a.runs)
    assert rates.min() >= 0.01 and rates.max() <= 1.0
    mot = np.array([r.values["tumor.motility"] for r in a.runs])
    assert mot.min() >= 0.001 and mot.max() <= 0.002
    # log-uniform: log10 of the rate is uniform on [-2, 0] (mean -1); uniform: mean 0.0015
    assert abs(np.log10(rates).mean() + 1) < 0.15
    assert abs(mot.mean() - 0.0015) < 1e-4


def test_latin_hypercube_stratifies():
    u = sample_unit("lhs", 10, 2, seed=1)
    for j in range(2):
        assert sorted(np.floor(u[:, j] * 10).astype(int)) == list(range(10))


def test_normal_and_log_normal_transforms():
    u = sample_unit("random", 20000, 1, seed=3)[:, 0]
    normal = SampledParam.from_entry(
        VaryEntry(param="a.b", distribution="normal", mean="0.5 1/day", std="0.1 1/day")
    )
    x = normal.transform(u)
    assert normal.unit == "1/day"
    assert abs(x.mean() - 0.5) < 0.005 and abs(x.std() - 0.1) < 0.005
    logn = SampledParam.from_entry(
        VaryEntry(param="a.b", distribution="log-normal", median=2.0, sigma=0.5)
    )
    y = logn.transform(u)
    assert y.min() > 0
    assert abs(np.median(y) - 2.0) < 0.05
    assert abs(np.log(y).std() - 0.5) < 0.01


def test_bounds_in_different_units_are_converted_to_the_first_unit():
    p = SampledParam.from_entry(
        VaryEntry(param="a.b", distribution="uniform", bounds=["1 1/day", "0.5 1/h"])
    )
    assert p.unit == "1/day" and p.a == 1.0 and math.isclose(p.b, 12.0)
    assert p.value(3.0) == "3 1/day"
    mixed = SampledParam.from_entry(
        VaryEntry(param="a.b", distribution="uniform", bounds=["1 1/day", 1.0])
    )  # a number is in internal units (1/h): everything in internal units
    assert mixed.unit is None and math.isclose(mixed.a, 1 / 24) and mixed.b == 1.0


def test_errors_name_their_field_paths(base):
    with pytest.raises(SweepError) as exc:
        sweep(
            base,
            """
typo = 1
[[vary]]
param = "tumor.proliferation_rate"
distribution = "normal"
bounds = [1, 2]
[[vary]]
param = "tumor.motility"
values = [1]
distribution = "uniform"
[sample]
n = 0
""",
        )
    problems = dict(exc.value.problems)
    assert "unknown key" in problems["typo"]
    assert "required" in problems["vary.0.mean"]
    assert "not used" in problems["vary.0.bounds"]
    assert "either 'values'" in problems["vary.1.values"]
    assert "sample.n" in problems
    assert str(exc.value).startswith("invalid sweep")


def test_bad_bounds_and_missing_sample(base):
    with pytest.raises(SweepError) as exc:
        sweep(
            base,
            """
[[vary]]
param = "tumor.proliferation_rate"
distribution = "log-uniform"
bounds = ["0 1/day", "1 mm"]
""",
        )
    problems = dict(exc.value.problems)
    assert "sample" in problems
    with pytest.raises(SweepError) as exc:
        sweep(
            base,
            """
[[vary]]
param = "tumor.proliferation_rate"
distribution = "log-uniform"
bounds = ["0.1 1/day", "1 mm"]
[sample]
n = 2
""",
        )
    assert "vary.0.bounds" in dict(exc.value.problems)


def test_every_invalid_run_is_reported_before_anything_runs(base):
    with pytest.raises(SweepError) as exc:
        sweep(
            base,
            """
[[vary]]
param = "tumor.proliferation_rate"
values = ["0.1 1/day", -1, -2, "1 mm"]
[[vary]]
param = "tumor.motilty"
values = [1]
""",
        )
    problems = exc.value.problems
    fields = [f for f, _ in problems]
    assert "tumor.motilty" in fields
    assert any("in 4 of 4 runs" in m for f, m in problems if f == "tumor.motilty")
    neg = [m for f, m in problems if f == "tumor.proliferation_rate"]
    assert any("in 2 of 4 runs" in m for m in neg)  # -1 and -2: one line for both
    assert any("1 mm" in m for m in neg)


def test_stable_ids(base):
    assert run_id({"a": 1, "b": "2 mm"}) == run_id({"b": "2 mm", "a": 1})
    assert run_id({"a": 1}) != run_id({"a": 2})
    assert run_id({"a": 1}) == "015abd7f5cc5"  # the same on every machine and Python
    text = """
[[vary]]
param = "tumor.motility"
values = [0.001, 0.002]
"""
    a = sweep(base, text, validate=False)
    b = sweep(base, text + '[[vary]]\nparam = "tumor.death_rate"\nvalues = [0.0]\n', validate=False)
    assert [r.id for r in a.runs] == [run_id({"tumor.motility": v}) for v in (0.001, 0.002)]
    assert {r.id for r in a.runs}.isdisjoint(r.id for r in b.runs)


def test_duplicate_runs_are_refused(base):
    with pytest.raises(SweepError, match="same overrides"):
        sweep(base, '[[runs]]\n"tumor.motility" = 0.001\n[[runs]]\n"tumor.motility" = 0.001\n')


def test_mesh_path_is_relative_to_the_sweep_file(tmp_path):
    case = box_case(mesh={"kind": "file", "path": str(REPO / "meshes" / "brain_phantom.msh")})
    (tmp_path / "case.toml").write_text(to_toml(case))
    text = 'base = "case.toml"\n[[runs]]\n"mesh.path" = "sub/x.msh"\n'
    s = sweep_from_dict(tomllib.loads(text), tmp_path / "s.toml", validate=False)
    assert s.runs[0].overrides["mesh.path"] == "sub/x.msh"  # the id hashes what was written
    with pytest.raises(SweepError) as exc:
        sweep_from_dict(tomllib.loads(text), tmp_path / "s.toml")
    assert f"mesh file {tmp_path / 'sub' / 'x.msh'} does not exist" in str(exc.value)


def test_compare_arms_are_costed_by_their_drugs():
    """IV doses restart the adaptive step size: the arms start most expensive first.

    Measured (HER2 brain comparison, 42 d): untreated 64 steps, lapatinib (oral) 111,
    trastuzumab (IV) 197, both 290. Equal costs ran them in the listed order, the two
    slowest last (611 s instead of ~450 s on 2 ranks).
    """
    from tumorpde.config import load_config
    from tumorpde.studies.batch import Scheduler
    from tumorpde.studies.compare import arm_config
    from tumorpde.studies.sweep import estimate_cost

    cfg = load_config(REPO / "benchmarks" / "cases" / "her2_brain_therapy.toml")
    arms = cfg.compare.arms
    costs = [estimate_cost(arm_config(cfg, drugs, arm)) for arm, drugs in arms.items()]
    order = [list(arms)[i] for i in Scheduler(costs).queue]
    assert order == ["trastuzumab+lapatinib", "trastuzumab", "lapatinib", "untreated"]


def test_a_base_with_compare_arms_takes_an_untreated_arm(tmp_path):
    """A sweep arm may remove the drugs that the base case's [compare] arms name.

    her2_brain_therapy.toml has [compare] arms; an untreated arm failed their drug check. The
    sweep's runs do not carry [compare].
    """
    base = REPO / "benchmarks" / "cases" / "her2_brain_therapy.toml"
    path = tmp_path / "sweep.toml"
    path.write_text(
        f'base = "{base}"\n'
        '[set]\n"time.t_end" = "1 day"\n'
        "[arms.untreated]\n"
        '"therapy.treatments" = []\n'
        "[arms.both]\n"
    )
    s = load_sweep(path)
    assert [r.arm for r in s.runs] == ["untreated", "both"]
    untreated, both = (s.config(r) for r in s.runs)
    assert untreated.compare is None and both.compare is None
    assert not untreated.therapy.treatments
    assert len(both.therapy.treatments) == 2
