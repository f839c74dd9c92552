"""The web UI for 4D runs: the 4D presets in the form, one real tiny 4D job polled to its results
(animated model.glb, turntable and motion videos, 4D eval table, downloads with the deformation
field and the zipped frames), the history, and a bad motion prompt as a one-line error."""

import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from dreamer.api import MOTION_SUMMARY_KEYS, UserError, check_prompt
from dreamer.ui import form, views
from dreamer.ui.app import Page, Shown
from dreamer.ui.frames import frames_zip
from dreamer.ui.history import list_runs, run_outputs
from dreamer.ui.jobs import JobManager, JobState

pytestmark = pytest.mark.slow(seconds=12)  # a mid-sized file: scheduled early (tests/conftest.py)

FIELDS = ("prompt", "negative_prompt", "preset", "guidance", "representation", "prior", "steps", "seed",
          "resolution", "formats")
# The server's overrides for these tests: the 4d preset, tiny (two static steps, then four motion steps).
TINY_4D = ["resolution=16", "motion.static_steps=2", "motion.export_frames=4", "representation.num_gaussians=200",
           "trainer.preview_every=2", "trainer.preview_resolution=16", "trainer.checkpoint_every=2",
           "trainer.log_every=1", "export.mesh_resolution=32", "export.video_frames=4", "export.video_resolution=32"]
STEPS = 6


def _fields(page, prompt, preset="4d-oracle"):
    values = form.defaults_for(preset, page.overrides)
    values.prompt, values.steps = prompt, STEPS
    return [getattr(values, name) for name in FIELDS]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    manager = JobManager(tmp_path_factory.mktemp("ui4d") / "runs", max_concurrent=1)
    yield Page(manager, list(TINY_4D))
    manager.shutdown()


@pytest.fixture(scope="module")
def finished(page):
    """One real 4D job, submitted through the form and run to its end: (job id, first poll)."""
    message, job_id = page.on_generate(*_fields(page, "a red cube bouncing"), False, "")
    assert message.startswith("queued **a red cube bouncing**"), message
    assert page.manager.get(job_id).is_4d
    state = page.manager.wait(job_id, timeout=120)
    assert state.status == "finished", state.error
    return job_id, page.on_poll(job_id, Shown())


def _glb_json(path: Path) -> dict:
    data = path.read_bytes()
    length, kind = struct.unpack_from("<II", data, 12)
    assert data[:4] == b"glTF" and kind == 0x4E4F534A
    return json.loads(data[20:20 + length])


def test_the_4d_presets_fill_the_form_with_choices_it_offers(page):
    presets = [p for p in form.preset_choices() if p.startswith("4d")]
    assert "4d" in presets
    for preset in presets:
        fields = page.on_preset(preset)
        for kind in ("guidance", "representation", "prior"):
            assert getattr(fields, kind) in [name for _, name in form.component_choices(kind)], (preset, kind)
    fields = page.on_preset("4d")  # the embedded, learnt priors; 4d-oracle is the oracle twin
    assert (fields.guidance, fields.representation, fields.prior) == ("video-sds", "gaussians4d", "tiny-motion")
    fields = page.on_preset("4d-oracle")
    assert (fields.guidance, fields.representation, fields.prior) == ("video-sds", "gaussians4d", "reference-video")
    assert fields.resolution == 16 and fields.negative.startswith("static")
    text, check = page.on_form(*_fields(page, "a red cube bouncing"), False)
    config = form.config_from_yaml(text)
    assert check == "✓ valid config" and config.is_4d and config.steps == STEPS
    assert (config.motion.static_steps, config.motion.export_frames) == (2, 4)
    # a 3D representation under the video prior: an inline one-line error, not a job
    values = _fields(page, "a red cube bouncing")
    values[FIELDS.index("representation")] = "gaussians"
    assert page.on_form(*values, False)[1] == (
        "error: prior 'reference-video' is a video prior: it needs a 4D representation "
        "(representation=gaussians4d, or --config 4d)")


def test_a_prompt_outside_the_motion_library_is_the_apis_one_line_error(page):
    jobs = len(page.manager.jobs())
    message, selected = page.on_generate(*_fields(page, "a red cube dancing"), False, "")
    config = form.resolve_form(form.FormValues(prompt="a red cube dancing", preset="4d-oracle"), page.overrides)
    with pytest.raises(UserError) as raised:
        check_prompt(config)
    assert message == f"error: {raised.value}" and "\n" not in message and "dancing" in message
    assert isinstance(selected, dict) and selected.get("__type__") == "update"  # nothing selected
    assert len(page.manager.jobs()) == jobs
    notice = page.on_notice("a red cube dancing", "reference-video")
    assert notice.startswith("**⚠ Out of vocabulary — cannot be generated.**") and "dancing" in notice
    assert page.on_notice("a red cube bouncing", "reference-video") == ""


def test_a_4d_job_shows_the_animation_both_videos_and_its_4d_eval(page, finished):
    job_id, out = finished
    run = page.runs_dir / job_id
    assert out.status.startswith(f"**finished** — step {STEPS} / {STEPS}")
    assert out.model == f"{run}/model.glb"
    gltf = _glb_json(run / "model.glb")  # the viewer gets the animated file: morph targets and a weights track
    assert len(gltf["meshes"][0]["primitives"][0]["targets"]) == 4
    assert [c["target"]["path"] for c in gltf["animations"][0]["channels"]] == ["weights"]
    assert out.video == f"{run}/turntable.mp4"
    assert out.motion == {"__type__": "update", "value": f"{run}/motion.mp4", "visible": True}
    assert out.splats["visible"] is True and out.splats["value"] == f"{run}/splats.ply"  # the canonical splats
    names = [Path(f).name for f in out.files]
    assert all(f.startswith(f"{run}/") for f in out.files)
    assert names[:3] == ["model.glb", "splats.ply", "deformation.safetensors"]
    assert {"frames.zip", "turntable.mp4", "motion.mp4", "eval.json", "config.yaml"} <= set(names)

    ev = json.loads((run / "eval.json").read_text())
    assert out.evaluation.startswith("**Evaluation** (against the animated shape library)")
    assert "*exported mesh, in 3D*" not in out.evaluation and "chamfer" not in out.evaluation
    frames_row = f"| {ev['mean_frame_iou']:.3f} | {min(ev['per_frame_iou']):.3f} | {ev['mean_frame_iou_phase']:.3f} | " \
                 f"{ev['mean_frame_volume_iou']:.3f} | {min(ev['per_frame_volume_iou']):.3f} |"
    assert ("| IoU, mean | IoU, worst frame | IoU, mean at the best phase | volume IoU, mean | volume IoU, worst frame |"
            in out.evaluation)
    assert "| trajectory error | trajectory error at the best phase |" in out.evaluation
    assert frames_row in out.evaluation and "*motion (bouncing)*" in out.evaluation
    assert f"| {ev['trajectory_error']:.3f} | {ev['trajectory_error_phase']:.3f} |" in out.evaluation


def test_the_frames_download_is_a_zip_of_the_frame_plys(page, finished):
    job_id, _ = finished
    run = page.runs_dir / job_id
    frames = sorted((run / "frames").glob("frame_*.ply"))
    assert [p.name for p in frames] == [f"frame_{k:03d}.ply" for k in range(4)]
    with zipfile.ZipFile(run / "frames.zip") as archive:
        assert archive.namelist() == [f"frames/{p.name}" for p in frames]
        assert all(archive.read(f"frames/{p.name}") == p.read_bytes() for p in frames)
    written = (run / "frames.zip").stat().st_mtime_ns
    assert frames_zip(run) == run / "frames.zip" and (run / "frames.zip").stat().st_mtime_ns == written  # kept
    later = written / 1e9 + 5
    os.utime(frames[0], (later, later))  # newer frames: written again, without leftovers
    assert run_outputs(run).downloads.count(run / "frames.zip") == 1
    assert (run / "frames.zip").stat().st_mtime_ns > written
    assert not list(run.glob(".frames-*"))


def test_a_linked_frame_is_left_out_of_the_zip(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    run = tmp_path / "runs" / "linked"
    (run / "frames").mkdir(parents=True)
    (run / "frames" / "frame_000.ply").write_bytes(b"ply\n")
    (run / "frames" / "frame_001.ply").symlink_to(secret)
    with zipfile.ZipFile(frames_zip(run)) as archive:
        assert archive.namelist() == ["frames/frame_000.ply"]
    assert frames_zip(tmp_path / "runs" / "none") is None  # a 3D run: no frames, no zip


def test_the_history_knows_4d_runs_and_a_3d_run_shows_no_motion_video(page, finished):
    job_id, _ = finished
    still = page.runs_dir / "still-run"  # a stopped 3D run
    still.mkdir()
    (still / "config.yaml").write_text("prompt: a red cube\nsteps: 4\n")
    records = {r.id: r for r in list_runs(page.runs_dir)}
    assert records[job_id].is_4d and not records["still-run"].is_4d
    gallery, rows, ids = page.on_history()
    row = next(r for r in rows if r[0] == job_id)
    assert row[2:6] == ["4D", "finished", f"{STEPS} / {STEPS}", "gaussians4d"]
    assert next(r for r in rows if r[0] == "still-run")[2] == "3D"
    assert gallery[ids.index(job_id)][1] == "a red cube bouncing — 4D, finished"
    assert page.manager.state(job_id).is_4d  # also as read back from the folder after a restart
    poll = page.on_poll("still-run", Shown())
    assert poll.motion == {"__type__": "update", "value": None, "visible": False}


def test_a_4d_job_says_it_exports_the_animation():
    job = JobState(id="x", run_dir=Path("/runs/x"), prompt="a red cube bouncing", status="running", step=6, total=6,
                   is_4d=True)
    assert views.status_line(job) == "**running** — step 6 / 6 · exporting the animation and the videos"
    job.is_4d = False
    assert views.status_line(job) == "**running** — step 6 / 6 · exporting the mesh and the turntable"


def test_the_4d_eval_table_covers_the_api_summary_and_leaves_out_missing_figures():
    shown = {key for key, _ in views.EVAL_FRAME_FIELDS + views.EVAL_MOTION_FIELDS}
    assert set(MOTION_SUMMARY_KEYS) <= shown
    table = views.eval_markdown({"per_frame_iou": [0.5, 0.25], "mean_frame_iou": 0.375, "frames": 2,
                                 "trajectory_error": 0.1, "amplitude_ratio": None, "flicker": 0.02,
                                 "motion": "spinning"})
    assert "| IoU, mean | IoU, worst frame |\n|---|---|\n| 0.375 | 0.250 |" in table
    assert "| trajectory error | flicker |\n|---|---|\n| 0.100 | 0.020 |" in table
    assert "*2 frames against the library at their times: renders, volume*" in table
