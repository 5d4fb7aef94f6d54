"""Run directory: layout, the exclusive lock, statuses, the manifest (provenance), atomic files.

Layout of a run directory::

    OUTDIR/
      .lock            held (fcntl.flock, rank 0) for the lifetime of a run: "live"
      case.toml        the case file as given (copied)
      resolved.toml    the case after extends, library, organ and --set, in internal units, with
                       the mesh path absolute: ``tumorpde.load_config`` loads it, ``tumorpde
                       rerun OUTDIR`` reruns it
      manifest.json    status, reason, provenance, resolved parameters, versions, wall times
      qoi.csv          one row per accepted step (flushed per row)
      fields.vtkhdf.series, fields.pvd, fields/   the fields at output times (one VTKHDF file
                       per time, fields/mesh.vtkhdf, fields/boundary.vtkhdf), consistent after
                       every one; or fields.xdmf/.h5 or fields.bp (output.format)
      final.png        picture of the final fields

:class:`RunDir` is the API (collective open, rank-0 writes, non-collective marks)::

    rd = RunDir.open(outdir, overwrite=False, comm=comm, case="name")   # lock, check, clear
    try:
        ...                                                # run; rd.mark("running", t=, step=)
        rd.finish(manifest)                                # status "complete"
    except Interrupted as exc:
        rd.mark("interrupted", reason=exc.signal_name, t=exc.t, step=exc.step)
        raise
    except BaseException as exc:
        rd.mark("failed", reason=str(exc))
        raise
    finally:
        rd.close()                                         # releases the lock

The manifest goes ``running -> complete | failed | interrupted``; every write replaces it
atomically and carries the ``"tumorpde"`` version key that marks a tumorpde run directory.
``--overwrite`` clears only a verified tumorpde run that is not live; anything else named
``manifest.json`` is refused and nothing is deleted. Files are created with the user's umask.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import math
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tumorpde._version import __version__

if TYPE_CHECKING:
    from tumorpde.config import CaseConfig
    from tumorpde.fem.domain import Domain
    from tumorpde.model import Model

__all__ = [
    "LOCK",
    "MANIFEST",
    "RESOLVED",
    "STATUSES",
    "OutputDirError",
    "OutputWriteError",
    "RunDir",
    "RunDirBusyError",
    "check_new_file",
    "check_not_live",
    "clear_run_outputs",
    "is_tumorpde_manifest",
    "manifest",
    "prepare",
    "prepare_run_dir",
    "provenance",
    "resolved_toml",
    "sha256_file",
    "to_toml",
    "versions",
    "write_json_atomic",
    "write_text_atomic",
]

MANIFEST = "manifest.json"
LOCK = ".lock"
RESOLVED = "resolved.toml"
#: Manifest statuses: a run starts ``running`` and ends in one of the other three.
STATUSES = ("running", "complete", "failed", "interrupted")
#: Files and folders a tumorpde run writes (removed by ``--overwrite``; never ``.lock``).
RUN_FILES = (
    "case.toml",
    RESOLVED,
    MANIFEST,
    "qoi.csv",
    "fields.vtkhdf.series",
    "fields.pvd",
    "fields.xdmf",
    "fields.h5",
    "final.png",
    "checkpoint.npz",
)
RUN_DIRS = ("fields", "fields.bp", ".fields", "checkpoints")


class OutputDirError(RuntimeError):
    """The output directory cannot be used (not empty, not a tumorpde run, or in use)."""


class OutputWriteError(OSError):
    """Writing a run's output failed (raised on every rank alike); names the file.

    Args:
        code: The errno (e.g. ``errno.ENOSPC``), or None.
        message: What failed.
        filename: The file.
    """

    def __init__(self, code: int | None, message: str, filename: str) -> None:
        super().__init__(code, message, filename)

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


class RunDirBusyError(OutputDirError):
    """The run directory is locked by a live run (another process holds ``.lock``)."""


# ------------------------------------------------------------------------------ files
def umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    old = os.umask(0o022)
    os.umask(old)
    return old


def _atomic_write(path: Path, writer: Any, mode: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp makes 0600; a normal file follows the umask
        with os.fdopen(fd, mode) as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON to a temporary file in the same directory, then rename it over ``path``.

    The file gets the permissions of a normally created file (``0666 & ~umask``).
    """

    def write(f: Any) -> None:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")

    _atomic_write(Path(path), write, "w")


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text atomically (temporary file + rename), with umask permissions."""
    _atomic_write(Path(path), lambda f: f.write(text), "w")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_new_file(path: str | Path, *, overwrite: bool, what: str = "output") -> Path:
    """Refuse to replace an existing file (or folder) unless ``overwrite``.

    Args:
        path: The file a command is about to write.
        overwrite: The user passed ``--overwrite``.
        what: How the message names the file.

    Returns:
        The path.

    Raises:
        OutputDirError: Naming the file, if it exists and ``overwrite`` is false.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputDirError(
            f"{what} {p} exists; pass --overwrite to replace it, or choose another"
        )
    return p


# ------------------------------------------------------------------------------ checks
def is_tumorpde_manifest(path: str | Path) -> bool:
    """Whether ``path`` is a manifest written by tumorpde.

    Accepted: JSON objects with ``"status"`` and ``"case"`` and either the ``"tumorpde"``
    version key (every manifest from 0.1 on) or ``"versions": {"tumorpde": ...}`` (earlier
    complete manifests).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or "status" not in data or "case" not in data:
        return False
    if isinstance(data.get("tumorpde"), str):
        return data["status"] in STATUSES
    vers = data.get("versions")
    return isinstance(vers, dict) and isinstance(vers.get("tumorpde"), str)


def _contents(p: Path) -> list[Path]:
    return [c for c in p.iterdir() if c.name != LOCK]


def prepare_run_dir(path: str | Path, *, overwrite: bool) -> Path:
    """Check an output directory (no lock, no change on disk).

    Refuses a non-empty directory unless ``overwrite``, and with ``overwrite`` one that does not
    hold a verified tumorpde run (:func:`is_tumorpde_manifest`).

    Args:
        path: The run directory.
        overwrite: Allow replacing an earlier tumorpde run there.

    Returns:
        The resolved path.

    Raises:
        OutputDirError: If the directory cannot be used.
    """
    p = Path(path).resolve()
    if p.exists() and not p.is_dir():
        raise OutputDirError(f"output path {p} exists and is not a directory")
    if p.is_dir() and _contents(p):
        if not overwrite:
            raise OutputDirError(
                f"output directory {p} is not empty; choose another -o or pass --overwrite"
            )
        m = p / MANIFEST
        if not m.is_file():
            raise OutputDirError(
                f"output directory {p} is not empty and holds no tumorpde {MANIFEST}; "
                "refusing to overwrite it"
            )
        if not is_tumorpde_manifest(m):
            raise OutputDirError(
                f"output directory {p}: {m.name} was not written by tumorpde (no status, case "
                "and tumorpde version); refusing to overwrite it, nothing was deleted"
            )
    return p


def clear_run_outputs(p: Path) -> None:
    """Remove the files an earlier tumorpde run wrote in ``p`` (rank 0 only; keeps ``.lock``).

    That includes the field segments of resumed runs (``fields.r<k>.vtkhdf.series/.pvd``
    and folder ``fields.r<k>/``, ``fields.r<k>.xdmf/.h5/.bp``).
    """
    for name in RUN_FILES:
        (p / name).unlink(missing_ok=True)
    for name in RUN_DIRS:
        shutil.rmtree(p / name, ignore_errors=True)
    for seg in p.glob("fields.r[0-9]*"):
        if seg.is_dir():
            shutil.rmtree(seg, ignore_errors=True)
        else:
            seg.unlink(missing_ok=True)
    for work in p.glob(".fields.r[0-9]*"):
        shutil.rmtree(work, ignore_errors=True)
    for tmp in [*p.glob(".fields*.vtkhdf.series.*"), *p.glob(".fields*.pvd.*")]:
        tmp.unlink(missing_ok=True)  # a series update cut short (atomic-write temporaries)


# ------------------------------------------------------------------------------ lock
def _lock_holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError):
        text = os.pread(fd, 256, 0).decode(errors="replace").strip()
        if text:
            return f" ({text})"
    return ""


def _try_lock(p: Path, *, create: bool) -> int | None:
    """Open and lock ``p/.lock`` without blocking; the fd, or None if there is no lock file.

    Raises:
        RunDirBusyError: If another process holds the lock.
    """
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        fd = os.open(p / LOCK, flags, 0o666)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        holder = _lock_holder(fd)
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise RunDirBusyError(
                f"output directory {p} is in use by a live run{holder}; wait for it to end, "
                "stop it, or choose another -o (--overwrite does not replace a live run)"
            ) from None
        raise
    return fd


def check_not_live(path: str | Path) -> None:
    """Raise :class:`RunDirBusyError` if a live run holds ``path`` (no change on disk)."""
    p = Path(path)
    if p.is_dir():
        fd = _try_lock(p, create=False)
        if fd is not None:
            os.close(fd)


# ------------------------------------------------------------------------------ RunDir
class RunDir:
    """A run directory held by one run: exclusive lock, status and manifest.

    Create it with :meth:`open` (collective). :meth:`mark`, :meth:`finish`, :meth:`write_text`
    and :meth:`close` are *not* collective: rank 0 does the work, the other ranks return at
    once, so they are safe in error paths where the ranks may disagree. Use it as a context
    manager: leaving the block with an exception marks a still-running run ``failed``
    (``interrupted`` for :class:`tumorpde.simulation.interrupt.Interrupted`) and releases the
    lock.

    Attributes:
        path: The resolved directory.
        comm: The run's communicator.
        record: The current manifest (rank 0 writes it).
    """

    def __init__(self, path: Path, comm: Any, fd: int | None, record: dict[str, Any]):
        self.path = path
        self.comm = comm
        self._fd = fd
        self.record = record

    @property
    def is_root(self) -> bool:
        """Whether this rank writes the files."""
        return self.comm is None or self.comm.rank == 0

    @property
    def status(self) -> str:
        """The current status."""
        return str(self.record["status"])

    @classmethod
    def open(
        cls,
        outdir: str | Path,
        *,
        overwrite: bool = False,
        comm: Any = None,
        case: str = "",
        info: Mapping[str, Any] | None = None,
        resume: bool = False,
    ) -> RunDir:
        """Lock, check and clear a run directory and mark it ``running`` (collective).

        Rank 0 takes ``OUTDIR/.lock`` (``fcntl.flock``, non-blocking) for the run's lifetime,
        checks the directory (:func:`prepare_run_dir`), removes an earlier run's files and
        writes the ``running`` manifest; the outcome is broadcast, so every rank returns or
        raises alike.

        Args:
            outdir: The run directory (created with its parents).
            overwrite: Allow replacing an earlier tumorpde run that is not live.
            comm: The run's communicator (None: this process alone).
            case: The case name.
            info: More manifest keys for the ``running`` record (e.g. :func:`provenance`).
            resume: Continue the tumorpde run in ``outdir`` (it must exist and not be live):
                nothing is removed, the earlier manifest's keys are kept and its status goes
                back to ``running`` (``overwrite`` is not needed).

        Returns:
            The held run directory (same path on all ranks).

        Raises:
            RunDirBusyError: If a live run holds the directory (even with ``overwrite``).
            OutputDirError: If the directory cannot be used; nothing was changed on disk.
        """
        path = Path(outdir).resolve()
        record: dict[str, Any] = {
            "tumorpde": __version__,
            "status": "running",
            "case": case,
            "started": _now(),
            "updated": _now(),
            **dict(info or {}),
        }
        err: tuple[str, str] | None = None
        fd = None
        if comm is None or comm.rank == 0:
            try:
                fd = cls._open_root(path, overwrite, record, resume)
            except RunDirBusyError as exc:
                err = ("busy", str(exc))
            except (OSError, OutputDirError) as exc:
                err = ("error", str(exc))
        if comm is not None and comm.size > 1:
            err, record = comm.bcast((err, record), root=0)
        if err is not None:
            raise (RunDirBusyError if err[0] == "busy" else OutputDirError)(err[1])
        return cls(path, comm, fd, record)

    @staticmethod
    def _open_root(path: Path, overwrite: bool, record: dict[str, Any], resume: bool) -> int:
        if path.is_dir() and _contents(path):
            check_not_live(path)  # a live run first: the clearest message
        if resume:
            if not is_tumorpde_manifest(path / MANIFEST):
                raise OutputDirError(f"{path}: no tumorpde run to resume (no valid {MANIFEST})")
            fd = _try_lock(path, create=True)
            assert fd is not None
            try:
                old = json.loads((path / MANIFEST).read_text())
                for key in ("status", "reason", "ended", "last_t_h", "last_step"):
                    old.pop(key, None)
                resumed = [*old.get("resumed", []), {"at": record["started"]}]
                merged = {**old, **record, "resumed": resumed, "started": old.get("started")}
                record.clear()
                record.update(merged)
                write_json_atomic(path / MANIFEST, record)
            except BaseException:
                os.close(fd)
                raise
            return fd
        prepare_run_dir(path, overwrite=overwrite)  # refuses before anything is created
        path.mkdir(parents=True, exist_ok=True)
        fd = _try_lock(path, create=True)
        assert fd is not None
        try:
            prepare_run_dir(path, overwrite=overwrite)  # again, now that the lock is held
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
            clear_run_outputs(path)
            write_json_atomic(path / MANIFEST, record)
        except BaseException:
            os.close(fd)
            raise
        return fd

    # -------------------------------------------------------------- status
    def update(self, **fields: Any) -> None:
        """Merge keys into the manifest record and write it (rank 0; not collective)."""
        self.record.update(fields)
        self.record["updated"] = _now()
        if self.is_root:
            write_json_atomic(self.path / MANIFEST, self.record)

    def mark(
        self,
        status: str,
        *,
        reason: str | None = None,
        t: float | None = None,
        step: int | None = None,
        **extra: Any,
    ) -> None:
        """Set the status (rank 0 writes the manifest atomically; not collective).

        Args:
            status: One of :data:`STATUSES`.
            reason: Why the run stopped (the error message, or the signal name).
            t: Time of the last accepted step (h).
            step: Number of that step.
            **extra: More manifest keys.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; one of {STATUSES}")
        fields: dict[str, Any] = {"status": status, **extra}
        if reason is not None:
            fields["reason"] = reason
        if t is not None:
            fields["last_t_h"] = float(t)
        if step is not None:
            fields["last_step"] = int(step)
        if status != "running":
            fields["ended"] = _now()
        self.update(**fields)

    def finish(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Write the final manifest with status ``complete`` (rank 0; not collective).

        Args:
            manifest: The run's record (:func:`manifest`); the running record's keys
                (provenance, start time) are kept.

        Returns:
            The manifest as written.
        """
        self.record.update(manifest)
        self.record.pop("reason", None)
        self.mark("complete")
        return dict(self.record)

    def write_text(self, name: str, text: str) -> Path:
        """Write a file in the directory atomically (rank 0; not collective)."""
        p = self.path / name
        if self.is_root:
            write_text_atomic(p, text)
        return p

    # -------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Release the lock (rank 0; idempotent; not collective). The ``.lock`` file stays."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def locked(self) -> bool:
        """Whether this rank holds the lock."""
        return self._fd is not None

    def __enter__(self) -> RunDir:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is not None and self.status == "running":
                with contextlib.suppress(OSError):
                    self.mark_exception(exc)
        finally:
            self.close()

    def mark_exception(
        self, exc: BaseException, *, t: float | None = None, step: int | None = None
    ) -> None:
        """Mark the run ``interrupted`` (a signal) or ``failed`` (anything else)."""
        sig = getattr(exc, "signal_name", None)
        if sig is not None:
            self.mark(
                "interrupted",
                reason=str(sig),
                t=getattr(exc, "t", t),
                step=getattr(exc, "step", step),
            )
        elif isinstance(exc, KeyboardInterrupt):
            self.mark("interrupted", reason="SIGINT (KeyboardInterrupt)", t=t, step=step)
        else:
            msg = str(exc) or type(exc).__name__
            self.mark("failed", reason=f"{type(exc).__name__}: {msg}", t=t, step=step)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def prepare(outdir: str | Path | None, overwrite: bool, comm: Any, case: str) -> Path | None:
    """Compatibility wrapper: open a :class:`RunDir` and release it at once (collective).

    Prefer :meth:`RunDir.open`, which keeps the directory locked for the run.
    """
    if outdir is None:
        return None
    rd = RunDir.open(outdir, overwrite=overwrite, comm=comm, case=case)
    rd.close()
    return rd.path


# ------------------------------------------------------------------------------ provenance
def _git(cwd: Path, *args: str) -> str | None:
    try:
        res = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return res.stdout.strip() if res.returncode == 0 else None


def git_info(path: str | Path | None = None) -> dict[str, Any] | None:
    """Revision and dirty flag of the git checkout that holds ``path`` (default: tumorpde).

    Returns:
        ``{"revision", "dirty", "root"}``, or None outside a git checkout (or without git).
    """
    here = Path(path) if path is not None else Path(__file__).resolve().parent
    root = _git(here, "rev-parse", "--show-toplevel")
    if not root:
        return None
    rev = _git(here, "rev-parse", "HEAD")
    status = _git(here, "status", "--porcelain", "--untracked-files=no")
    return {"revision": rev, "dirty": bool(status) if status is not None else None, "root": root}


def mpi_library() -> str | None:
    """The MPI library's version line (None without mpi4py loaded)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None:
        return None
    try:
        return str(mpi.Get_library_version()).splitlines()[0].strip()
    except Exception:  # provenance must never stop a run
        return None


def provenance(
    cfg: CaseConfig | None = None, *, argv: Sequence[str] | None = None, comm: Any = None
) -> dict[str, Any]:
    """How the run was started: command line, cwd, git, host, MPI, Python, mesh checksum.

    Args:
        cfg: The case (its mesh file is hashed; box meshes have no file).
        argv: The command line (default ``sys.argv``).
        comm: The communicator (its size is recorded).

    Returns:
        A JSON-able mapping (rank-local; call it on rank 0).
    """
    out: dict[str, Any] = {
        "command": list(sys.argv if argv is None else argv),
        "cwd": os.getcwd(),
        "host": socket.gethostname(),
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "mpi_library": mpi_library(),
        "mpi_ranks": comm.size if comm is not None else 1,
        "git": git_info(),
        "tumorpde_path": str(Path(__file__).resolve().parents[1]),
    }
    mesh: dict[str, Any] = {"kind": "box", "sha256": None}
    path = getattr(getattr(cfg, "mesh", None), "path", None) if cfg is not None else None
    if path is not None:
        mesh = {"kind": "file", "path": str(Path(path).resolve()), "sha256": None}
        with contextlib.suppress(OSError):
            mesh["sha256"] = sha256_file(path)
    out["mesh_file"] = mesh
    return out


# ------------------------------------------------------------------------------ resolved.toml
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_str(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters (DEL too) escaped."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(k: Any) -> str:
    k = str(k)
    return k if _BARE.match(k) else _toml_str(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str | Path):
        return _toml_str(str(v))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v if x is not None) + "]"
    if isinstance(v, Mapping):
        items = [f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items() if x is not None]
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot write a {type(v).__name__} to TOML")


def to_toml(data: Mapping[str, Any]) -> str:
    """A minimal TOML writer: tables as ``[a.b]`` sections, arrays of tables inline.

    None values are left out (TOML has no null). Floats are written with ``repr`` (exact).
    """
    lines: list[str] = []

    def table(d: Mapping[str, Any], path: list[str]) -> None:
        scalars = [(k, v) for k, v in d.items() if v is not None and not isinstance(v, Mapping)]
        subs = [(k, v) for k, v in d.items() if isinstance(v, Mapping)]
        if path and (scalars or not subs):
            lines.append("[" + ".".join(_toml_key(p) for p in path) + "]")
        for k, v in scalars:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        if scalars:
            lines.append("")
        for k, v in subs:
            table(v, [*path, str(k)])

    table(data, [])
    return "\n".join(lines).rstrip("\n") + "\n"


def resolved_toml(cfg: CaseConfig) -> str:
    """The validated case as TOML in internal units (mm, h, nM), mesh path absolute.

    ``tumorpde.load_config`` of this text gives the same case (a single-pathway shorthand case
    comes back as a ``[pathways.<P>]`` table). Pathway tables carry ``library = false``: they
    are complete, and TOML cannot write the None values that the library would otherwise fill.
    """
    data = cfg.model_dump(mode="json")
    if "dt_min" not in cfg.time.model_fields_set:  # its check applies only when given
        data["time"].pop("dt_min", None)
    for table in (data.get("pathways") or {}).values():
        if isinstance(table, dict):  # complete already: no library values under it (a None
            table["library"] = False  # such as "no saturation" would take the library's)
    head = (
        f"# resolved by tumorpde {__version__} on {_now()}: the case after extends, library, "
        "organ profile and --set,\n# in internal units (mm, h, nM). Rerun: tumorpde rerun "
        "<this run directory>\n"
    )
    return head + to_toml(data)


# ------------------------------------------------------------------------------ manifest
def manifest(
    cfg: CaseConfig,
    model: Model,
    domain: Domain,
    *,
    num_unknowns: int,
    mpi_ranks: int,
    solver: Mapping[str, Any],
    rows: Sequence[Mapping[str, float]],
    timings: Mapping[str, float],
    files: Mapping[str, str],
) -> dict[str, Any]:
    """The provenance record of a finished run (collective: region volumes are reduced).

    Args:
        cfg: The case.
        model: Its compiled model.
        domain: The mesh with regions.
        num_unknowns: Global number of unknowns.
        mpi_ranks: Number of MPI ranks.
        solver: Solver description (prefix, options, counters).
        rows: The QoI rows (the last one is the final state).
        timings: Wall times (s) by phase.
        files: Written files by key.
    """
    from petsc4py import PETSc

    vols = domain.region_volumes()
    return {
        "tumorpde": __version__,
        "status": "complete",
        "case": cfg.name,
        "description": cfg.description,
        "created": _now(),
        "units": {"length": "mm", "time": "h", "concentration": "nM"},
        "resolved": cfg.model_dump(mode="json"),
        "species": [
            {"name": sp.name, "kind": sp.kind, "unit": sp.unit, "pathway": sp.pathway}
            for sp in model.species
        ],
        "derived": model.summary(),
        "mesh": {
            "cells": domain.num_cells_global(),
            "vertices": domain.num_vertices_global(),
            "regions": domain.regions,
            "boundaries": domain.boundaries,
            "region_volumes_mm3": vols,
        },
        "unknowns": num_unknowns,
        "mpi_ranks": mpi_ranks,
        "solver": {
            **solver,
            "petsc_version": ".".join(str(v) for v in PETSc.Sys.getVersion()),
        },
        "steps": len(rows) - 1,
        "final": rows[-1] if rows else {},
        "timings_s": dict(timings),
        "versions": versions(),
        "files": dict(files),
    }


def versions() -> dict[str, str]:
    """Versions of tumorpde and the libraries it runs on (no dolfinx import needed)."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in (
        "tumorpde",
        "dolfinx-solver-real",
        "fenics-dolfinx",
        "fenics-ufl",
        "fenics-basix",
        "fenics-ffcx",
        "mpi4py",
        "petsc4py",
        "numpy",
        "pydantic",
        "pint",
        "pyvista",
        "gmsh",
        "h5py",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    out.setdefault("tumorpde", __version__)
    return out
