"""Interactive viewing of a finished run: one session shown in a window or served to a browser.

A :class:`ViewSession` holds what the viewer shows — output time, field, figure preset, cut
plane and visible regions — and draws it into one PyVista plotter: the selected regions clipped
by the cut plane, coloured by the field (colour map and limits of the preset's field style, the
same over all output times), over a faint outline of the whole domain. Data come from
:func:`tumorpde.output.load.load_run`; styles, organ cameras and the fields of each preset from
:mod:`tumorpde.output.viz.presets`.

Two front ends drive the same session:

* :func:`open_window` — a desktop PyVista window (needs a display) with a time slider, radio
  buttons for the field and the preset, check buttons for the regions and the cut, and a plane
  widget that moves the cut.
* :func:`serve` — the session served to a web browser with trame (server-side rendering: only
  pictures travel, so it suits a run on a remote cluster node reached by an SSH tunnel), with
  the same controls as web widgets.

PyVista and trame are imported lazily, on one process.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tumorpde.output.viz import presets, scene

__all__ = [
    "Served",
    "ViewSession",
    "display_available",
    "in_notebook",
    "make_session",
    "open_window",
    "serve",
    "trame_available",
]

#: Axis names of the cut plane and their normals.
AXES: dict[str, tuple[float, float, float]] = {
    "x": (1.0, 0.0, 0.0),
    "y": (0.0, 1.0, 0.0),
    "z": (0.0, 0.0, 1.0),
}


def _pyvista(off_screen: bool) -> Any:
    if off_screen:
        os.environ.setdefault("PYVISTA_OFF_SCREEN", "true")
        # render through EGL: no X server needed (Debian libegl1 + libegl-mesa0)
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    try:
        import pyvista as pv
    except ImportError as exc:  # pragma: no cover - the viz extra is missing
        raise RuntimeError(
            "interactive viewing needs PyVista: pip install 'tumorpde[viz]'"
        ) from exc
    return pv


def display_available() -> bool:
    """Whether a desktop window can open (a display on Linux; always on macOS and Windows).

    Returns:
        True when ``DISPLAY`` or ``WAYLAND_DISPLAY`` is set, or the platform is not Linux/BSD.
    """
    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def trame_available() -> bool:
    """Whether the browser session can be served (trame, trame-vtk, trame-vuetify installed).

    Returns:
        True when the trame packages import.
    """
    import importlib.util

    names = ("trame", "trame_vtk", "trame_vuetify", "trame_pyvista")
    return all(importlib.util.find_spec(n) is not None for n in names)


def _region_tags(run: Any, tags_present: np.ndarray) -> dict[str, int]:
    """Region name → tag: from ``run.regions`` (a mapping, or names in tag order)."""
    regions = getattr(run, "regions", None) or {}
    present = sorted(int(t) for t in np.unique(tags_present))
    if isinstance(regions, Mapping):
        out = {}
        for name, tag in regions.items():
            t = getattr(tag, "tag", tag)
            try:
                out[str(name)] = int(t)
            except (TypeError, ValueError):
                continue
        if out:
            return {n: t for n, t in out.items() if t in present}
    names = [str(getattr(r, "name", r)) for r in regions]
    if len(names) == len(present):
        return dict(zip(names, present, strict=True))
    return {f"region {t}": t for t in present}


@dataclass
class ViewState:
    """What a session shows (the web page's state mirrors it).

    Attributes:
        index: Output time index.
        field: Field name.
        preset: Figure preset (see :data:`tumorpde.output.viz.presets.PRESETS`).
        cut: Whether the cut plane clips the regions.
        axis: Axis of the cut plane normal (``x``, ``y`` or ``z``) while the slider moves it.
        position: Cut position along ``axis`` as a fraction of the domain's extent, in [0, 1].
        normal: Cut plane normal (set by the plane widget or by ``axis``).
        origin: A point of the cut plane.
        regions: Names of the visible regions.
    """

    index: int
    field: str
    preset: str
    cut: bool = True
    axis: str = "z"
    position: float = 0.5
    normal: tuple[float, float, float] = (0.0, 0.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    regions: list[str] = field(default_factory=list)


class ViewSession:
    """A run, a plotter and what the plotter shows; every ``set_*`` redraws.

    Args:
        run: A loaded run (:func:`tumorpde.output.load.load_run`).
        plotter: The PyVista plotter to draw into (a window, an off-screen plotter or the
            plotter behind a trame view).
        preset: Initial figure preset (default ``auto``).
        field: Initial field (default: the preset's first field).
        time: Initial output time: hours or a quantity (``"2 day"``), a stored time (default:
            the last output).

    Raises:
        ValueError: Unknown preset or field, a time that is not stored, or a run without
            stored fields.
    """

    def __init__(
        self,
        run: Any,
        plotter: Any,
        *,
        preset: str = "auto",
        field: str | None = None,
        time: float | str | None = None,
    ) -> None:
        self.run = run
        self.plotter = plotter
        self.times = np.asarray(run.times, dtype=float)
        self.all_fields = [str(f) for f in run.fields]
        if len(self.times) == 0 or not self.all_fields:
            raise ValueError(f"run {getattr(run, 'path', '')}: no stored fields to view")
        self.units: dict[str, str] = {str(k): str(v) for k, v in dict(run.units or {}).items()}
        self.time_unit = self.units.get("time", "h")
        self._data: dict[int, Any] = {}
        self._ranges: dict[str, tuple[float, float]] = {}
        first = self.dataset(len(self.times) - 1)
        self.bounds = tuple(float(b) for b in first.bounds)
        self.region_tags = _region_tags(run, np.asarray(first.cell_data["region"]))
        organ = presets.organ_of(
            getattr(run, "case", None), list(self.region_tags) or list(run.regions or [])
        )
        view = scene.view_for(organ, self.bounds)
        self.view_up = tuple(float(c) for c in view.up)
        k = int(np.argmax(np.abs(view.normal)))
        centre, _ = scene.lesion(first)  # the cut starts through the lesion
        lo, hi = self.bounds[2 * k], self.bounds[2 * k + 1]
        self.state = ViewState(
            index=len(self.times) - 1,
            field="",
            preset="auto",
            axis="xyz"[k],
            position=float((centre[k] - lo) / (hi - lo)) if hi > lo else 0.5,
            normal=AXES["xyz"[k]],
            origin=(float(centre[0]), float(centre[1]), float(centre[2])),
            regions=list(self.region_tags),
        )
        self._camera_set = False
        self._listeners: list[Callable[[], None]] = []
        self.set_preset(preset, render=False)
        if field is not None:
            self.set_field(field, render=False)
        if time is not None:
            from tumorpde.output.viz.figure import pick_time

            self.set_time(pick_time(run, time), render=False)
        self.render()

    # -- data --------------------------------------------------------------------------------
    def dataset(self, index: int) -> Any:
        """The run's mesh with its fields at output ``index`` (cached).

        Args:
            index: Output time index.

        Returns:
            A ``pyvista.UnstructuredGrid``.
        """
        if index not in self._data:
            if len(self._data) > 16:
                self._data.pop(next(iter(self._data)))
            self._data[index] = self.run.dataset(index=index)
        return self._data[index]

    def field_names(self) -> list[str]:
        """Fields offered for the current preset (the preset's fields first, then the rest).

        Returns:
            Field names.
        """
        try:
            first = presets.preset_fields(
                self.state.preset, self.all_fields, getattr(self.run, "case", None)
            )
        except ValueError:
            first = []
        return [*first, *(f for f in self.all_fields if f not in first)]

    def clim(self, name: str) -> tuple[float, float]:
        """Colour limits of a field over every output time (the preset's fixed limits first).

        Args:
            name: Field name.

        Returns:
            (low, high).
        """
        style = presets.field_style(name, self.units.get(name, ""))
        if style.clim is None and name not in self._ranges:
            lo, hi = math.inf, -math.inf
            for i in range(len(self.times)):
                v = np.asarray(self.dataset(i).point_data[name])
                lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
            self._ranges[name] = (lo, hi)
        return presets.merge_clims({name: style}, self._ranges)[name]

    # -- state changes ------------------------------------------------------------------------
    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every redraw (a front end refreshing its widgets or view).

        Args:
            callback: Function without arguments.
        """
        self._listeners.append(callback)

    def set_index(self, index: float, *, render: bool = True) -> None:
        """Show output ``index`` (clamped to the stored outputs).

        Args:
            index: Output time index (a slider's float is rounded).
            render: Redraw now.
        """
        self.state.index = min(max(round(index), 0), len(self.times) - 1)
        if render:
            self.render()

    def set_time(self, time: float, *, render: bool = True) -> None:
        """Show the output nearest to ``time``.

        Args:
            time: Time in the run's time unit.
            render: Redraw now.
        """
        self.set_index(int(np.argmin(np.abs(self.times - float(time)))), render=render)

    def set_field(self, name: str, *, render: bool = True) -> None:
        """Colour by field ``name``.

        Args:
            name: A stored field.
            render: Redraw now.

        Raises:
            ValueError: The run stored no such field.
        """
        if name not in self.all_fields:
            raise ValueError(
                f"field {name!r} not stored in this run; stored: {', '.join(self.all_fields)}"
            )
        self.state.field = name
        if render:
            self.render()

    def set_preset(self, preset: str, *, render: bool = True) -> None:
        """Switch the figure preset; the field becomes the preset's first field.

        Args:
            preset: One of :data:`tumorpde.output.viz.presets.PRESETS`.
            render: Redraw now.

        Raises:
            ValueError: Unknown preset.
        """
        if preset not in presets.PRESETS:
            raise ValueError(
                f"unknown preset {preset!r}; choose one of {', '.join(presets.PRESETS)}"
            )
        self.state.preset = preset
        self.state.field = self.field_names()[0]
        if render:
            self.render()

    def set_regions(self, names: Sequence[str], *, render: bool = True) -> None:
        """Show only the regions ``names``.

        Args:
            names: Region names (unknown names are an error).
            render: Redraw now.

        Raises:
            ValueError: A name is not a region of the mesh.
        """
        bad = [n for n in names if n not in self.region_tags]
        if bad:
            raise ValueError(
                f"unknown region(s) {', '.join(bad)}; regions: {', '.join(self.region_tags)}"
            )
        self.state.regions = [n for n in self.region_tags if n in names]
        if render:
            self.render()

    def toggle_region(self, name: str, visible: bool, *, render: bool = True) -> None:
        """Show or hide one region.

        Args:
            name: Region name.
            visible: Show it.
            render: Redraw now.
        """
        now = set(self.state.regions)
        now = now | {name} if visible else now - {name}
        self.set_regions(sorted(now), render=render)

    def set_cut(
        self,
        enabled: bool | None = None,
        *,
        origin: Sequence[float] | None = None,
        normal: Sequence[float] | None = None,
        axis: str | None = None,
        position: float | None = None,
        render: bool = True,
    ) -> None:
        """Move the cut plane: by origin and normal (plane widget) or by axis and position.

        Args:
            enabled: Clip by the plane (None: unchanged).
            origin: A point of the plane.
            normal: Plane normal.
            axis: ``x``, ``y`` or ``z``: normal along that axis.
            position: Fraction of the extent along ``axis`` where the plane sits, in [0, 1].
            render: Redraw now.

        Raises:
            ValueError: Unknown axis.
        """
        s = self.state
        if enabled is not None:
            s.cut = bool(enabled)
        if axis is not None:
            if axis not in AXES:
                raise ValueError(f"cut axis must be x, y or z, not {axis!r}")
            if axis != s.axis or s.normal != AXES[axis]:
                self._camera_set = False  # look at the new cut face
            s.axis, s.normal = axis, AXES[axis]
        if position is not None:
            s.position = float(min(max(position, 0.0), 1.0))
        if axis is not None or position is not None:
            k = "xyz".index(s.axis)
            lo, hi = self.bounds[2 * k], self.bounds[2 * k + 1]
            o = list(s.origin)
            o[k] = lo + s.position * (hi - lo)
            s.origin = (o[0], o[1], o[2])
        if normal is not None:
            n = np.asarray(normal, dtype=float)
            s.normal = tuple(float(c) for c in n / max(np.linalg.norm(n), 1e-300))  # type: ignore[assignment]
        if origin is not None:
            s.origin = tuple(float(c) for c in origin)  # type: ignore[assignment]
        if render:
            self.render()

    # -- drawing --------------------------------------------------------------------------------
    def time_label(self) -> str:
        """Text naming the output shown (time, with days when the unit is hours).

        Returns:
            E.g. ``t = 48 h (2 d)  [5/9]``.
        """
        t = float(self.times[self.state.index])
        text = f"t = {t:g} {self.time_unit}"
        if self.time_unit == "h":
            text += f" ({t / 24:.3g} d)"
        return f"{text}  [{self.state.index + 1}/{len(self.times)}]"

    def _shown(self) -> Any:
        s = self.state
        ds = self.dataset(s.index)
        tags = [self.region_tags[n] for n in s.regions]
        if len(tags) < len(self.region_tags):
            keep = np.isin(np.asarray(ds.cell_data["region"]), tags)
            ds = ds.extract_cells(np.flatnonzero(keep))
        if s.cut and ds.n_cells:
            ds = ds.clip(normal=s.normal, origin=s.origin, invert=True)
        return ds

    def render(self) -> None:
        """Redraw the plotter from the state (keeps the camera after the first draw)."""
        s = self.state
        pl = self.plotter
        style = presets.field_style(s.field, self.units.get(s.field, ""))
        shown = self._shown()
        if "view_outline" not in pl.actors:
            surface = self.dataset(s.index).extract_surface(algorithm=None)
            pl.add_mesh(
                surface,
                name="view_outline",
                color="lightgrey",
                opacity=0.15,
                culling="front",
                pickable=False,
            )
        pl.remove_actor("view_field", reset_camera=False, render=False)
        if getattr(pl, "scalar_bars", None) is not None:
            for title in list(pl.scalar_bars.keys()):
                pl.remove_scalar_bar(title, render=False)
        if shown.n_cells:
            pl.add_mesh(
                shown,
                name="view_field",
                scalars=s.field,
                cmap=style.cmap,
                clim=self.clim(s.field),
                scalar_bar_args={
                    "title": style.title,
                    "vertical": True,
                    "position_x": 0.88,
                    "position_y": 0.2,
                    "height": 0.45,
                },
                reset_camera=False,
                render=False,
            )
        pl.add_text(self.time_label(), position="upper_edge", font_size=10, name="view_time")
        if not self._camera_set:
            pl.view_vector(s.normal if s.cut else (1.0, 1.0, 1.0), self.view_up)  # the cut face
            pl.reset_camera()
            self._camera_set = True
        pl.render()
        for callback in self._listeners:
            callback()

    def screenshot(self, path: str | Path | None = None) -> np.ndarray:
        """The current picture (and optionally save it as PNG).

        Args:
            path: PNG file to write, or None.

        Returns:
            RGB image, shape (height, width, 3).
        """
        return np.asarray(self.plotter.screenshot(str(path) if path else None, return_img=True))


def _load(run: Any) -> Any:
    if isinstance(run, (str, Path)):
        from tumorpde.output.load import load_run

        return load_run(run)
    return run


def make_session(
    run: Any,
    *,
    off_screen: bool = True,
    window_size: tuple[int, int] = (1024, 768),
    **kwargs: Any,
) -> ViewSession:
    """A session on a new plotter (off-screen for pictures, tests and the browser).

    Args:
        run: A loaded run or its directory.
        off_screen: Render off-screen.
        window_size: Picture size in pixels.
        **kwargs: ``preset``, ``field``, ``time`` (see :class:`ViewSession`).

    Returns:
        The session.
    """
    pv = _pyvista(off_screen)
    plotter = pv.Plotter(off_screen=off_screen, window_size=list(window_size))
    return ViewSession(_load(run), plotter, **kwargs)


def _radio_buttons(
    pl: Any,
    names: Sequence[str],
    chosen: str,
    on_pick: Callable[[str], None],
    *,
    x: int,
    y: int,
    title: str,
) -> Callable[[str], None]:
    """A column of check buttons acting as radio buttons; returns a function selecting one."""
    widgets: dict[str, Any] = {}

    def select(name: str) -> None:
        for other, w in widgets.items():
            w.GetRepresentation().SetState(1 if other == name else 0)

    pl.add_text(title, position=(x, y + 24 * len(names)), font_size=9, name=f"label_{title}")
    for i, name in enumerate(names):
        yy = y + 24 * (len(names) - 1 - i)

        def picked(on: bool, name: str = name) -> None:
            select(name)
            if on:
                on_pick(name)

        widgets[name] = pl.add_checkbox_button_widget(
            picked, value=name == chosen, position=(x, yy), size=18, color_on="steelblue"
        )
        pl.add_text(name, position=(x + 24, yy), font_size=8, name=f"label_{title}_{name}")
    return select


def open_window(
    run: Any,
    *,
    preset: str = "auto",
    field: str | None = None,
    time: float | str | None = None,
    window_size: tuple[int, int] = (1400, 900),
    show: bool = True,
) -> ViewSession:
    """Open a desktop window: time slider, field/preset radio buttons, region and cut toggles.

    Args:
        run: A loaded run or its directory.
        preset: Initial preset.
        field: Initial field.
        time: Initial time.
        window_size: Window size in pixels.
        show: Show the window and block until it is closed (False: build it only, for tests).

    Returns:
        The session (after the window closed, when ``show``).

    Raises:
        RuntimeError: ``show`` without a display.
    """
    if show and not display_available():
        raise RuntimeError(
            "no display: use `tumorpde view RUN --server` and open the printed address in a "
            "browser (through `ssh -L PORT:localhost:PORT host` on a cluster node)"
        )
    pv = _pyvista(off_screen=not show)
    pl = pv.Plotter(off_screen=not show, window_size=list(window_size), title="tumorpde view")
    session = ViewSession(_load(run), pl, preset=preset, field=field, time=time)
    n = len(session.times)
    if n > 1:
        pl.add_slider_widget(
            session.set_index,
            [0, n - 1],
            value=session.state.index,
            title="output",
            pointa=(0.25, 0.06),
            pointb=(0.75, 0.06),
            fmt="%.0f",
            style="modern",
            interaction_event="always",
        )

    field_select: list[Callable[[str], None]] = []

    def pick_preset(name: str) -> None:
        session.set_preset(name)
        if field_select:
            field_select[0](session.state.field)

    _radio_buttons(
        pl, presets.PRESETS, session.state.preset, pick_preset, x=10, y=160, title="preset"
    )
    field_select.append(
        _radio_buttons(
            pl,
            session.all_fields,
            session.state.field,
            session.set_field,
            x=10,
            y=160 + 24 * (len(presets.PRESETS) + 2),
            title="field",
        )
    )
    session.on_change(lambda: field_select[0](session.state.field))
    x_right, y_top = window_size[0] - 200, window_size[1] - 90
    pl.add_text("regions", position=(x_right, y_top), font_size=9, name="label_regions")
    for i, name in enumerate(session.region_tags):
        yy = y_top - 24 * (i + 1)
        pl.add_checkbox_button_widget(
            lambda on, name=name: session.toggle_region(name, bool(on)),
            value=True,
            position=(x_right, yy),
            size=18,
            color_on="seagreen",
        )
        pl.add_text(name, position=(x_right + 24, yy), font_size=8, name=f"label_region_{name}")
    y_cut = y_top - 24 * (len(session.region_tags) + 2)
    plane = pl.add_plane_widget(
        lambda normal, origin: session.set_cut(normal=normal, origin=origin),
        normal=session.state.normal,
        origin=session.state.origin,
        bounds=session.bounds,
        outline_translation=False,
        normal_rotation=True,
    )

    def toggle_cut(on: bool) -> None:
        session.set_cut(bool(on))
        plane.SetEnabled(bool(on))

    pl.add_checkbox_button_widget(
        toggle_cut, value=True, position=(x_right, y_cut), size=18, color_on="orange"
    )
    pl.add_text(
        "cut plane (drag it)", position=(x_right + 24, y_cut), font_size=8, name="label_cut"
    )
    if show:
        pl.show()
    return session


@dataclass
class Served:
    """A browser session ready to start (or running inside a Jupyter kernel).

    Attributes:
        session: The view session behind the page.
        server: The trame server (``server.start()`` serves it).
        url: Address of the page.
        height: Height of the notebook frame in pixels.
    """

    session: ViewSession
    server: Any
    url: str
    height: int = 640

    async def ready(self) -> str:
        """Wait until the server listens (in a notebook: ``await view.ready()``).

        Returns:
            The page address.
        """
        await self.server.ready
        return self.url

    async def stop(self) -> None:
        """Stop the server (in a notebook: ``await view.stop()``)."""
        await self.server.stop()

    def _repr_html_(self) -> str:
        return (
            f'<iframe src="{self.url}" width="100%" height="{self.height}" '
            'style="border: 1px solid #ccc"></iframe>'
        )


def serve(
    run: Any,
    *,
    port: int = 8080,
    host: str = "127.0.0.1",
    preset: str = "auto",
    field: str | None = None,
    time: float | str | None = None,
    start: bool = True,
    ready: Callable[[str], None] | None = None,
) -> Served:
    """Serve the session to a web browser with trame (server-side rendering).

    Args:
        run: A loaded run or its directory.
        port: TCP port (0: any free port).
        host: Interface to listen on (default: this machine only; reach it by an SSH tunnel).
        preset: Initial preset.
        field: Initial field.
        time: Initial time.
        start: Start serving and block until the server stops.
        ready: Called with the page address once the server listens.

    Returns:
        The served session.

    Raises:
        RuntimeError: trame is not installed.
    """
    if not trame_available():
        raise RuntimeError(
            "the browser session needs trame: pip install 'tumorpde[viz]' "
            "(trame, trame-vtk, trame-vuetify, trame-pyvista)"
        )
    from trame.app import get_server
    from trame.ui.vuetify3 import SinglePageWithDrawerLayout
    from trame.widgets import html
    from trame.widgets import vuetify3 as v3
    from trame_pyvista import PyVistaRemoteView

    session = make_session(run, off_screen=True, preset=preset, field=field, time=time)
    name = str(getattr(run, "path", run) if not isinstance(run, str) else run)
    server = get_server(f"tumorpde-view-{id(session)}", client_type="vue3")
    st, ctrl = server.state, server.controller
    s = session.state
    st.update(
        {
            "time_index": s.index,
            "time_label": session.time_label(),
            "n_times": len(session.times) - 1,
            "field": s.field,
            "fields": session.field_names(),
            "preset": s.preset,
            "presets": list(presets.PRESETS),
            "cut": s.cut,
            "axis": s.axis,
            "position": s.position,
            "regions": list(s.regions),
            "region_names": list(session.region_tags),
        }
    )

    def push() -> None:
        """Mirror the session into the page (after a change from the page or from Python)."""
        s = session.state
        with st:
            st.time_index = s.index
            st.time_label = session.time_label()
            st.fields = session.field_names()
            st.field = s.field
            st.preset = s.preset
            st.cut = s.cut
            st.axis = s.axis
            st.position = s.position
            st.regions = list(s.regions)
        if server.running:
            ctrl.view_update()

    session.on_change(push)

    @st.change("time_index")
    def _time(time_index: Any, **_: Any) -> None:
        if int(time_index) != session.state.index:
            session.set_index(int(time_index))

    @st.change("field")
    def _field(field: Any, **_: Any) -> None:
        if field and field != session.state.field:
            session.set_field(str(field))

    @st.change("preset")
    def _preset(preset: Any, **_: Any) -> None:
        if preset and preset != session.state.preset:
            session.set_preset(str(preset))

    @st.change("cut", "axis", "position")
    def _cut(cut: Any, axis: Any, position: Any, **_: Any) -> None:
        s = session.state
        if (bool(cut), axis, float(position)) != (s.cut, s.axis, s.position):
            session.set_cut(bool(cut), axis=str(axis), position=float(position))

    @st.change("regions")
    def _regions(regions: Any, **_: Any) -> None:
        if sorted(regions or []) != sorted(session.state.regions):
            session.set_regions(list(regions or []))

    with SinglePageWithDrawerLayout(server, full_height=True) as layout:
        layout.title.set_text(f"tumorpde view — {Path(name).name}")
        with layout.toolbar:
            v3.VSpacer()
            html.Div("{{ time_label }}", id="time-label", classes="text-body-1 mr-4")
        with layout.drawer as drawer:
            drawer.width = 320
            with v3.VContainer(classes="pa-3"):
                html.Div("Output time", classes="text-subtitle-2")
                v3.VSlider(
                    id="time-slider",
                    v_model=("time_index",),
                    min=0,
                    max=("n_times",),
                    step=1,
                    hide_details=True,
                    thumb_label=True,
                    density="compact",
                )
                v3.VSelect(
                    id="preset-select",
                    label="Preset",
                    v_model=("preset",),
                    items=("presets",),
                    density="compact",
                    classes="mt-4",
                )
                v3.VSelect(
                    id="field-select",
                    label="Field",
                    v_model=("field",),
                    items=("fields",),
                    density="compact",
                )
                v3.VSwitch(
                    id="cut-switch",
                    label="Cut plane",
                    v_model=("cut",),
                    density="compact",
                    hide_details=True,
                    color="primary",
                )
                with v3.VBtnToggle(
                    v_model=("axis",), mandatory=True, density="compact", disabled=("!cut",)
                ):
                    for a in AXES:
                        v3.VBtn(a, value=a, id=f"axis-{a}")
                v3.VSlider(
                    id="cut-slider",
                    label="position",
                    v_model=("position",),
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    disabled=("!cut",),
                    hide_details=True,
                    density="compact",
                )
                html.Div("Regions", classes="text-subtitle-2 mt-4")
                with html.Div(v_for="r in region_names", key="r"):
                    v3.VCheckbox(
                        v_model=("regions",),
                        value=("r",),
                        label=("r",),
                        density="compact",
                        hide_details=True,
                    )
        with (
            layout.content,
            v3.VContainer(fluid=True, classes="pa-0 fill-height", id="view"),
        ):
            view = PyVistaRemoteView(session.plotter, interactive_ratio=1, still_ratio=1)
            ctrl.view_update = view.update
            ctrl.view_reset_camera = view.reset_camera

    shown_host = "localhost" if host in ("0.0.0.0", "127.0.0.1") else host
    url = f"http://{shown_host}:{port}/"

    @ctrl.add("on_server_ready")
    def _ready(**_: Any) -> None:
        served.url = f"http://{shown_host}:{server.port or port}/"
        if ready is not None:
            ready(served.url)

    served = Served(session, server, url)
    if start:
        server.start(port=port, host=host, open_browser=False, show_connection_info=False)
    return served


def _free_port(host: str) -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def in_notebook(
    run: Any,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    height: int = 640,
    preset: str = "auto",
    field: str | None = None,
    time: float | str | None = None,
) -> Served:
    """Serve the browser session from inside a running Jupyter kernel and show it in a frame.

    The trame server runs as a task on the kernel's event loop, so the notebook stays usable;
    the returned object displays as an ``<iframe>`` of the page, and ``view.session`` changes
    what it shows from Python. The frame loads from ``host:port`` as seen by the browser: on a
    remote Jupyter server, forward that port (``ssh -L``) or use ``tumorpde view --server``.

    Args:
        run: A loaded run or its directory.
        port: TCP port (0: a free one).
        host: Interface to listen on.
        height: Frame height in pixels.
        preset: Initial preset.
        field: Initial field.
        time: Initial time.

    Returns:
        The served session (``await view.ready()`` waits for it, ``await view.stop()`` ends it).
    """
    port = port or _free_port(host)
    served = serve(run, port=port, host=host, preset=preset, field=field, time=time, start=False)
    served.height = height
    served.server.start(
        exec_mode="task", port=port, host=host, open_browser=False, show_connection_info=False
    )
    return served
