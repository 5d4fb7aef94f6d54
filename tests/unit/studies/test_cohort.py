"""Virtual-cohort response from synthetic batch summaries (pure: no simulation, no MPI)."""

import csv
import json
import math

import pytest

from tumorpde.studies.cohort import (
    burden_at,
    cohort_response,
    control_arm,
    format_response,
    pair_runs,
    write_cohort,
)


def summary(burdens, start=10.0, status=None):
    """Rows of a samples x arms batch: ``burdens[sample][arm]`` is the final burden."""
    rows = []
    for s, arms in burdens.items():
        for arm, b in arms.items():
            rows.append(
                {
                    "run": f"{s}-{arm}",
                    "arm": arm,
                    "sample": s,
                    "organ": f"organ_{s}",
                    "status": (status or {}).get((s, arm), "complete"),
                    "tumor_burden_mm3_initial": str(start),
                    "tumor_burden_mm3_final": str(b),
                }
            )
    return rows


def test_control_arm_is_declared_or_the_one_without_treatments():
    arms = {"drug": {"therapy.treatments": [{"drug": "x"}]}, "none": {"therapy.treatments": []}}
    assert control_arm(arms) == "none"
    assert control_arm(arms, "drug") == "drug"
    assert control_arm({"a": {}, "b": {"tumor.motility": 1}}) is None
    with pytest.raises(ValueError, match="not an arm"):
        control_arm(arms, "placebo")


def test_pairs_each_treated_run_with_the_control_of_its_sample():
    rows = summary(
        {
            "s1": {"ctl": 100.0, "A": 50.0, "B": 90.0},
            "s2": {"ctl": 200.0, "A": 20.0, "B": 210.0},
            "s3": {"ctl": 80.0, "A": 4.0, "B": 8.0},
        }
    )
    pairs = pair_runs(rows, "ctl", keep=["organ"])
    assert len(pairs) == 6
    by = {(p["sample"], p["arm"]): p for p in pairs}
    assert by["s1", "A"]["ratio"] == pytest.approx(0.5)
    assert by["s2", "B"]["ratio"] == pytest.approx(1.05)
    assert by["s3", "A"]["ratio_start"] == pytest.approx(0.4)  # 4 / 10 at the start
    assert by["s3", "A"]["control_run"] == "s3-ctl"
    assert by["s2", "A"]["organ"] == "organ_s2"

    resp = {r["arm"]: r for r in cohort_response(pairs, samples=3)}
    a = resp["A"]  # ratios 0.5, 0.1, 0.05
    assert a["n"] == 3 and a["missing"] == 0
    assert a["median_ratio"] == pytest.approx(0.1)
    assert a["q25_ratio"] == pytest.approx(0.075) and a["q75_ratio"] == pytest.approx(0.3)
    assert a["iqr_ratio"] == pytest.approx(0.225)
    assert a["frac_reduction_ge_20"] == pytest.approx(1.0)
    assert a["frac_reduction_ge_50"] == pytest.approx(1.0)  # 0.5 counts (>= 50 %)
    # versus the start burden 10: final 50, 20, 4 -> only s3 shrank (0.4)
    assert a["frac_volumetric_ge_20"] == pytest.approx(1 / 3)
    assert a["frac_volumetric_ge_50"] == pytest.approx(1 / 3)
    b = resp["B"]  # ratios 0.9, 1.05, 0.1
    assert b["median_ratio"] == pytest.approx(0.9)
    assert b["frac_reduction_ge_20"] == pytest.approx(1 / 3)
    assert b["frac_reduction_ge_50"] == pytest.approx(1 / 3)
    assert b["frac_volumetric_ge_50"] == 0.0  # s3: 8 / 10 = 0.8 counts for >= 20 % only
    assert b["frac_volumetric_ge_20"] == pytest.approx(1 / 3)
    text = format_response(cohort_response(pairs), "ctl")
    assert "A" in text and "ctl" in text


def test_failed_or_missing_runs_are_left_out():
    rows = summary(
        {"s1": {"ctl": 100.0, "A": 50.0}, "s2": {"ctl": 100.0, "A": 10.0}, "s3": {"A": 1.0}},
        status={("s2", "ctl"): "failed"},
    )
    pairs = pair_runs(rows, "ctl")
    assert [(p["sample"], p["arm"]) for p in pairs] == [("s1", "A")]
    (a,) = cohort_response(pairs, samples=3)
    assert a["n"] == 1 and a["missing"] == 2
    # a zero control burden gives no ratio (counted as invalid, not as a response)
    zero = summary({"s1": {"ctl": 0.0, "A": 0.0}})
    (z,) = cohort_response(pair_runs(zero, "ctl"))
    assert z["n"] == 0 and z["n_invalid"] == 1 and math.isnan(z["median_ratio"])


def test_start_burden_is_read_at_the_first_dose(tmp_path):
    (tmp_path / "runs" / "c").mkdir(parents=True)
    (tmp_path / "runs" / "c" / "qoi.csv").write_text(
        "step,t_h,tumor_burden_mm3\n0,0,10\n1,24,20\n2,48,40\n"
    )
    assert burden_at(tmp_path / "runs" / "c" / "qoi.csv", 36) == pytest.approx(30)
    assert math.isnan(burden_at(tmp_path / "missing.csv", 1))
    rows = summary({"s": {"ctl": 40.0, "A": 15.0}})
    rows[0]["dir"] = "runs/c"
    (p,) = pair_runs(rows, "ctl", start_h={"A": 24.0}, root=tmp_path)
    assert p["start_burden"] == pytest.approx(20.0)
    assert p["ratio_start"] == pytest.approx(0.75)


def test_write_cohort(tmp_path):
    pairs = pair_runs(summary({"s": {"ctl": 10.0, "A": 5.0}}), "ctl")
    resp = cohort_response(pairs, samples=1)
    files = write_cohort(tmp_path, pairs, resp, {"control": "ctl"})
    with open(files["cohort"]) as f:
        (row,) = list(csv.DictReader(f))
    assert row["arm"] == "A" and float(row["median_ratio"]) == pytest.approx(0.5)
    data = json.loads((tmp_path / "cohort.json").read_text())
    assert data["control"] == "ctl" and data["pairs"][0]["ratio"] == pytest.approx(0.5)
    assert (tmp_path / "cohort_pairs.csv").is_file()
