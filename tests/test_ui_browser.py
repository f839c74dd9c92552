"""The web UI in a real browser: headless Chromium (Debian's package) driven by Playwright.

One walk through the app as a person would use it: submit a job and watch it advance, see the 3D
viewer and the turntable when it finishes; submit a second job, close the tab, find the job still
running in a new tab, cancel it and resume it; then restart the app, on a runs folder that a 4D run has
joined meanwhile, and see its animated model play (the newest run opens by itself) and find every run in the
history. Screenshots of those states go to docs/screenshots/ when
SCREENSHOTS=1 (`make screenshots`), else to the test's temp folder.

Chromium comes from Debian (`apt-get install chromium`; `.ci/run` installs it): without it the
test skips here and fails in CI (CI=true), where a skip would hide a broken set-up.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from ui_support import UI_TINY, App, chromium_path, http_status, playwright_sync

pytestmark = pytest.mark.slow(seconds=65)

REPO = Path(__file__).resolve().parent.parent
# The suite's tiny settings, with previews and a turntable large enough to see in the screenshots.
# checkpoints every 50 steps, not UI_TINY's 2: the jobs run 350 steps, and a cancel writes its own checkpoint
APP_SETTINGS = [*UI_TINY, "trainer.preview_every=10", "trainer.preview_resolution=64", "export.mesh_resolution=48",
                "export.video_frames=16", "export.video_resolution=96", "trainer.checkpoint_every=50"]
STEP = re.compile(r"step (\d+) / (\d+)")


@pytest.fixture
def shots(tmp_path):
    folder = REPO / "docs" / "screenshots" if os.environ.get("SCREENSHOTS") == "1" else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _status(page) -> str:
    return page.locator("#job-status").inner_text()


def _wait_status(page, pattern: str, timeout_s: float = 90.0) -> str:
    """Wait until the job status line matches `pattern` (a regex); returns the line."""
    page.wait_for_function(
        "([re]) => new RegExp(re).test(document.querySelector('#job-status')?.innerText || '')",
        arg=[pattern], timeout=timeout_s * 1000, polling=100)
    return _status(page)


def _step(page) -> int:
    match = STEP.search(_status(page))
    return int(match.group(1)) if match else -1


def _wait_drawn(canvas, timeout_s: float = 30.0) -> None:
    """Wait until the 3D viewer's canvas shows the (red) model, not just its white background."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pixels = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
        red = (pixels[..., 0] > 150) & (pixels[..., 1] < 100) & (pixels[..., 2] < 100)
        if red.mean() > 0.02:
            return
        time.sleep(0.5)
    raise AssertionError("the 3D viewer did not draw the model")


def _viewer_canvas(page, errors: list):
    """The model viewer's canvas. The viewer loads about ninety script chunks when it first gets a model; on a
    CI machine busy with the other test worker that once took over 60 s or failed, with no sign on the page. So
    it waits 45 s, prints what the page shows and logged, reloads once as a person would, and waits 60 s more:
    a viewer that never appears still fails, after a reload too."""
    canvas = page.locator("#result-model canvas")
    try:
        canvas.wait_for(timeout=45_000)
        return canvas
    except Exception:
        print("no viewer canvas after 45 s; logged:", errors)
        print(page.locator("#result-model").evaluate("e => e.outerHTML")[:2000])
    errors.clear()
    page.reload()
    canvas.wait_for(timeout=60_000)
    return canvas


def _add_animated_run(runs: Path) -> None:
    """A finished 4D run made by hand in `runs`: a red box sliding ±0.8 sideways, 16 frames at 8 fps (morph
    targets + a looping weights track, as a 4D run's model.glb), so the motion is plain in the canvas."""
    import json

    import trimesh

    from dreamer.export.animated_gltf import write_animated_glb
    from dreamer.export.video import write_video
    from dreamer.run_config import load_run_config, save_run_config

    run = runs / "20260101-000000-a-red-cube-sliding"
    run.mkdir(parents=True)
    save_run_config(load_run_config("4d", {"prompt": "a red cube sliding", "steps": 4}), run / "config.yaml")
    box = trimesh.creation.box(extents=(0.5, 0.5, 0.5))
    box.visual.vertex_colors = np.tile([220, 20, 20, 255], (len(box.vertices), 1))
    shift = 0.8 * np.sin(2 * np.pi * np.arange(16) / 16)
    write_animated_glb(box, np.stack([box.vertices + [s, 0.0, 0.0] for s in shift]), run / "model.glb", fps=8)
    for stem in ("turntable", "motion"):
        write_video(np.full((4, 32, 32, 3), 200, np.uint8), run, stem, fps=4)
    (run / "ui-job.json").write_text(json.dumps({"status": "finished", "error": None}))


def _assert_animation_plays(page, errors: list) -> None:
    """The shown run is the animated one: its motion video is beside the viewer, and the viewer plays the
    model's loop on load (the red box's centre moves across the canvas)."""
    assert page.locator("#result-motion video").get_attribute("src", timeout=60_000).endswith("motion.mp4")
    canvas = _viewer_canvas(page, errors)
    _wait_drawn(canvas, timeout_s=60)
    centres = []
    for _ in range(12):  # 1.8 s: about one loop (2 s)
        pixels = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
        red = (pixels[..., 0] > 150) & (pixels[..., 1] < 100) & (pixels[..., 2] < 100)
        if red.mean() > 0.005:
            centres.append(np.nonzero(red)[1].mean() / pixels.shape[1])  # the box's x, in canvas widths
        time.sleep(0.15)
    assert len(centres) >= 6 and max(centres) - min(centres) > 0.2, centres  # it moves: the animation plays


def _listen_for_errors(page, errors: list) -> None:
    """Script errors and console errors of `page` go to `errors` (Babylon.js tries WebGPU first and logs its
    failure in a headless browser, then uses WebGL: that one is not an error of ours)."""
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "WebGPU" not in m.text else None)


def _submit(page, prompt: str, steps: int) -> None:
    page.locator("#prompt textarea").fill(prompt)
    page.locator("#steps input").fill(str(steps))
    page.locator("#steps input").press("Tab")
    page.locator("#generate").click()
    page.wait_for_function("(p) => (document.querySelector('#submit-message')?.innerText || '').includes(p)",
                           arg=prompt, timeout=30_000)


def test_generate_watch_cancel_resume_and_history_after_restart(tmp_path, shots):
    chromium = chromium_path()
    sync_playwright = playwright_sync()
    runs = (tmp_path / "runs").resolve()
    served = []  # every file URL the browser fetched
    started = time.monotonic()
    app = App(runs, tmp_path / "app.log", APP_SETTINGS)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--use-gl=swiftshader",
                                                                         "--enable-unsafe-swiftshader"])
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.on("request", lambda request: served.append(request.url))
            page = context.new_page()
            page.goto(app.url)
            _wait_status(page, "No job selected")  # the page has loaded and polled once

            # 0. the form; the advanced panel shows the resolved config, and a bad key in it is an inline error
            page.locator("#prompt textarea").fill("a red cube")
            page.get_by_text("Advanced: the resolved config (YAML)").click()
            page.wait_for_function("() => (document.querySelector('#config-yaml')?.innerText || '')"
                                   ".includes('prompt: a red cube')", timeout=30_000)
            page.locator("#config-yaml .cm-content").click()
            page.keyboard.press("Control+Home")
            page.keyboard.type("sed: 1\n")
            page.wait_for_function("() => (document.querySelector('#config-check')?.innerText || '')"
                                   ".includes(\"unknown config key 'sed' (did you mean 'seed'?)\")", timeout=30_000)
            assert "Traceback" not in page.locator("#config-check").inner_text()
            page.screenshot(path=str(shots / "ui-form.png"), full_page=True)
            page.get_by_text("Advanced: the resolved config (YAML)").click()  # fold it away again

            # 1. a tiny job: progress advances, then the viewer and the turntable appear
            _submit(page, "a red cube", 150)
            _wait_status(page, r"running — step [1-9]\d* / 150")
            first = _step(page)
            page.wait_for_function(
                "([n]) => { const m = /step (\\d+) \\//.exec(document.querySelector('#job-status').innerText);"
                " return m && Number(m[1]) > n; }", arg=[first], timeout=60_000, polling=100)
            assert _step(page) > first
            assert "loss" in _status(page) and "ETA" in _status(page)
            page.locator("#job-preview img").wait_for(timeout=30_000)
            page.screenshot(path=str(shots / "ui-progress.png"), full_page=True)
            _wait_status(page, r"finished — step 150 / 150")
            video = page.locator("#result-video video")
            video.wait_for(timeout=30_000)
            video_src = video.get_attribute("src")
            assert video_src and str(runs) in video_src and video_src.endswith("turntable.mp4"), video_src
            _viewer_canvas(page, [])  # the WebGL viewer
            model_src = page.locator("#result-model [data-testid=model3d-download-link]").get_attribute("href")
            assert model_src and str(runs) in model_src and model_src.endswith("model.glb"), model_src
            assert "IoU" in page.locator("#result-eval").inner_text()
            _wait_drawn(page.locator("#result-model canvas"))
            page.screenshot(path=str(shots / "ui-result.png"), full_page=True)

            # 2. a second job outlives its tab; cancel it while it runs (checkpoint kept), then resume it to the end
            _submit(page, "a blue sphere", 200)
            page.close()
            page = context.new_page()
            page.goto(app.url)  # a new tab shows the running job
            _wait_status(page, r"running — step ([3-9]|\d{2,}) / 200")
            assert "a blue sphere" in page.locator("#job-title").inner_text()
            page.locator("#cancel").click()
            line = _wait_status(page, r"cancelled — step \d+ / 200", timeout_s=30)
            assert "checkpoint kept" in line and 3 <= _step(page) < 200
            second = page.locator("#job-title").inner_text().split()[-1]
            assert (runs / second / "checkpoints" / "last.pt").is_file()
            page.locator("#resume").click()
            _wait_status(page, r"finished — step 200 / 200", timeout_s=120)
            browser.close()
        app.stop()
        assert app.proc.returncode == 0, app.tail()

        # 3. a 4D run joins the runs folder while the app is down (made by hand: a box sliding); the restarted
        # app opens it by itself, as the newest run, and plays its animated model; the history lists all three
        # runs, the two with previews as thumbnails, and reopens them
        _add_animated_run(runs)
        app = App(runs, tmp_path / "app2.log", APP_SETTINGS)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--use-gl=swiftshader",
                                                                         "--enable-unsafe-swiftshader"])
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            context.on("request", lambda request: served.append(request.url))
            page = context.new_page()
            errors = []
            _listen_for_errors(page, errors)
            page.goto(app.url)
            _assert_animation_plays(page, errors)
            page.get_by_role("tab", name="History").click()
            table = page.locator("#history-table")
            page.wait_for_function("() => ['a red cube', 'a blue sphere', 'a red cube sliding'].every("
                                   "p => (document.querySelector('#history-table')?.innerText || '').includes(p))",
                                   timeout=30_000)
            assert table.inner_text().count("finished") == 3
            thumbnails = page.locator("#history-gallery img")
            thumbnails.first.wait_for(timeout=30_000)
            assert thumbnails.count() == 2
            page.wait_for_function(  # the thumbnails are served (from the runs folder) and decoded, not just listed
                "() => [...document.querySelectorAll('#history-gallery img')]"
                ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
            page.screenshot(path=str(shots / "ui-history.png"), full_page=True)
            thumbnails.nth(1).click()  # the older run: "a red cube"
            _wait_status(page, r"finished — step 150 / 150", timeout_s=30)
            assert "a red cube" in page.locator("#job-title").inner_text()
            page.locator("#result-video video").wait_for(timeout=30_000)
            browser.close()
        assert errors == []
        # the server itself hands out files of the runs folder only
        assert http_status(f"{app.url}gradio_api/file={runs}/{second}/config.yaml") == 200
        for outside in (REPO / "README.md", Path("/etc/passwd"), runs / ".." / "app.log"):
            assert http_status(f"{app.url}gradio_api/file={outside}") == 403, outside
    except Exception:
        print(app.tail())
        raise
    finally:
        app.stop()
    assert all(str(runs) in url for url in served if "/file=" in url), [u for u in served if "/file=" in u]
    for name in ("ui-form.png", "ui-progress.png", "ui-result.png", "ui-history.png"):
        assert (shots / name).stat().st_size > 10_000, name
    print(f"browser test: {time.monotonic() - started:.0f} s")
