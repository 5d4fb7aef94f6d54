"""Unit conversions to internal units (mm, h, nM): the table of the model notes, section 0."""

import pytest

from tumorpde.units import receptors_per_cell_to_nM, to_internal


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
    # Model notes §0: 1e5 receptors/cell at 1e8 cells/mL (= 1e5 /mm^3) is 16.6 nM.
    assert receptors_per_cell_to_nM(1e5, 1e5) == pytest.approx(16.6054, rel=1e-4)


@pytest.mark.parametrize("bad", ["3 mm", "abc", "1 foo/h", True, [1, 2]])
def test_bad_rates_rejected(bad):
    with pytest.raises(ValueError):
        to_internal(bad, "rate")
