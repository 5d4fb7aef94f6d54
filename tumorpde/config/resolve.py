"""Case resolution: from TOML files and overrides to a validated :class:`CaseConfig`.

One job: turn what the user wrote into the tables the schema validates, then validate them.
Pipeline (:func:`config_from_dict`): ``extends`` chains (:func:`read_case_tables`) -> ``KEY=VALUE``
overrides -> single-pathway shorthand -> library defaults < organ profile < case -> ``[regions]``
(flattened, checked, converted) -> pydantic validation -> region names against the mesh. Errors
are :class:`ConfigError` with every problem's field path. This module imports neither dolfinx
nor pyvista.
"""

from __future__ import annotations

import re
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tumorpde import library
from tumorpde.config.schema import BoxMesh, CaseConfig, FileMesh, VesselConfig, region_keys
from tumorpde.errors import FieldProblems, validation_problems
from tumorpde.units import to_internal

__all__ = [
    "ConfigError",
    "config_from_dict",
    "load_config",
    "mesh_region_names",
    "parse_override",
    "read_case_tables",
    "read_msh_physical_names",
]


class ConfigError(FieldProblems):
    """A case file that cannot be run; ``problems`` lists ``(field path, message)`` pairs."""

    what = "case"


# ------------------------------------------------------------------------------------ mesh
def mesh_region_names(mesh: BoxMesh | FileMesh) -> list[str]:
    """Names of the volume regions of a mesh, read without dolfinx.

    Args:
        mesh: The mesh section of a case.

    Returns:
        Region names (for a ``.msh`` file: 3D physical groups from ``$PhysicalNames``).

    Raises:
        ValueError: If the file has no named 3D physical groups.
    """
    if isinstance(mesh, BoxMesh):
        return mesh.region_names()
    return sorted(n for d, n in read_msh_physical_names(mesh.path) if d == 3)


def read_msh_physical_names(path: Path) -> list[tuple[int, str]]:
    """Read ``(dim, name)`` pairs from the ``$PhysicalNames`` section of a gmsh file.

    The section is text in both the ASCII and the binary MSH formats.
    """
    from tumorpde.meshing.msh import read_physical_names

    return [(g.dim, g.name) for g in read_physical_names(path)]


# ------------------------------------------------------------------------------- overrides
def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError("override", [(key, f"'{p}' is not a table")])
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Parse ``KEY=VALUE`` (VALUE as a TOML value, else a plain string)."""
    if "=" not in text:
        raise ConfigError("override", [(text, "expected KEY=VALUE, e.g. time.dt='1 h'")])
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


#: Single-pathway shorthand: region keys of the walking-skeleton format -> generic keys.
_SHORTHAND_REGION_KEYS = {
    "tumor_motility": "tumor.motility",
    "proliferation_rate": "tumor.proliferation_rate",
    "ligand_diffusivity": "pathways.{p}.ligand.diffusivity",
    "ligand_decay_rate": "pathways.{p}.ligand.decay_rate",
    "ligand_stromal_secretion": "pathways.{p}.ligand.stromal_secretion",
}


def _expand_shorthand(raw: dict[str, Any], problems: list[tuple[str, str]]) -> str | None:
    """Turn top-level ``[ligand]`` + ``[receptor]`` tables into one entry of ``[pathways]``.

    The shorthand is the walking-skeleton model: no internalized pool, no signal species, and the
    tumor's ``chemotaxis`` toward the ligand.
    """
    if "ligand" not in raw and "receptor" not in raw:
        return None
    if "pathways" in raw:
        problems.append(("ligand", "use either [ligand]/[receptor] or [pathways], not both"))
        return None
    lig_raw, rec_raw = raw.pop("ligand", None) or {}, raw.pop("receptor", None) or {}
    for key, value in (("ligand", lig_raw), ("receptor", rec_raw)):
        if not isinstance(value, dict):
            problems.append((key, f"expected a table (got {value!r:.40})"))
    if not isinstance(lig_raw, dict) or not isinstance(rec_raw, dict):
        return None
    lig, rec = dict(lig_raw), dict(rec_raw)
    if not rec:
        problems.append(("receptor", "required field is missing (the [ligand] shorthand needs it)"))
        return None
    name = str(rec.pop("name", "EGFR"))
    lig.setdefault("name", "EGF")
    rec.setdefault("internalized", False)
    rec.setdefault("initial_state", "free")
    tumor = raw.get("tumor") if isinstance(raw.get("tumor"), dict) else {}
    effects = {"chemotaxis": tumor.pop("chemotaxis")} if "chemotaxis" in tumor else {}
    raw["pathways"] = {
        name: {
            "library": False,
            "ligand": lig or None,
            "receptor": rec,
            "signal": {"enabled": False},
            "effects": effects,
        }
    }
    if not lig:
        del raw["pathways"][name]["ligand"]
    regions = raw.get("regions")
    if isinstance(regions, dict):
        for table in regions.values():
            if not isinstance(table, dict):
                continue
            for old, new in _SHORTHAND_REGION_KEYS.items():
                if old in table:
                    table[new.format(p=name)] = table.pop(old)
    output = raw.get("output")
    fields = output.get("fields") if isinstance(output, dict) else None
    if isinstance(fields, list):
        lname = lig.get("name", "EGF")
        rename = {
            "ligand": lname,
            "receptor": name,
            "complex": f"{name}_complex",
            "occupancy": f"{name}_occupancy",
        }
        raw["output"]["fields"] = [rename.get(f, f) if isinstance(f, str) else f for f in fields]
    return name


def _shorthand_paths(problems: list[tuple[str, str]], name: str | None) -> list[tuple[str, str]]:
    """Report problems of a shorthand case against the tables the user wrote."""
    if name is None:
        return problems
    out = []
    for path, msg in problems:
        for inner, outer in (
            (f"pathways.{name}.ligand", "ligand"),
            (f"pathways.{name}.receptor", "receptor"),
            (f"pathways.{name}.effects.chemotaxis", "tumor.chemotaxis"),
            (f"pathways.{name}", "receptor"),
        ):
            if path == inner or path.startswith(inner + "."):
                path = outer + path[len(inner) :]
                break
        out.append((path, msg))
    return out


def _apply_library(
    raw: dict[str, Any], base_dir: str | Path | None, problems: list[tuple[str, str]]
) -> None:
    """Merge each pathway table over its library defaults (and the organ profile over those)."""
    organ: dict[str, Any] = {}
    if raw.get("organ") is not None:
        try:
            organ = library.load("organs", str(raw["organ"]), base_dir)
        except library.LibraryError as exc:
            problems.append(("organ", str(exc)))
    pathways = raw.get("pathways")
    if pathways is not None and not isinstance(pathways, dict):
        return  # pydantic reports the type
    merged: dict[str, Any] = {}
    for p, table in (pathways or {}).items():
        if not isinstance(table, dict):
            merged[p] = table
            continue
        table = dict(table)
        if table.pop("enabled", True) is False:
            continue
        use_library = table.pop("library", True)
        base: dict[str, Any] = {}
        if "file" in table:
            try:
                base = library.load("pathways", str(table.pop("file")), base_dir)
            except library.LibraryError as exc:
                problems.append((f"pathways.{p}.file", str(exc)))
        elif use_library and p in library.available("pathways"):
            base = library.load("pathways", p)
        elif use_library and "receptor" not in table:
            problems.append(
                (
                    f"pathways.{p}",
                    "not in the pathway library (shipped: "
                    + ", ".join(library.available("pathways"))
                    + "); give file = 'my_pathway.toml' or full [ligand]/[receptor] tables",
                )
            )
            continue
        base.pop("name", None)
        base = library.deep_merge(base, (organ.get("pathways") or {}).get(p, {}))
        merged[p] = library.deep_merge(base, table)
    if pathways is not None or merged:
        raw["pathways"] = merged
    for section in ("tumor", "vessels"):
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            continue  # pydantic reports the type
        if section in organ or section in raw:
            raw[section] = library.deep_merge(organ.get(section, {}), raw.get(section) or {})
    for section in ("oxygen", "bone"):  # optional modules: the case switches them on
        if isinstance(raw.get(section), dict):
            table = dict(raw[section])
            if table.pop("enabled", True) is False:
                del raw[section]
                continue
            raw[section] = library.deep_merge(organ.get(section, {}), table)
    if organ.get("regions"):
        raw["_organ_regions"] = organ["regions"]


_REGION_KEY_PATTERN = re.compile(
    r"^(tumor\.(motility|proliferation_rate|death_rate)|vessels\.(surface_density|barrier)"
    r"|pathways\.[A-Za-z][\w.-]*\.ligand\.(diffusivity|decay_rate|stromal_secretion)"
    r"|oxygen\.(supply_rate|diffusivity)|bone\.(basal|activation|matrix_release))$"
)


#: Allowed values of the per-region text parameters.
_TEXT_VALUES: dict[str, tuple[str, ...]] = {
    "vessels.barrier": typing.get_args(VesselConfig.model_fields["barrier"].annotation),
}


def _resolve_regions(raw: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    """Flatten ``[regions]`` to dotted keys, check them and convert units (organ profile first)."""
    allowed = region_keys(raw)
    organ_regions = raw.pop("_organ_regions", {}) or {}
    case_regions = raw.get("regions") or {}
    if not isinstance(case_regions, dict):
        return
    resolved: dict[str, dict[str, Any]] = {}
    for origin, regions in (("organ", organ_regions), ("case", case_regions)):
        for region, table in regions.items():
            if not isinstance(table, Mapping):
                problems.append((f"regions.{region}", "expected a table of parameter values"))
                continue
            for key, value in dict(library.leaves(table)).items():
                kind = allowed.get(key)
                if kind is None:
                    if origin == "organ" and _REGION_KEY_PATTERN.match(key):
                        continue  # profile values for modules/pathways this case does not use
                    problems.append(
                        (
                            f"regions.{region}.{key}",
                            "not a per-region parameter of this case; allowed: "
                            + ", ".join(sorted(allowed)),
                        )
                    )
                    continue
                if kind == "text":
                    allowed_text = _TEXT_VALUES.get(key)
                    if allowed_text is not None and value not in allowed_text:
                        problems.append(
                            (
                                f"regions.{region}.{key}",
                                f"expected {' or '.join(map(repr, allowed_text))} "
                                f"(got {value!r:.40})",
                            )
                        )
                        continue
                    resolved.setdefault(str(region), {})[key] = str(value)
                    continue
                try:
                    v = to_internal(value, kind)
                    if v < 0:
                        raise ValueError(f"must be >= 0 (got {v:g})")
                except ValueError as exc:
                    problems.append((f"regions.{region}.{key}", str(exc)))
                    continue
                resolved.setdefault(str(region), {})[key] = v
    raw["regions"] = resolved
    raw["_organ_region_names"] = sorted(organ_regions)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    source: str = "<dict>",
    overrides: Mapping[str, Any] | None = None,
) -> CaseConfig:
    """Validate a case given as a dictionary (e.g. parsed TOML).

    Pipeline: overrides -> single-pathway shorthand -> library defaults < organ profile < case
    -> per-region values (flattened, checked, converted) -> pydantic validation -> region names
    checked against the mesh. (``output.fields`` is checked by the model builder.)

    Args:
        data: The case tables.
        base_dir: Directory that relative mesh and parameter-file paths are resolved against.
        source: Name used in error messages (the file name).
        overrides: Dotted keys to set before validation, e.g. ``{"time.dt": "1 h"}``.

    Returns:
        The validated, frozen configuration in internal units.

    Raises:
        ConfigError: Listing every problem with its field path.
    """
    raw = library.copy_tables(dict(data))
    problems: list[tuple[str, str]] = []
    for key, value in (overrides or {}).items():
        try:
            _set_dotted(raw, key, value)
        except ConfigError as exc:
            problems += exc.problems
    short = _expand_shorthand(raw, problems)
    _apply_library(raw, base_dir, problems)
    _resolve_regions(raw, problems)
    organ_region_names = raw.pop("_organ_region_names", [])
    early = [path for path, _ in problems]
    cfg: CaseConfig | None = None
    try:
        cfg = CaseConfig.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        # schema problems under a table that already failed (a missing pathway file, a bad
        # region value) repeat that problem: keep the first report
        problems += [
            (path, msg)
            for path, msg in validation_problems(exc, CaseConfig)
            if not any(_within(path, e) for e in early)
        ]
    except RecursionError:
        problems.append(("(file)", "tables nested too deeply"))
    mesh = cfg.mesh if cfg is not None else _mesh_only(raw.get("mesh"), base_dir)
    names: list[str] | None = None
    if mesh is not None:
        try:
            names = mesh_region_names(mesh)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            problems.append(("mesh.path", f"cannot read region names: {exc}"))
        else:
            if not names:
                problems.append(("mesh", "the mesh has no named volume regions"))
    regions = cfg.regions if cfg is not None else raw.get("regions")
    given = data.get("regions") if isinstance(data, Mapping) else None
    case_regions = set(given) if isinstance(given, Mapping) else set()
    if names and isinstance(regions, Mapping):
        problems += [
            (f"regions.{r}", f"unknown region; the mesh has: {', '.join(names)}")
            for r in regions
            if r not in names and (r in case_regions or r not in organ_region_names)
        ]
    if cfg is not None and cfg.boundary and isinstance(cfg.mesh, FileMesh):
        problems += _boundary_name_problems(cfg)
    if problems or cfg is None:
        raise ConfigError(source, _shorthand_paths(problems, short))
    if names is not None and any(r not in names for r in cfg.regions):
        # organ-profile regions this mesh lacks
        kept = {r: v for r, v in cfg.regions.items() if r in names}
        cfg = cfg.model_copy(update={"regions": kept})
    return cfg


def _boundary_name_problems(cfg: CaseConfig) -> list[tuple[str, str]]:
    """``[[boundary]]`` names against the 2D physical groups of the case's ``.msh`` file."""
    assert isinstance(cfg.mesh, FileMesh)
    try:
        names = sorted(n for d, n in read_msh_physical_names(cfg.mesh.path) if d == 2)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return [("mesh.path", f"cannot read boundary names: {exc}")]
    return [
        (
            f"boundary.{i}.boundary",
            f"unknown boundary {bc.boundary!r}; {cfg.mesh.path.name} has: "
            f"{', '.join(names) or 'no named boundaries'}",
        )
        for i, bc in enumerate(cfg.boundary)
        if bc.boundary not in names
    ]


def _within(path: str, parent: str) -> bool:
    """Whether field ``path`` is ``parent`` or below it (``pathways.P.file``: all of ``P``)."""
    if parent.startswith("pathways.") and parent.count(".") >= 2:
        parent = ".".join(parent.split(".")[:2])
    return path == parent or path.startswith(parent + ".")


def _mesh_only(raw_mesh: Any, base_dir: str | Path | None) -> BoxMesh | FileMesh | None:
    """The mesh section alone, validated (None if it is invalid: that is reported already)."""
    from pydantic import TypeAdapter

    from tumorpde.config.schema import MeshConfig

    try:
        mesh: BoxMesh | FileMesh = TypeAdapter(MeshConfig).validate_python(
            raw_mesh, context={"base_dir": base_dir}
        )
    except (ValidationError, RecursionError):
        return None
    return mesh


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> CaseConfig:
    """Load and validate a TOML case file.

    Args:
        path: The case file; relative mesh paths are resolved against its directory.
        overrides: Dotted keys to set before validation.

    Returns:
        The validated configuration.

    Raises:
        ConfigError: If the file is missing, is not valid TOML, or fails validation.
    """
    p = Path(path)
    origins: dict[str, str] = {}
    data = read_case_tables(p, origins=origins)
    try:
        return config_from_dict(data, base_dir=p.parent, source=str(p), overrides=overrides)
    except ConfigError as exc:
        if not any(f != str(p.resolve()) for f in origins.values()):
            raise
        raise ConfigError(
            str(p), [(path, _from_base(path, msg, origins, p)) for path, msg in exc.problems]
        ) from None


def _from_base(path: str, msg: str, origins: Mapping[str, str], top: Path) -> str:
    """``msg`` with ``(set in BASE)`` when every value at or below ``path`` comes from a base."""
    files = {f for key, f in origins.items() if key == path or key.startswith(path + ".")} or {
        f for key, f in origins.items() if path.startswith(key + ".")
    }
    if files and str(top.resolve()) not in files:
        return f"{msg} (set in {', '.join(sorted(files))})"
    return msg


def read_case_tables(
    path: str | Path,
    _seen: tuple[Path, ...] = (),
    *,
    origins: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Read a case file's tables, resolving ``extends = "base.toml"`` (merged under this file).

    Relative file paths in a base file (mesh, pathway and drug files) are resolved against the
    base file's directory.

    Args:
        path: The case file.
        origins: If given, filled with ``{dotted key: file}``: which file of the ``extends``
            chain set each value (the file itself wins over its bases).

    Raises:
        ConfigError: If a file is missing, a directory, unreadable, not valid TOML, or the
            chain is circular; a problem in a base file names the base and the file extending
            it.
    """
    p = Path(path)
    if p.is_dir():
        raise ConfigError(str(p), [("(file)", "is a directory, not a case file (.toml)")])
    if not p.is_file():
        raise ConfigError(str(p), [("(file)", "case file does not exist")])
    try:
        data = library.read_toml(p)
    except library.LibraryError as exc:
        raise ConfigError(str(p), [("(file)", exc.problem)]) from None
    except OSError as exc:
        raise ConfigError(str(p), [("(file)", f"cannot read: {exc.strerror or exc}")]) from None
    except RecursionError:
        raise ConfigError(str(p), [("(file)", "not valid TOML: nested too deeply")]) from None
    base = data.pop("extends", None)
    if base is not None:
        if not isinstance(base, str):
            raise ConfigError(str(p), [("extends", "expected the path of a case file")])
        bp = (p.parent / base).resolve()
        if bp in _seen or bp == p.resolve():
            raise ConfigError(str(p), [("extends", f"circular: {bp} extends itself")])
        if bp.is_dir():
            raise ConfigError(str(p), [("extends", f"base case {bp} is a directory")])
        if not bp.is_file():
            raise ConfigError(str(p), [("extends", f"base case {bp} does not exist")])
        try:
            base_tables = read_case_tables(bp, (*_seen, p.resolve()), origins=origins)
        except ConfigError as exc:
            if exc.source.endswith(f"(extended by {p})"):
                raise
            raise ConfigError(f"{exc.source} (extended by {p})", exc.problems) from None
        _absolutize(base_tables, bp.parent)
        data_out = library.deep_merge(base_tables, data)
    else:
        data_out = data
    if origins is not None:
        origins.update({key: str(p.resolve()) for key, _ in library.leaves(data)})
    return data_out


def _absolutize(tables: dict[str, Any], base_dir: Path) -> None:
    """Make the relative file paths of a base case absolute (mesh, pathway and drug files)."""

    def fix(value: Any) -> Any:
        if isinstance(value, str) and not Path(value).is_absolute():
            return str((base_dir / value).resolve())
        return value

    mesh = tables.get("mesh")
    if isinstance(mesh, dict) and "path" in mesh:
        mesh["path"] = fix(mesh["path"])
    pathways = tables.get("pathways")
    for table in pathways.values() if isinstance(pathways, dict) else []:
        if isinstance(table, dict) and "file" in table:
            table["file"] = fix(table["file"])
    therapy = tables.get("therapy")
    treatments = therapy.get("treatments") if isinstance(therapy, dict) else None
    for t in treatments if isinstance(treatments, list) else []:
        if isinstance(t, dict) and str(t.get("drug", "")).endswith(".toml"):
            t["drug"] = fix(t["drug"])
