"""Sensitivity indices from (X, Y): Ishigami (Sobol') and a dominant parameter (Morris)."""

import numpy as np
import pytest

pytest.importorskip("SALib")

from tumorpde.studies.sensitivity import indices, qoi_vector, sample


def ishigami(x: np.ndarray, a: float = 7.0, b: float = 0.1) -> np.ndarray:
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def test_sobol_indices_of_the_ishigami_function():
    X = sample("sobol", 3, 4096, seed=1)
    assert X.shape == (4096 * 5, 3) and X.min() >= 0 and X.max() <= 1
    Y = ishigami(-np.pi + 2 * np.pi * X)
    rows = {r["param"]: r for r in indices("sobol", X, Y, ["x1", "x2", "x3"], seed=1)}
    # analytic values (a = 7, b = 0.1): Sobol' & Levitan (1999)
    s1 = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}
    st = {"x1": 0.5576, "x2": 0.4424, "x3": 0.2437}
    for p in s1:
        assert abs(rows[p]["S1"] - s1[p]) < 0.03, (p, rows[p])
        assert abs(rows[p]["ST"] - st[p]) < 0.03, (p, rows[p])
        assert rows[p]["S1_conf"] > 0 and rows[p]["ST_conf"] > 0
    assert [r["param"] for r in sorted(rows.values(), key=lambda r: r["rank"])] == [
        "x1",
        "x2",
        "x3",
    ]


def test_morris_ranks_a_dominant_parameter_first():
    X = sample("morris", 4, 20, seed=2)
    assert X.shape == (20 * 5, 4)
    Y = 10 * X[:, 2] + 1 * X[:, 0] + 0.1 * X[:, 1] ** 2 + 0 * X[:, 3]
    rows = indices("morris", X, Y, ["a", "b", "c", "d"])
    assert [r["param"] for r in rows][:2] == ["c", "a"]
    assert rows[0]["rank"] == 1
    assert abs(rows[0]["mu_star"] - 10) < 1e-9  # linear: every elementary effect is 10
    assert rows[0]["sigma"] < 1e-9
    assert rows[-1]["param"] == "d" and rows[-1]["mu_star"] == 0


def test_shapes_and_non_finite_outputs_are_refused():
    X = sample("morris", 2, 4, seed=0)
    with pytest.raises(ValueError, match="X must be"):
        indices("morris", X, np.zeros(3), ["a", "b"])
    Y = np.zeros(len(X))
    Y[0] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        indices("morris", X, Y, ["a", "b"])


def test_qoi_vector_reads_final_values_and_skips_failures():
    rows = [
        {"run": "r1", "status": "complete", "tumor_burden_mm3_final": "2.5"},
        {"run": "r2", "status": "failed", "tumor_burden_mm3_final": "1"},
    ]
    y = qoi_vector(rows, "tumor_burden_mm3", ["r2", "r1", "r1"])
    assert np.isnan(y[0]) and y[1] == y[2] == 2.5
    with pytest.raises(KeyError, match="QoIs: tumor_burden_mm3"):
        qoi_vector(rows, "nope", ["r1"])
