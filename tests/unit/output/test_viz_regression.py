"""Image regression of ``tumorpde.viz``: headless renders against stored reference PNGs.

The scenes are drawn from a synthetic run (a tetrahedral box with a growing Gaussian lesion,
two regions, three stored times), so no simulation is needed; the reference pictures live in
``tests/data/viz/`` (400 × 300 and smaller). Set ``TUMORPDE_UPDATE_VIZ_REFERENCES=1`` to
rewrite them after an intended change of the pictures (and look at them). Animations are
checked for their frame count and time stamps, and bad requests for their error messages. The
last test makes a real run and drives ``tumorpde plot`` / ``tumorpde animate`` on it.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import box_toml

pv = pytest.importorskip("pyvista")

from tumorpde.output import viz  # noqa: E402
from tumorpde.output.viz.figure import time_label  # noqa: E402

pytestmark = [pytest.mark.viz, pytest.mark.serial]

DATA = Path(__file__).resolve().parents[2] / "data" / "viz"
UPDATE = os.environ.get("TUMORPDE_UPDATE_VIZ_REFERENCES") == "1"
#: Largest mean absolute difference per channel (0-255) accepted against a reference.
TOLERANCE = 2.0
SIZE = (400, 300)


class FakeRun:
    """The parts of :class:`tumorpde.output.load.Run` the figures use, on a 12 x 8 x 6 mm box."""

    def __init__(self, therapy: bool = False) -> None:
        box = pv.ImageData(dimensions=(13, 9, 7), spacing=(1.0, 1.0, 1.0))
        self.grid = box.triangulate()
        centres = self.grid.cell_centers().points
        self.grid.cell_data["region"] = np.where(centres[:, 0] < 6.0, 1, 2).astype(np.int32)
        self.times = [0.0, 24.0, 48.0]
        self.regions = {"grey": 1, "white": 2}
        self.fields = ["tumor", "EGF", "EGFR_occupancy"]
        self.units = {"tumor": "1 (u = n / n_max)", "EGF": "nM", "EGFR_occupancy": "1"}
        drugs = []
        if therapy:
            self.fields += ["trastuzumab", "trastuzumab_occupancy", "kill_rate"]
            self.units.update({"trastuzumab": "nM", "trastuzumab_occupancy": "1"})
            self.units["kill_rate"] = "1/h"
            drugs = [SimpleNamespace(spec=SimpleNamespace(name="trastuzumab"))]
        pathways = {"EGFR": SimpleNamespace(ligand=SimpleNamespace(name="EGF"))}
        self.case = SimpleNamespace(
            name="box_lesion",
            organ=None,
            pathways=pathways,
            therapy=SimpleNamespace(treatments=drugs) if therapy else None,
        )

    def dataset(self, time: float | None = None, index: int | None = None) -> object:
        t = self.times[-1] if time is None else float(time)
        g = self.grid.copy()
        r2 = ((g.points - np.array([4.0, 5.0, 3.0])) ** 2).sum(1)
        u = 0.6 * np.exp(-r2 / (1.0 + t / 12.0))
        g.point_data["tumor"] = u
        g.point_data["EGF"] = 0.05 + 0.1 * u
        g.point_data["EGFR_occupancy"] = 0.4 * u
        g.point_data["trastuzumab"] = 50.0 * np.exp(-g.points[:, 0] / 6.0)
        g.point_data["trastuzumab_occupancy"] = 0.5 * u
        g.point_data["kill_rate"] = 0.01 * u
        return g


def _image(plotter) -> np.ndarray:
    try:
        return np.asarray(plotter.screenshot(return_img=True), dtype=float)
    finally:
        plotter.close()


def _check(img: np.ndarray, name: str) -> float:
    """Mean absolute difference to the reference (written instead when updating)."""
    ref_path = DATA / name
    if UPDATE:
        import imageio.v2 as imageio

        DATA.mkdir(parents=True, exist_ok=True)
        imageio.imwrite(ref_path, img.astype(np.uint8))
    import imageio.v2 as imageio

    ref = np.asarray(imageio.imread(ref_path), dtype=float)[..., :3]
    assert ref.shape == img[..., :3].shape, f"{name}: size {img.shape} != reference {ref.shape}"
    return float(np.abs(ref - img[..., :3]).mean())


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("box_slice.png", {}),
        ("box_iso.png", {"mode": "iso", "fields": ["tumor"]}),
        ("box_inset.png", {"fields": ["tumor"], "inset": True}),
    ],
)
def test_plot_matches_reference(name: str, kwargs: dict) -> None:
    pytest.importorskip("imageio")
    img = _image(viz.plot(FakeRun(), window_size=SIZE, **kwargs))
    assert _check(img, name) < TOLERANCE


def test_reference_comparison_detects_a_change() -> None:
    # the same figure at another time must not pass as the reference: the test can fail
    pytest.importorskip("imageio")
    img = _image(viz.plot(FakeRun(), window_size=SIZE, time=0.0))
    assert _check(img, "box_slice.png") > TOLERANCE


def test_render_fields_matches_reference() -> None:
    """The in-run summary picture (arrays in, PNG out) through the same scene."""
    pytest.importorskip("imageio")
    run = FakeRun()
    g = run.dataset()
    cells = g.cells_dict[pv.CellType.TETRA]
    path = DATA.parent / "_render_fields_tmp.png"
    try:
        out = viz.render_fields(
            g.points,
            cells,
            {"tumor": g.point_data["tumor"], "EGF": g.point_data["EGF"]},
            path,
            cell_regions=np.asarray(g.cell_data["region"]),
            title="box",
            time_h=48.0,
            labels={"tumor": "tumor density u", "EGF": "EGF [nM]"},
            window_size=SIZE,
        )
        import imageio.v2 as imageio

        img = np.asarray(imageio.imread(out), dtype=float)
    finally:
        path.unlink(missing_ok=True)
    assert _check(img, "box_render_fields.png") < TOLERANCE


def test_therapy_preset_and_fixed_limits() -> None:
    run = FakeRun(therapy=True)
    pl = viz.plot(run, window_size=(900, 300))
    try:
        # therapy runs show drug, occupancy and kill rate by default
        bars = set(pl.scalar_bars.keys())
        assert bars == {
            "tumor density u",
            "trastuzumab [nM]",
            "trastuzumab occupancy",
            "kill rate [1/h]",
        }
    finally:
        pl.close()
    # colour limits are fixed over every stored time: the same at t = 0 and at the end
    from tumorpde.output.viz.figure import figure_setup

    _, _, lim_all, organ = figure_setup([run], None, "auto", None)
    _, _, lim_first, _ = figure_setup([run], None, "auto", None, [0.0])
    assert organ == "brain"
    assert lim_all["tumor"] == pytest.approx((0.0, 0.6))
    assert lim_all["kill_rate"][1] == pytest.approx(0.006)
    assert lim_first["kill_rate"][1] == pytest.approx(0.006)  # max at t = 0 too
    assert lim_all["trastuzumab_occupancy"] == (0.0, 0.5)  # a fraction: rounded up


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_animation_frames_and_time_stamps(tmp_path: Path, suffix: str) -> None:
    imageio = pytest.importorskip("imageio.v2")
    if suffix == ".mp4":
        pytest.importorskip("imageio_ffmpeg")
    run = FakeRun()
    path = tmp_path / f"a{suffix}"
    times = viz.animate(run, path, fields=["tumor"], window_size=(320, 240), fps=4)
    assert times == run.times
    reader = imageio.get_reader(path)
    frames = [np.asarray(f, dtype=float)[..., :3] for f in reader]
    reader.close()
    assert len(frames) == 3
    # the time stamp (top right) differs between frames; the stamps are those of the times
    stamps = [f[: f.shape[0] // 10, f.shape[1] * 3 // 4 :] for f in frames]
    assert np.abs(stamps[0] - stamps[1]).mean() > 0.5
    assert [time_label(t) for t in times] == ["t = 0 h", "t = 24 h", "t = 2.0 d"]
    # chosen times only, in the given order
    assert viz.animate(run, tmp_path / "b.gif", times=["2 day", 0.0], window_size=(200, 160)) == [
        48.0,
        0.0,
    ]


def test_errors_name_the_bad_input(tmp_path: Path) -> None:
    run = FakeRun()
    with pytest.raises(ValueError, match=r"unknown field\(s\) 'oxygen'.*stored: tumor, EGF"):
        viz.plot(run, fields=["oxygen"])
    with pytest.raises(ValueError, match=r"time '3 day' \(72 h\) is not stored.*0, 24, 48"):
        viz.plot(run, time="3 day")
    with pytest.raises(ValueError, match="unknown preset 'pretty'"):
        viz.plot(run, preset="pretty")
    with pytest.raises(ValueError, match="preset 'therapy': the run stored none"):
        viz.plot(run, preset="therapy")
    with pytest.raises(ValueError, match="unknown mode 'volume'"):
        viz.plot(run, mode="volume")
    with pytest.raises(ValueError, match="unsupported animation format"):
        viz.animate(run, tmp_path / "a.avi")
    with pytest.raises(ValueError, match=r"time 5 \(5 h\) is not stored"):
        viz.animate(run, tmp_path / "a.gif", times=[5])
    assert not (tmp_path / "a.gif").exists()
    with pytest.raises(ValueError, match="unsupported picture format"):
        viz.save(viz.plot(run, fields=["tumor"], window_size=(200, 150)), tmp_path / "a.jpg")


def test_qoi_plot(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    run = FakeRun()
    t = np.array([0.0, 24.0, 48.0])
    run.qoi = pd.DataFrame({"step": [0, 1, 2], "t_h": t, "tumor_burden_mm3": [1.0, 2.0, 4.0]})
    run.qoi.attrs["units"] = {"tumor_burden_mm3": "mm^3"}
    out = viz.plot_qoi(run, tmp_path / "q.png")
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="unknown QoI column"):
        viz.plot_qoi(run, tmp_path / "q.png", columns=["nope"])


def test_cli_plot_and_animate_a_run(tmp_path: Path, capsys) -> None:
    pytest.importorskip("imageio")
    pytest.importorskip("h5py")
    pytest.importorskip("dolfinx_solver")
    from tumorpde.cli import main

    case = tmp_path / "case.toml"
    case.write_text(box_toml("viz_box", t_end="1 day"))
    out = tmp_path / "run"
    assert main(["run", str(case), "-o", str(out), "--quiet"]) == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "p.png"), "--inset"]) == 0
    assert main(["plot", str(out), "-o", str(tmp_path / "q.svg"), "--qoi"]) == 0
    assert main(["animate", str(out), "-o", str(tmp_path / "a.gif")]) == 0
    assert "(3 frames)" in capsys.readouterr().out
    assert (tmp_path / "p.png").stat().st_size > 5000
    assert main(["plot", str(out), "-o", str(tmp_path / "x.png"), "--field", "oxygen"]) == 2
    assert "unknown field(s) 'oxygen'" in capsys.readouterr().err
    assert main(["plot", str(out), "-o", str(tmp_path / "x.jpg")]) == 2
    assert main(["plot", str(out), "-o", str(tmp_path / "x.png"), "--clim", "tumor=1:0"]) == 2
