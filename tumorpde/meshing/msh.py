"""Reading gmsh ``.msh`` files outside DOLFINx: the one reader of the config and meshing layers.

Two entry points, no heavy import at module load:

* :func:`read_physical_names` scans the ``$PhysicalNames`` header only (pure Python, any MSH
  version, ASCII or binary): what a case needs to validate its region names.
* :func:`read_msh` reads the tetrahedra and triangles of the physical groups as numpy arrays
  (:class:`MeshArrays`) with the gmsh Python API (imported when called; any version gmsh reads).

The distributed read for the solver is DOLFINx's own (:mod:`tumorpde.fem.domain`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MeshArrays",
    "MshError",
    "PhysicalName",
    "check_msh_header",
    "read_msh",
    "read_physical_names",
]

_TRIANGLE = 2  # gmsh element type codes
_TETRAHEDRON = 4


class MshError(ValueError):
    """A file that is not a readable gmsh ``.msh`` mesh; the message names the file."""


def check_msh_header(path: str | Path) -> None:
    """Check that ``path`` is a file that starts like a gmsh ``.msh`` file.

    Args:
        path: The file.

    Raises:
        FileNotFoundError: If it does not exist.
        MshError: If it is a directory, has another suffix or lacks the ``$MeshFormat`` header.
    """
    path = Path(path)
    if path.is_dir():
        raise MshError(f"{path}: is a directory, not a gmsh .msh file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mesh file")
    if path.suffix.lower() != ".msh":
        raise MshError(
            f"{path}: not a gmsh .msh file (suffix {path.suffix or 'none'}); convert other "
            "formats with 'tumorpde mesh import'"
        )
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError as exc:
        raise MshError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not head.lstrip().startswith(b"$MeshFormat"):
        raise MshError(f"{path}: not a gmsh .msh file (no $MeshFormat header)")


class PhysicalName(NamedTuple):
    """One entry of ``$PhysicalNames``: the group's dimension, tag and name."""

    dim: int
    tag: int
    name: str


@dataclass
class MeshArrays:
    """A tetrahedral mesh as plain arrays.

    Attributes:
        points: Vertex coordinates, shape (n, 3).
        tets: Tetrahedra (0-based vertex indices), shape (m, 4).
        tet_tags: Region tag of every tetrahedron.
        tris: Tagged boundary triangles, shape (k, 3).
        tri_tags: Boundary tag of every triangle.
        regions: Region name -> tag (3D physical groups).
        boundaries: Boundary name -> tag (2D physical groups).
    """

    points: np.ndarray
    tets: np.ndarray
    tet_tags: np.ndarray
    tris: np.ndarray
    tri_tags: np.ndarray
    regions: dict[str, int]
    boundaries: dict[str, int]


def read_physical_names(path: str | Path) -> list[PhysicalName]:
    """Read the ``$PhysicalNames`` section of a gmsh file without reading the mesh.

    The section is text in both the ASCII and the binary MSH formats and comes before the
    entities and nodes, so only the header is read.

    Args:
        path: A gmsh ``.msh`` file.

    Returns:
        The named physical groups in file order (empty if the file names none).

    Raises:
        OSError: If the file cannot be opened.
        MshError: If the file is not a gmsh file or its ``$PhysicalNames`` section is broken.
    """
    check_msh_header(path)
    out: list[PhysicalName] = []
    with Path(path).open("rb") as f:
        for raw in f:
            if raw.startswith(b"$PhysicalNames"):
                try:
                    count = int(f.readline())
                    for _ in range(count):
                        dim, tag, name = f.readline().decode().split(maxsplit=2)
                        out.append(PhysicalName(int(dim), int(tag), name.strip().strip('"')))
                except ValueError:  # also UnicodeDecodeError
                    raise MshError(
                        f"{path}: broken $PhysicalNames section (truncated or not a gmsh file)"
                    ) from None
                return out
            if raw.startswith((b"$Nodes", b"$Entities")):
                break
    return out


def read_msh(path: str | Path) -> MeshArrays:
    """Read the tetrahedra and triangles of the physical groups of a gmsh file.

    Args:
        path: A gmsh ``.msh`` file with 3D physical groups.

    Returns:
        The mesh arrays with group names (unnamed groups are called ``region_<tag>`` or
        ``boundary_<tag>``).

    Raises:
        FileNotFoundError: If the file does not exist.
        MshError: If the file is not a gmsh ``.msh`` file, is truncated or corrupt (the message
            names the file and what gmsh reported), or has no tetrahedra in a 3D physical
            group.
    """
    import gmsh
    import numpy as np

    path = Path(path)
    check_msh_header(path)
    own = not gmsh.isInitialized()
    if own:
        gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.clear()
        try:
            gmsh.open(str(path))
        except Exception as exc:  # gmsh raises a bare Exception with its last error
            raise MshError(
                f"{path}: cannot read the mesh (truncated or corrupt?): gmsh says {exc}"
            ) from None
        node_tags, coords, _ = gmsh.model.mesh.getNodes()
        coords = coords.reshape(-1, 3)
        index = np.full(int(node_tags.max()) + 1 if node_tags.size else 1, -1, dtype=np.int64)
        index[node_tags.astype(np.int64)] = np.arange(node_tags.size)
        groups: dict[int, dict[str, int]] = {3: {}, 2: {}}
        conn: dict[int, list[np.ndarray]] = {3: [], 2: []}
        tags: dict[int, list[np.ndarray]] = {3: [], 2: []}
        for dim, tag in gmsh.model.getPhysicalGroups():
            if dim not in (2, 3):
                continue
            name = gmsh.model.getPhysicalName(dim, tag) or (
                f"{'region' if dim == 3 else 'boundary'}_{tag}"
            )
            groups[dim][name] = int(tag)
            etype = _TETRAHEDRON if dim == 3 else _TRIANGLE
            npe = 4 if dim == 3 else 3
            for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
                _, enodes = gmsh.model.mesh.getElementsByType(etype, int(ent))
                if enodes.size:
                    c = index[enodes.astype(np.int64)].reshape(-1, npe)
                    conn[dim].append(c)
                    tags[dim].append(np.full(c.shape[0], tag, dtype=np.int32))
    finally:
        gmsh.clear()
        if own:
            gmsh.finalize()
    if not conn[3]:
        raise MshError(f"{path}: no tetrahedra in a 3D physical group (no tissue regions)")
    if not np.isfinite(coords).all():
        raise MshError(f"{path}: node coordinates are not all finite (corrupt file)")
    if any((c < 0).any() for c in conn[3] + conn[2]):
        raise MshError(f"{path}: elements refer to missing nodes (truncated or corrupt file)")

    def _cat(arrs: list[np.ndarray], n: int, dtype: Any) -> np.ndarray:
        return np.concatenate(arrs) if arrs else np.empty((0, n) if n else 0, dtype=dtype)

    return MeshArrays(
        points=coords,
        tets=_cat(conn[3], 4, np.int64),
        tet_tags=_cat(tags[3], 0, np.int32),
        tris=_cat(conn[2], 3, np.int64),
        tri_tags=_cat(tags[2], 0, np.int32),
        regions=dict(sorted(groups[3].items(), key=lambda kv: kv[1])),
        boundaries=dict(sorted(groups[2].items(), key=lambda kv: kv[1])),
    )
