"""Figure presets: which fields a picture shows, their colour maps and limits, organ cameras.

Pure Python (no PyVista): the choice of fields follows the case's components (therapy → drug,
drug response and kill rate; oxygen, bone and EMT modules → their fields), with the field names
of :class:`tumorpde.model.species.FieldNames`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tumorpde.model.species import DRUG_EFFECT, FieldNames

__all__ = [
    "ORGAN_VIEWS",
    "PRESETS",
    "FieldStyle",
    "OrganView",
    "field_style",
    "nice_length",
    "organ_of",
    "preset_fields",
]

#: Preset names accepted by ``tumorpde plot --preset``.
PRESETS = ("auto", "growth", "therapy", "oxygen", "bone", "emt", "modules", "all")

#: Suffixes of dimensionless fractions in [0, 1] (fixed colour limits).
_FRACTIONS = ("_occupancy", *(f"_{e}" for e in DRUG_EFFECT.values()))


@dataclass(frozen=True)
class FieldStyle:
    """How one field is drawn.

    Attributes:
        label: Colour-bar title without the unit.
        unit: Unit text ('' for dimensionless).
        cmap: A perceptually uniform matplotlib colour map.
        clim: Fixed colour limits, or None to take them from the data.
        zero_floor: Whether the lower limit is 0 (densities, concentrations, rates).
        fraction: A fraction in [0, 1]: the upper limit is the data's maximum rounded up to
            a round number, at most 1.
    """

    label: str
    unit: str
    cmap: str
    clim: tuple[float, float] | None = None
    zero_floor: bool = True
    fraction: bool = False

    @property
    def title(self) -> str:
        """Colour-bar title with the unit in brackets."""
        return f"{self.label} [{self.unit}]" if self.unit else self.label


@dataclass(frozen=True)
class OrganView:
    """Camera preset of an organ: the cut plane and how the picture is oriented.

    Attributes:
        normal: Normal of the cut plane; the camera looks along ``-normal``.
        up: Screen-up direction.
        anatomical: Whether the mesh frame is x right, y anterior, z superior (letters R/L,
            A/P, S/I as orientation marks); otherwise the marks are +x/-x etc.
        name: Name of the plane (shown in the figure).
        principal: Figures turn ``normal`` to the organ's axis of least spread (principal
            component analysis), so the cut contains the organ's long axes (the femur's shaft
            and neck, which are not parallel to a coordinate plane).
    """

    normal: tuple[float, float, float]
    up: tuple[float, float, float]
    anatomical: bool = True
    name: str = ""
    principal: bool = False


#: Per-organ camera presets: brain axial seen from above (the patient's right on the right),
#: lung coronal seen from the front (the patient's right on the viewer's left, as radiographs),
#: femur in the plane of shaft and neck seen from the front (head up), liver axial seen from
#: above in the image frame; ``box`` takes the plane normal to the mesh's thinnest extent.
ORGAN_VIEWS: dict[str, OrganView] = {
    "brain": OrganView((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), True, "axial"),
    "lung": OrganView((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), True, "coronal"),
    # femur: the plane of the bone's two largest principal axes (contains the shaft and neck)
    "bone": OrganView((0.0, 1.0, 0.0), (0.0, 0.0, 1.0), True, "coronal", principal=True),
    "liver": OrganView((0.0, 0.0, 1.0), (0.0, 1.0, 0.0), False, "axial"),
}

#: Region names → organ (when the case names none).
_REGION_ORGANS = {
    "grey": "brain",
    "white": "brain",
    "right_lung": "lung",
    "left_lung": "lung",
    "cortical": "bone",
    "marrow": "bone",
    "liver": "liver",
}


def organ_of(case: Any = None, regions: Iterable[str] = ()) -> str:
    """The organ of a run: the case's ``organ``, else guessed from region names, else ``box``.

    Args:
        case: A :class:`~tumorpde.config.CaseConfig` (or None).
        regions: Region names of the mesh.

    Returns:
        ``brain``, ``lung``, ``bone``, ``liver`` or ``box``.
    """
    organ = getattr(case, "organ", None)
    if organ in ORGAN_VIEWS:
        return str(organ)
    for r in regions:
        if r in _REGION_ORGANS:
            return _REGION_ORGANS[r]
    return "box"


def _drugs(case: Any) -> list[str]:
    therapy = getattr(case, "therapy", None)
    if therapy is None:
        return []
    return [t.spec.name for t in therapy.treatments]


def preset_fields(preset: str, available: Sequence[str], case: Any = None) -> list[str]:
    """The fields a preset shows, in panel order, among the fields a run stored.

    Args:
        preset: One of :data:`PRESETS`.
        available: Field names stored by the run.
        case: The run's case (for the drug names); None for name-based choice only.

    Returns:
        Field names (at least one).

    Raises:
        ValueError: Unknown preset, or none of its fields was stored.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    have = list(available)
    N = FieldNames
    tumor = [N.tumor] if N.tumor in have else []

    def pick(names: Iterable[str]) -> list[str]:
        return [n for n in dict.fromkeys(names) if n in have]

    drugs = _drugs(case)
    if case is None:  # by name: an antibody has a bound pool, other drugs a non-occupancy effect
        drugs = [
            n
            for n in have
            if f"{n}_bound" in have or f"{n}_inhibition" in have or f"{n}_trapped" in have
        ]
    therapy = pick(
        [x for d in drugs for x in (d, *(f"{d}_{e}" for e in DRUG_EFFECT.values()))] + [N.kill_rate]
    )
    oxygen = pick([N.oxygen, *(n for n in have if n.startswith(("vessel", "necro", "hypox")))])
    bone = pick([N.osteoclast])
    emt = pick([N.emt])
    pathways = getattr(case, "pathways", None) or {}
    ligands = [p.ligand.name for p in pathways.values() if getattr(p, "ligand", None)]
    if not pathways:  # no case: a ligand is a field whose pathway has an occupancy
        ligands = [n for n in have if n.isupper() and n.endswith("F")]
    occupancies = [n for n in have if n.endswith("_occupancy") and n not in therapy]
    growth = pick([*ligands[:1], *occupancies[:1]])
    if not growth:
        growth = pick(n for n in have if n.endswith("_signal"))[:2]
    chosen = {
        "growth": tumor + growth,
        "therapy": tumor + therapy,
        "oxygen": tumor + oxygen,
        "bone": tumor + bone,
        "emt": tumor + emt,
        "modules": tumor + oxygen + bone + emt,
        "all": have,
    }
    if preset == "auto":
        if therapy:
            out = tumor + therapy
        elif oxygen or bone or emt:
            out = tumor + oxygen + bone + emt
        else:
            out = tumor + growth
    else:
        out = chosen[preset]
    if not out or (preset not in ("auto", "all") and out == tumor and preset != "growth"):
        raise ValueError(
            f"preset {preset!r}: the run stored none of its fields (stored: {', '.join(have)})"
        )
    return out


def field_style(name: str, unit: str = "", label: str | None = None) -> FieldStyle:
    """Colour map, limits and title of a field.

    Args:
        name: Field name.
        unit: Its unit ('' or '1' for dimensionless).
        label: Title to use instead of the default.

    Returns:
        The field's style.
    """
    unit = "" if unit in ("1", "-", "dimensionless") or unit.startswith("1 (") else unit
    N = FieldNames
    if name == N.tumor:
        return FieldStyle(label or "tumor density u", unit, "magma_r", None)
    if name.endswith(_FRACTIONS):
        what = name.rsplit("_", 1)
        return FieldStyle(label or f"{what[0]} {what[1]}", "", "viridis", None, True, True)
    if name in (N.kill_rate, N.net_growth_rate):
        return FieldStyle(
            label or name.replace("_", " "), unit or "1/h", "inferno", None, name == N.kill_rate
        )
    if name == N.oxygen:
        return FieldStyle(label or "oxygen", unit, "cividis")
    if name.endswith("_signal") or name == N.emt:
        return FieldStyle(label or name.replace("_", " "), unit, "viridis", (0.0, 1.0))
    return FieldStyle(label or name.replace("_", " "), unit, "viridis")


def nice_length(span: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k) about a fifth of ``span``.

    Args:
        span: Width of the organ in mm.

    Returns:
        The bar length in mm.
    """
    target = max(span, 1e-9) / 5.0
    exp = math.floor(math.log10(target))
    for m in (5.0, 2.0, 1.0):
        if m * 10**exp <= target:
            return m * 10**exp
    return 10.0**exp


def merge_clims(
    styles: Mapping[str, FieldStyle],
    ranges: Mapping[str, tuple[float, float]],
    override: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, tuple[float, float]]:
    """Colour limits per field: the override, else the style's fixed limits, else the data.

    Args:
        styles: Style per field.
        ranges: Data (min, max) per field over every time and run shown.
        override: User limits per field.

    Returns:
        (low, high) per field with high > low.
    """
    out: dict[str, tuple[float, float]] = {}
    for name, st in styles.items():
        if override and name in override:
            lo, hi = override[name]
        elif st.clim is not None:
            lo, hi = st.clim
        else:
            lo, hi = ranges.get(name, (0.0, 1.0))
            if st.zero_floor:
                lo = lo if lo < -0.01 * abs(hi) else 0.0  # tiny undershoots are noise
            if st.fraction:
                hi = min(1.0, _round_up(hi)) if hi > 0 else 1.0
        if not hi > lo:
            hi = lo + max(abs(lo) * 1e-6, 1e-12)
        out[name] = (float(lo), float(hi))
    return out


def _round_up(x: float) -> float:
    """``x`` rounded up to 1, 2 or 5 × 10^k."""
    exp = math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10**exp >= x * (1 - 1e-12):
            return m * 10**exp
    return 10.0 ** (exp + 1)  # pragma: no cover - unreachable
