"""Interactive view sessions (tumorpde.output.viz.session) and ``tumorpde view`` input errors.

One small two-region box run is made per module; the session draws off-screen, so every state
change is checked on the picture it produces (and on the data it shows).
"""

import socket

import numpy as np
import pytest

pytest.importorskip("pyvista")

from tumorpde.cli import main

pytestmark = [pytest.mark.serial, pytest.mark.viz]

CASE = """
name = "view_box"
[mesh]
kind = "box"
size = ["8 mm", "6 mm", "6 mm"]
cells = [12, 9, 9]
default_region = "grey"
regions = [{ name = "white", min = [4, 0, 0], max = [8, 6, 6] }]
[time]
t_end = "2 day"
dt = "12 h"
output_every = "12 h"
[tumor]
proliferation_rate = "0.6 1/day"
motility = "0.5 mm^2/day"
initial = { kind = "gaussian", center = ["4 mm", "3 mm", "3 mm"], radius = "2 mm" }
[ligand]
diffusivity = "6e-7 cm^2/s"
decay_rate = "1e-4 1/s"
tumor_secretion = "1 nM/h"
stromal_secretion = "0.02 nM/h"
[receptor]
receptors_per_cell = 5e4
k_on = "1e6 1/M/s"
k_off = "2e-3 1/s"
k_t = "0.03 1/min"
k_e = "0.15 1/min"
[regions.white]
tumor_motility = "1 mm^2/day"
[output]
picture = false
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("view")
    (d / "case.toml").write_text(CASE)
    assert main(["run", str(d / "case.toml"), "-o", str(d / "run")]) == 0
    return d / "run"


@pytest.fixture
def session(run_dir):
    from tumorpde.output.viz.session import make_session

    s = make_session(run_dir, window_size=(400, 300))
    yield s
    s.plotter.close()


def _differs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


def test_session_starts_at_the_last_output_with_the_preset_field(session):
    s = session
    assert len(s.times) == 5
    assert s.state.index == 4
    assert s.state.preset == "auto"
    assert s.state.field == "tumor"  # the growth preset's first field
    assert set(s.region_tags) == {"grey", "white"}
    assert s.state.regions == ["grey", "white"]
    img = s.screenshot()
    assert img.shape == (300, 400, 3)
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 50  # a coloured cut, not a blank


def test_time_field_cut_and_regions_change_the_picture(session):
    s = session
    last = s.screenshot()
    s.set_index(0)
    first = s.screenshot()
    assert _differs(first, last) > 1.0
    assert "t = 0 h" in s.time_label()
    # colour limits are the same at every output (the range over all stored times)
    lo, hi = s.clim("tumor")
    u = [np.asarray(s.dataset(i).point_data["tumor"]) for i in range(len(s.times))]
    assert lo == 0.0 and hi == pytest.approx(max(float(x.max()) for x in u))
    s.set_field("EGF")
    assert _differs(s.screenshot(), first) > 1.0
    before = s.screenshot()
    s.set_cut(axis="x", position=0.25)
    assert s.state.normal == (1.0, 0.0, 0.0)
    assert s.state.origin[0] == pytest.approx(2.0)  # a quarter of the 8 mm box
    shown = s._shown()
    assert float(shown.bounds[1]) == pytest.approx(2.0, abs=1e-9)  # clipped at x = 2 mm
    assert _differs(s.screenshot(), before) > 1.0
    before = s.screenshot()
    s.set_regions(["white"])
    s.set_cut(False)
    shown = s._shown()
    assert set(np.unique(shown.cell_data["region"]).tolist()) == {s.region_tags["white"]}
    assert float(shown.bounds[0]) == pytest.approx(4.0)  # white is x >= 4 mm
    assert _differs(s.screenshot(), before) > 1.0


def test_preset_switch_picks_the_preset_field(session):
    s = session
    s.set_field("EGFR")
    s.set_preset("all")
    assert s.state.field == s.field_names()[0]
    s.set_preset("growth")
    assert s.state.field == "tumor"
    assert "EGF" in s.field_names()[:3]


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda s: s.set_field("oxygen"), "field 'oxygen' not stored"),
        (lambda s: s.set_preset("pretty"), "unknown preset 'pretty'"),
        (lambda s: s.set_regions(["bone"]), "unknown region(s) bone"),
        (lambda s: s.set_cut(axis="w"), "cut axis must be x, y or z"),
    ],
)
def test_bad_choices_are_named(session, call, needle):
    with pytest.raises(ValueError) as err:
        call(session)
    assert needle in str(err.value)


def test_time_must_be_stored(run_dir):
    from tumorpde.output.viz.session import make_session

    s = make_session(run_dir, window_size=(200, 150), time="1 day")
    assert s.state.index == 2
    s.plotter.close()
    with pytest.raises(ValueError, match="not stored"):
        make_session(run_dir, window_size=(200, 150), time=30.0)


def test_window_widgets_drive_the_session(run_dir):
    """The window's VTK widgets, fired as a user would, change the session and its picture."""
    from tumorpde.output.viz.presets import PRESETS
    from tumorpde.output.viz.session import open_window

    s = open_window(run_dir, show=False, window_size=(900, 700))
    pl = s.plotter
    try:
        assert len(pl.widgets.slider_widgets) == 1
        assert len(pl.widgets.plane_widgets) == 1
        n_fields, n_regions = len(s.all_fields), len(s.region_tags)
        assert len(pl.widgets.button_widgets) == len(PRESETS) + n_fields + n_regions + 1
        before = s.screenshot()
        slider = pl.widgets.slider_widgets[0]
        slider.GetRepresentation().SetValue(1.0)
        slider.InvokeEvent("InteractionEvent")
        assert s.state.index == 1
        assert _differs(s.screenshot(), before) > 1.0
        # field radio buttons follow the preset buttons; press the one of EGF
        egf = pl.widgets.button_widgets[len(PRESETS) + s.all_fields.index("EGF")]
        egf.GetRepresentation().SetState(1)
        egf.InvokeEvent("StateChangedEvent")
        assert s.state.field == "EGF"
        tumor = pl.widgets.button_widgets[len(PRESETS) + s.all_fields.index("tumor")]
        assert tumor.GetRepresentation().GetState() == 0  # radio: the others switch off
        # region toggles: hide grey
        grey = pl.widgets.button_widgets[
            len(PRESETS) + n_fields + list(s.region_tags).index("grey")
        ]
        grey.GetRepresentation().SetState(0)
        grey.InvokeEvent("StateChangedEvent")
        assert s.state.regions == ["white"]
        # the plane widget moves the cut
        plane = pl.widgets.plane_widgets[0]
        plane.SetNormal(0.0, 1.0, 0.0)
        plane.SetOrigin(6.0, 2.0, 3.0)
        plane.InvokeEvent("EndInteractionEvent")
        assert s.state.normal == pytest.approx((0.0, 1.0, 0.0))
        assert s.state.origin == pytest.approx((6.0, 2.0, 3.0))
    finally:
        pl.close()


def test_view_cli_reports_bad_input_before_opening(run_dir, tmp_path, monkeypatch, capsys):
    assert main(["view", str(tmp_path / "missing"), "--server"]) == 2
    assert "no such run directory" in capsys.readouterr().err
    assert main(["view", str(run_dir), "--server", "--port", "0", "--field", "nope"]) == 2
    assert "field 'nope' not stored" in capsys.readouterr().err
    assert main(["view", str(run_dir), "--server", "--port", "0", "--time", "7 day"]) == 2
    assert "not stored" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["view", str(run_dir), "--server", "--port", str(port)]) == 2
        assert f"--port {port}: already in use" in capsys.readouterr().err
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["view", str(run_dir)]) == 2
    assert "--server" in capsys.readouterr().err


# -- the browser session: `tumorpde view RUN --server` driven by a real headless Chromium ----------


def _browser() -> tuple[str, str] | None:
    """(chromium, chromedriver): TUMORPDE_CHROMIUM(DRIVER), get-chromium.sh's cache, or PATH."""
    import os
    import shutil
    from pathlib import Path

    env = os.environ.get("TUMORPDE_CHROMIUM"), os.environ.get("TUMORPDE_CHROMEDRIVER")
    if all(env):
        return env[0], env[1]  # type: ignore[return-value]
    cache = os.environ.get("TUMORPDE_CHROMIUM_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tumorpde-chromium"
    )
    binary, driver = Path(cache) / "bin" / "chromium", Path(cache) / "bin" / "chromedriver"
    if binary.exists() and driver.exists():
        return str(binary), str(driver)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found, drv = shutil.which(name), shutil.which("chromedriver")
        if found and drv:
            return found, drv
    return None


def _serve(run_dir):
    """Start `tumorpde view RUN --server --port 0`; return (process, url, seconds to ready)."""
    import queue
    import re
    import subprocess
    import sys
    import threading
    import time

    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tumorpde", "view", str(run_dir), "--server", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    seen = []
    while time.perf_counter() - start < 120:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        m = re.search(r"serving .* at (http://\S+/)", line)
        if m:
            return proc, m.group(1), time.perf_counter() - start
    proc.kill()
    raise AssertionError("tumorpde view --server did not start:\n" + "".join(seen))


@pytest.fixture(scope="module")
def browser():
    """(chromium, chromedriver), or a skip naming what is missing (before the run is made)."""
    pytest.importorskip("trame_pyvista", reason="the browser session needs tumorpde[viz] (trame)")
    pytest.importorskip("selenium", reason="needs selenium (dev extra)")
    found = _browser()
    if found is None:
        pytest.skip(
            "no Chromium + chromedriver: run scripts/get-chromium.sh (or set TUMORPDE_CHROMIUM "
            "and TUMORPDE_CHROMEDRIVER)"
        )
    return found


def test_browser_session_shows_the_mesh_and_follows_time_and_field(browser, run_dir):
    import io
    import time

    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    found = browser
    proc, url, t_server = _serve(run_dir)
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800"):
        opts.add_argument(arg)
    opts.add_argument("--disable-dev-shm-usage")
    driver = webdriver.Chrome(options=opts, service=Service(found[1]))
    timings = {"server_ready_s": t_server}

    def view() -> np.ndarray:
        png = driver.find_element(By.ID, "view").screenshot_as_png
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float)

    def settled_change(ref: np.ndarray, what: str) -> np.ndarray:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 30:
            img = view()
            if img.shape == ref.shape and _differs(img, ref) > 2.0:
                time.sleep(0.3)
                again = view()
                if _differs(again, img) < 0.05:  # the new picture, not one in transit
                    timings[what] = time.perf_counter() - t0
                    return again
            time.sleep(0.1)
        raise AssertionError(f"the view did not change after {what}")

    try:
        t0 = time.perf_counter()
        driver.get(url)
        while time.perf_counter() - t0 < 60:
            imgs = driver.find_elements(By.CSS_SELECTOR, "#view img")
            if imgs and driver.execute_script("return arguments[0].naturalWidth", imgs[0]) > 0:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("no rendered image in the page")
        timings["page_load_s"] = time.perf_counter() - t0
        first = view()
        label = driver.find_element(By.ID, "time-label")
        assert "t = 48 h" in label.text
        # the mesh is there: a coloured cut (many colours), not a blank or uniform view
        assert len(np.unique(first.reshape(-1, 3), axis=0)) > 200

        slider = "//input[@id='time-slider']/ancestor::div[contains(@class,'v-slider')][1]"
        thumb = driver.find_element(By.XPATH, slider + "//div[contains(@class,'v-slider-thumb')]")
        thumb.click()
        thumb.send_keys(Keys.HOME)  # the first output time
        at_zero = settled_change(first, "time_update_s")
        assert "t = 0 h" in label.text

        field = "//input[@id='field-select']/ancestor::div[contains(@class,'v-field')][1]"
        driver.find_element(By.XPATH, field).click()
        time.sleep(0.5)
        items = driver.find_elements(By.CSS_SELECTOR, ".v-overlay .v-list-item")
        next(i for i in items if i.text == "EGF").click()
        settled_change(at_zero, "field_update_s")
        print("browser session timings:", {k: round(v, 2) for k, v in timings.items()})
    finally:
        driver.quit()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
