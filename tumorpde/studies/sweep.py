"""Sweep specifications: which cases a batch runs (pure: no MPI, no DOLFINx).

A sweep file (TOML, validated by pydantic like case files; unknown keys are rejected) names a
base case and the values to change in it, by the dotted paths of ``--set``::

    base = "case.toml"                 # relative to the sweep file
    name = "egfr_sweep"
    set = { "time.t_end" = "10 day" }  # applied to every run

    [[vary]]                           # grid: the cartesian product of every `values` list
    param = "tumor.motility"
    values = ["0.1 mm^2/day", "0.5 mm^2/day"]

    [[vary]]                           # sampled (needs [sample])
    param = "tumor.proliferation_rate"
    distribution = "log-uniform"       # uniform, log-uniform, normal, log-normal
    bounds = ["0.01 1/day", "0.1 1/day"]

    [sample]
    method = "lhs"                     # random, lhs, sobol (scipy.stats.qmc)
    n = 16
    seed = 1

    [[runs]]                           # explicit runs (each a table of overrides)
    "tumor.proliferation_rate" = "0.2 1/day"

    control = "control"                # the untreated arm (virtual cohorts; optional: else
    [arms.control]                     # the arm with therapy.treatments = [])
    "therapy.treatments" = []
    [arms.cetuximab]                   # named arms: overrides crossed with every point
    "therapy.treatments" = [{ drug = "cetuximab", regimen = "weekly" }]

The points are grid × explicit runs × samples (each factor is one empty point when absent),
crossed with the arms. Every run gets a stable id (a hash of its overrides as written) that
names its directory ``runs/<id>``, and a sample id (a hash of its point's values, shared by the
arms of the point: the ``sample`` column of the batch summary). :func:`load_sweep` validates the
spec and every generated case; all problems (spec fields, and each distinct case problem with the
runs it hits) are raised together as one :class:`SweepError` before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tumorpde import library
from tumorpde.config import CaseConfig, ConfigError, config_from_dict, read_case_tables
from tumorpde.config.schema import BoxMesh
from tumorpde.errors import validation_problems
from tumorpde.units import INTERNAL_UNITS, split_quantity, to_internal

__all__ = [
    "DISTRIBUTIONS",
    "METHODS",
    "RunSpec",
    "SampledParam",
    "Sweep",
    "SweepError",
    "SweepSpec",
    "VaryEntry",
    "estimate_cost",
    "load_sweep",
    "run_id",
    "sample_unit",
    "sweep_from_dict",
]

#: Sampling distributions of ``[[vary]]`` entries.
DISTRIBUTIONS = ("uniform", "log-uniform", "normal", "log-normal")
#: Sampling methods of ``[sample]`` (``scipy.stats.qmc`` for ``lhs`` and ``sobol``).
METHODS = ("random", "lhs", "sobol")
#: Largest number of runs one sweep may generate (a larger product is a typo).
MAX_RUNS = 100_000

_PARAM = r"^[A-Za-z_][\w-]*(\.[\w-]+)*$"
_ARM = r"^[A-Za-z][A-Za-z0-9_.+-]*$"

Value = float | str


class SweepError(ConfigError):
    """A sweep that cannot run: ``problems`` lists ``(field path, message)`` pairs."""

    what = "sweep"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class VaryEntry(_Strict):
    """One varied case field: a grid axis (``values``) or a sampled distribution."""

    param: str = Field(pattern=_PARAM, max_length=200, description="dotted case path")
    values: list[Any] | None = Field(default=None, min_length=1, description="grid values")
    distribution: Literal["uniform", "log-uniform", "normal", "log-normal"] | None = None
    bounds: tuple[Value, Value] | None = Field(
        default=None, description="[low, high] of a (log-)uniform distribution"
    )
    mean: Value | None = Field(default=None, description="mean of a normal distribution")
    std: Value | None = Field(default=None, description="standard deviation of a normal one")
    median: Value | None = Field(default=None, description="median of a log-normal one")
    sigma: float | None = Field(default=None, gt=0, description="std of ln(x) (log-normal)")

    @model_validator(mode="after")
    def _mode(self) -> VaryEntry:
        given = {k for k in ("bounds", "mean", "std", "median", "sigma") if getattr(self, k)}
        if self.values is not None:
            if self.distribution is not None or given:
                raise ValueError("values: give either 'values' (a grid) or a 'distribution'")
            return self
        if self.distribution is None:
            raise ValueError("values: give 'values' (a grid) or a 'distribution' to sample")
        need = {
            "uniform": {"bounds"},
            "log-uniform": {"bounds"},
            "normal": {"mean", "std"},
            "log-normal": {"median", "sigma"},
        }[self.distribution]
        missing = sorted(need - given)
        extra = sorted(given - need)
        problems = [f"{k}: required for distribution '{self.distribution}'" for k in missing]
        problems += [f"{k}: not used by distribution '{self.distribution}'" for k in extra]
        if problems:
            raise ValueError("\n".join(problems))
        return self


class SampleConfig(_Strict):
    """How the sampled ``[[vary]]`` entries are drawn."""

    method: Literal["random", "lhs", "sobol"] = "lhs"
    n: int = Field(ge=1, le=MAX_RUNS, description="number of samples")
    seed: int = Field(default=0, ge=0, description="seed of the generator (recorded)")


class SweepSpec(_Strict):
    """A sweep file (see the module docstring)."""

    base: str = Field(min_length=1, description="base case, relative to the sweep file")
    name: str | None = Field(default=None, pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)
    set: dict[str, Any] = Field(default_factory=dict, description="overrides for every run")
    vary: list[VaryEntry] = Field(default_factory=list)
    runs: list[dict[str, Any]] = Field(default_factory=list, description="explicit runs")
    sample: SampleConfig | None = None
    arms: dict[str, dict[str, Any]] = Field(default_factory=dict)
    control: str | None = Field(
        default=None, max_length=40, description="the untreated arm (virtual-cohort response)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        problems = []
        if self.control is not None and self.control not in self.arms:
            problems.append(f"control: {self.control!r} is not one of the [arms]")
        seen: dict[str, int] = {}
        for i, v in enumerate(self.vary):
            if v.param in seen:
                problems.append(f"vary: '{v.param}' is varied twice (entries {seen[v.param]}, {i})")
            seen[v.param] = i
        sampled = [v for v in self.vary if v.distribution is not None]
        if sampled and self.sample is None:
            problems.append("sample: required: [[vary]] entries with a distribution need [sample]")
        if self.sample is not None and not sampled:
            problems.append("sample: no [[vary]] entry has a distribution to sample")
        for name in self.arms:
            if not re.match(_ARM, name) or len(name) > 40:
                problems.append(f"arms: arm name {name!r} must match {_ARM} (<= 40 chars)")
        if problems:
            raise ValueError("\n".join(problems))
        return self


# ------------------------------------------------------------------------------- quantities
def _split(value: Value) -> tuple[float, str | None]:
    """``(magnitude, unit)`` of a number (unit None: internal units) or a quantity string."""
    if isinstance(value, str):
        try:
            return float(value), None
        except ValueError:
            return split_quantity(value)
    return float(value), None


def _kind_of(unit: str) -> str:
    """The internal unit kind whose dimensions ``unit`` has."""
    for kind in INTERNAL_UNITS:
        try:
            to_internal(f"1 {unit}", kind)
        except ValueError:
            continue
        return kind
    raise ValueError(f"unit {unit!r} matches no known quantity kind")


def _common_unit(values: Sequence[Value]) -> tuple[list[float], str | None]:
    """The magnitudes of ``values`` in one unit: the first one's, or internal units.

    Strings with the same unit keep it; strings with other units of the same dimension are
    converted to the first one's unit; a mix of numbers (internal units) and strings is
    converted to internal units with :func:`tumorpde.units.to_internal`.

    Raises:
        ValueError: If a value cannot be parsed or the dimensions differ.
    """
    parts = [_split(v) for v in values]
    units = [u for _, u in parts]
    if all(u is None for u in units):
        return [m for m, _ in parts], None
    if all(u is not None for u in units):
        unit = units[0]
        assert unit is not None
        if all(u == unit for u in units):
            return [m for m, _ in parts], unit
        kind = _kind_of(unit)
        scale = to_internal(f"1 {unit}", kind)
        return [to_internal(v, kind) / scale for v in values], unit
    unit = next(u for u in units if u is not None)
    kind = _kind_of(unit)
    return [to_internal(v, kind) for v in values], None


@dataclass(frozen=True)
class SampledParam:
    """A sampled parameter: its distribution in one unit (None: internal units)."""

    param: str
    distribution: str
    a: float  # low (uniform), mean (normal), median (log-normal)
    b: float  # high (uniform), std (normal), sigma (log-normal)
    unit: str | None

    @classmethod
    def from_entry(cls, v: VaryEntry) -> SampledParam:
        """Parse the bounds/mean/std/median of a ``[[vary]]`` entry.

        Raises:
            ValueError: ``"field: message"`` for a bad quantity or bound.
        """
        dist = v.distribution
        assert dist is not None
        if dist in ("uniform", "log-uniform"):
            assert v.bounds is not None
            try:
                (lo, hi), unit = _common_unit(list(v.bounds))
            except ValueError as exc:
                raise ValueError(f"bounds: {exc}") from None
            if not lo < hi:
                raise ValueError(f"bounds: low must be < high (got {v.bounds[0]}, {v.bounds[1]})")
            if dist == "log-uniform" and lo <= 0:
                raise ValueError(f"bounds: log-uniform bounds must be > 0 (got {v.bounds[0]})")
            return cls(v.param, dist, lo, hi, unit)
        if dist == "normal":
            assert v.mean is not None and v.std is not None
            try:
                (mean, std), unit = _common_unit([v.mean, v.std])
            except ValueError as exc:
                raise ValueError(f"mean: {exc}") from None
            if std <= 0:
                raise ValueError(f"std: must be > 0 (got {v.std})")
            return cls(v.param, dist, mean, std, unit)
        assert v.median is not None and v.sigma is not None
        try:
            median, unit = _split(v.median)
        except ValueError as exc:
            raise ValueError(f"median: {exc}") from None
        if median <= 0:
            raise ValueError(f"median: must be > 0 (got {v.median})")
        return cls(v.param, dist, median, float(v.sigma), unit)

    def transform(self, u: np.ndarray) -> np.ndarray:
        """Map uniform numbers in (0, 1) to this distribution (inverse CDF), in ``unit``."""
        from scipy.stats import norm

        u = np.clip(np.asarray(u, dtype=float), 1e-12, 1 - 1e-12)
        if self.distribution == "uniform":
            return self.a + u * (self.b - self.a)
        if self.distribution == "log-uniform":
            return np.exp(np.log(self.a) + u * (np.log(self.b) - np.log(self.a)))
        if self.distribution == "normal":
            return self.a + self.b * norm.ppf(u)
        return self.a * np.exp(self.b * norm.ppf(u))

    def value(self, x: float) -> Value:
        """The override value of magnitude ``x``: ``"<x> <unit>"`` or a plain number."""
        text = format(float(x), ".10g")
        return f"{text} {self.unit}" if self.unit else float(text)


def sample_unit(method: str, n: int, d: int, seed: int) -> np.ndarray:
    """``n`` points in the unit cube ``[0, 1)^d``, reproducible from ``seed``.

    Args:
        method: ``random`` (numpy's PCG64), ``lhs`` (Latin hypercube) or ``sobol`` (scrambled
            Sobol'; best with ``n`` a power of two).
        n: Number of points.
        d: Dimension.
        seed: Seed.

    Returns:
        An ``(n, d)`` array.
    """
    import warnings

    from scipy.stats import qmc

    if method == "random":
        return np.random.default_rng(seed).random((n, d))
    if method == "lhs":
        return qmc.LatinHypercube(d=d, seed=seed).random(n)
    if method == "sobol":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # balance properties need n = 2^m: documented
            return qmc.Sobol(d=d, scramble=True, seed=seed).random(n)
    raise ValueError(f"unknown sampling method {method!r}; use one of {', '.join(METHODS)}")


# ------------------------------------------------------------------------------------ runs
def run_id(overrides: Mapping[str, Any]) -> str:
    """Stable id of a run: the first 12 hex digits of the SHA-256 of its overrides (JSON).

    Independent of key order; the same overrides give the same id on every machine.
    """
    text = json.dumps(dict(overrides), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class RunSpec:
    """One run of a sweep.

    Attributes:
        index: Position in the sweep (generation order).
        id: Stable id (:func:`run_id` of ``overrides``); the run directory is ``runs/<id>``.
        arm: The arm name (None without arms).
        values: The varied inputs of this run (param -> value as set).
        overrides: Every override applied to the base (``set``, values, arm) as written.
        unit_point: The sampled parameters' coordinates in the unit cube (sensitivity).
        cost: Relative cost estimate (:func:`estimate_cost`), 0 if unknown.
        dir: The run directory relative to the batch directory (None: ``runs/<id>``).
    """

    index: int
    id: str
    arm: str | None
    values: dict[str, Any]
    overrides: dict[str, Any]
    unit_point: dict[str, float] = field(default_factory=dict)
    cost: float = 0.0
    dir: str | None = None

    @property
    def sample(self) -> str:
        """The id of this run's point (:func:`run_id` of ``values``), shared by its arms."""
        return run_id(self.values)

    @property
    def rel_dir(self) -> str:
        """The run directory relative to the batch directory."""
        return self.dir or f"runs/{self.id}"


@dataclass
class Sweep:
    """A validated sweep: the spec, the base case's tables and every run."""

    path: Path
    spec: SweepSpec
    base_path: Path
    base_tables: dict[str, Any]
    runs: list[RunSpec]
    params: list[str]
    sampled: list[SampledParam]

    @property
    def name(self) -> str:
        """The sweep's name (``name``, else the sweep file's stem)."""
        return self.spec.name or re.sub(r"[^A-Za-z0-9_.-]", "_", self.path.stem) or "sweep"

    def config(self, run: RunSpec) -> CaseConfig:
        """The validated case of ``run`` (its name gets the run id appended).

        Raises:
            ConfigError: If the case is invalid.
        """
        cfg = config_from_dict(
            self.base_tables,
            base_dir=self.base_path.parent,
            source=f"{self.base_path} (run {run.id})",
            overrides=_absolute_paths(run.overrides, self.path.parent),
        )
        name = f"{cfg.name[: 63 - len(run.id)]}-{run.id}"
        return cfg.model_copy(update={"name": name})

    def common_overrides(self) -> dict[str, Any]:
        """The ``set`` overrides of every run, as dotted keys."""
        return _flatten(self.spec.set)

    def arm_overrides(self, arm: str) -> dict[str, Any]:
        """The overrides of arm ``arm``, as dotted keys."""
        return _flatten(self.spec.arms[arm])

    def control_arm(self) -> str | None:
        """The untreated arm: ``control``, else the arm with ``therapy.treatments = []``."""
        from tumorpde.studies.cohort import control_arm

        return control_arm({a: self.arm_overrides(a) for a in self.spec.arms}, self.spec.control)

    def case_text(self, run: RunSpec) -> str:
        """The text copied into the run directory as its case: the overrides and the base."""
        lines = [f"# tumorpde batch run {run.id} of sweep {self.path}", f"# base: {self.base_path}"]
        lines += [f"# --set {k}={json.dumps(v)}" for k, v in run.overrides.items()]
        try:
            base = self.base_path.read_text()
        except OSError:
            base = ""
        return "\n".join(lines) + "\n" + base

    def describe(self) -> dict[str, Any]:
        """A JSON-able record of the sweep (``OUT/batch.json``)."""
        return {
            "sweep": str(self.path),
            "name": self.name,
            "base": str(self.base_path),
            "base_sha256": hashlib.sha256(self.base_path.read_bytes()).hexdigest(),
            "sample": self.spec.sample.model_dump() if self.spec.sample else None,
            "params": self.params,
            "arms": list(self.spec.arms),
            "control": self.control_arm(),
            "runs": len(self.runs),
            "ids": [r.id for r in self.runs],
        }


def _flatten(table: Mapping[str, Any]) -> dict[str, Any]:
    """Nested tables as dotted keys down to their leaves (a quantity table is one leaf)."""
    return dict(library.leaves(table))


def _absolute_paths(overrides: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """Overrides with relative ``mesh.path`` / ``pathways.*.file`` made absolute."""
    out = dict(overrides)
    for key, value in overrides.items():
        is_path = key == "mesh.path" or (key.startswith("pathways.") and key.endswith(".file"))
        if is_path and isinstance(value, str) and not Path(value).is_absolute():
            out[key] = str((base_dir / value).resolve())
    return out


#: Extra adaptive time steps per dose in :func:`estimate_cost`: an IV infusion's sharp plasma
#: peak (and its start and end breakpoints) restarts the step size from small steps; an oral or
#: sc dose adds little more than a step end. Measured on the HER2 brain comparison (42 d,
#: 2026-12-01): untreated 64 steps, trastuzumab q3w (3 infusions, at 0, 21 and 42 d) 197,
#: lapatinib daily (43 oral doses) 111, both 290: ~40-65 per infusion, ~1 per oral dose.
STEPS_PER_DOSE = {"iv": 40.0, "oral": 1.0, "sc": 1.0}

#: Species a drug adds to the coupled system in :func:`estimate_cost` (free tissue drug and
#: bound target; a rough count: the cost only orders runs).
SPECIES_PER_DRUG = 2


def estimate_cost(cfg: CaseConfig) -> float:
    """Relative cost of a case: time steps × mesh cells × species (0 if unknown).

    Box meshes count 6 tetrahedra per box cell; a mesh file's cell count is read from the
    JSON metadata beside it, else its size in bytes stands in. Drugs add species
    (:data:`SPECIES_PER_DRUG`) and, with adaptive time stepping, steps per dose
    (:data:`STEPS_PER_DOSE`), so the arms of a therapy comparison (same mesh, same physics
    but the drugs) are ordered by their expected cost and the scheduler starts the most
    expensive arms first.
    """
    steps = cfg.time.t_end / cfg.time.dt
    mesh = cfg.mesh
    if isinstance(mesh, BoxMesh):
        cells = 6.0 * math.prod(mesh.cells)
    else:
        cells = 0.0
        meta = mesh.path.with_suffix(".json")
        try:
            cells = float(json.loads(meta.read_text()).get("cells", 0))
        except (OSError, ValueError, AttributeError, TypeError):
            cells = 0.0
        if not cells:
            try:
                cells = mesh.path.stat().st_size / 100.0
            except OSError:
                cells = 0.0
    species = 3 + 4 * len(cfg.pathways)
    therapy = cfg.therapy
    if therapy is not None and therapy.treatments:
        from tumorpde.library.pk import schedule

        species += SPECIES_PER_DRUG * len(therapy.treatments)
        if cfg.time.adaptive:
            for t in therapy.treatments:
                for d in schedule(t.regimen, therapy.patient, cfg.time.t_end):
                    steps += STEPS_PER_DOSE.get(d.route, 1.0)
    return float(steps * cells * species)


def load_sweep(path: str | Path, *, validate: bool = True) -> Sweep:
    """Read, validate and expand a sweep file.

    Args:
        path: The sweep file (TOML).
        validate: Validate every generated case (and estimate its cost).

    Returns:
        The sweep with every run.

    Raises:
        SweepError: Listing every problem (spec fields, base case, generated cases).
    """
    p = Path(path)
    if not p.is_file():
        raise SweepError(str(p), [("(file)", "sweep file does not exist")])
    try:
        data = library.read_toml(p)
    except library.LibraryError as exc:
        raise SweepError(str(p), [("(file)", exc.problem)]) from None
    except OSError as exc:
        raise SweepError(str(p), [("(file)", f"cannot read: {exc}")]) from None
    return sweep_from_dict(data, p, validate=validate)


def sweep_from_dict(data: Mapping[str, Any], path: str | Path, *, validate: bool = True) -> Sweep:
    """Validate and expand a sweep given as tables (``path``: where it lives, for ``base``).

    See :func:`load_sweep`.
    """
    p = Path(path)
    try:
        spec = SweepSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise SweepError(str(p), validation_problems(exc, SweepSpec)) from None
    problems: list[tuple[str, str]] = []
    sampled: list[SampledParam] = []
    for i, v in enumerate(spec.vary):
        if v.distribution is None:
            continue
        try:
            sampled.append(SampledParam.from_entry(v))
        except ValueError as exc:
            key, _, msg = str(exc).partition(": ")
            problems.append((f"vary.{i}.{key}", msg))
    base_path = (p.parent / spec.base).resolve()
    base_tables: dict[str, Any] = {}
    try:
        base_tables = read_case_tables(base_path)
        # a run is one case: the base's [compare] arms name its drugs, and an arm of the sweep
        # that changes the drugs (an untreated control) would fail their check
        base_tables.pop("compare", None)
    except ConfigError as exc:
        problems += [("base", f"{exc.source}: {f}: {m}") for f, m in exc.problems]
    set_over = _flatten(spec.set)
    runs_over = [_flatten(r) for r in spec.runs]
    arms_over = {a: _flatten(t) for a, t in spec.arms.items()}
    varied = [v.param for v in spec.vary]
    for i, r in enumerate(runs_over):
        problems += [(f"runs.{i}.{k}", "also in [[vary]]") for k in r if k in varied]
    for a, t in arms_over.items():
        problems += [(f"arms.{a}.{k}", "also varied by the points") for k in t if k in varied]
    grid = [v for v in spec.vary if v.values is not None]
    total = math.prod(len(v.values or []) for v in grid) * max(1, len(runs_over))
    total *= (spec.sample.n if spec.sample and sampled else 1) * max(1, len(arms_over))
    if total > MAX_RUNS:
        problems.append(("vary", f"the sweep has {total} runs, above the cap of {MAX_RUNS}"))
    if problems:
        raise SweepError(str(p), problems)

    grid_points = [
        dict(zip([v.param for v in grid], combo, strict=True))
        for combo in itertools.product(*[v.values or [] for v in grid])
    ]
    sample_points: list[tuple[dict[str, Any], dict[str, float]]] = [({}, {})]
    if sampled:
        assert spec.sample is not None
        units = sample_unit(spec.sample.method, spec.sample.n, len(sampled), spec.sample.seed)
        cols = [s.transform(units[:, j]) for j, s in enumerate(sampled)]
        sample_points = [
            (
                {s.param: s.value(cols[j][i]) for j, s in enumerate(sampled)},
                {s.param: float(units[i, j]) for j, s in enumerate(sampled)},
            )
            for i in range(spec.sample.n)
        ]
    params = [v.param for v in grid]
    params += [k for r in runs_over for k in r if k not in params]
    params += [s.param for s in sampled]
    arms: list[tuple[str | None, dict[str, Any]]] = list(arms_over.items()) or [(None, {})]
    runs: list[RunSpec] = []
    ids: dict[str, int] = {}
    for g, r, (s, u), (arm, arm_over) in itertools.product(
        grid_points or [{}], runs_over or [{}], sample_points, arms
    ):
        values = {**g, **r, **s}
        overrides = {**set_over, **arm_over, **values}
        rid = run_id(overrides)
        if rid in ids:
            problems.append(
                (f"runs (run {len(runs)})", f"same overrides as run {ids[rid]} (id {rid})")
            )
            continue
        ids[rid] = len(runs)
        runs.append(RunSpec(len(runs), rid, arm, values, overrides, u))
    sweep = Sweep(p, spec, base_path, base_tables, runs, params, sampled)
    if not problems and validate:
        problems += _validate_runs(sweep)
    if problems:
        raise SweepError(str(p), problems)
    return sweep


def _validate_runs(sweep: Sweep) -> list[tuple[str, str]]:
    """Validate every generated case; each distinct problem once, with the runs it hits."""
    from tumorpde.model import build_model

    hits: dict[tuple[str, str], list[str]] = {}
    first: dict[tuple[str, str], str] = {}
    for run in sweep.runs:
        try:
            cfg = sweep.config(run)
            build_model(cfg)
            run.cost = estimate_cost(cfg)
        except ConfigError as exc:
            for f, m in exc.problems:
                key = (f, re.sub(r" \(got .*\)$", "", m))  # one line per problem, not per value
                first.setdefault(key, m)
                hits.setdefault(key, []).append(run.id)
    out = []
    for key, ids in hits.items():
        f, m = key[0], first[key]
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        out.append((f, f"{m} [in {len(ids)} of {len(sweep.runs)} runs: {shown}]"))
    return out
