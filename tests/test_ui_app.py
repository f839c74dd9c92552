"""The page's callbacks without a browser: inline errors, served paths, polling, the `dreamer ui` command."""

import subprocess
import sys
import urllib.request

import gradio as gr
import pytest
from ui_support import UI_TINY, App, http_status

from dreamer import cli
from dreamer.errors import UserError
from dreamer.run_config import load_run_config
from dreamer.ui import form
from dreamer.ui.app import Page, Shown, build_app, parse_auth
from dreamer.ui.jobs import JobManager

FIELDS = ("prompt", "negative_prompt", "preset", "guidance", "representation", "prior", "steps", "seed",
          "resolution", "formats")


@pytest.fixture
def page(tmp_path):
    manager = JobManager(tmp_path / "runs", max_concurrent=1)
    yield Page(manager, list(UI_TINY))
    manager.shutdown()


def _fields(page, prompt, steps=4):
    values = form.defaults_for("default", page.overrides)
    values.prompt, values.steps = prompt, steps
    return [getattr(values, name) for name in FIELDS]


def _is_skip(value):
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_generate_shows_mistakes_inline_as_one_line(page):
    message, selected = page.on_generate(*_fields(page, "  "), False, "")
    assert message == 'error: the prompt is empty: give a description such as "a red chair"' and _is_skip(selected)
    message, _ = page.on_generate(*_fields(page, "a red cube"), True, "prompt: a red cube\nsed: 1\n")
    assert message == "error: unknown config key 'sed' (did you mean 'seed'?)"
    assert page.on_yaml("prompt: [").startswith("error: the config is not valid YAML")
    assert page.on_yaml("prompt: a red cube") == "✓ valid config"
    assert page.manager.jobs() == []


def test_the_yaml_panel_follows_the_form_until_it_is_used_instead(page):
    text, check = page.on_form(*_fields(page, "a red cube", steps=7), False)
    config = form.config_from_yaml(text)
    assert (config.prompt, config.steps, config.prior.name, config.resolution) == ("a red cube", 7, "reference", 16)
    assert check == "✓ valid config"
    assert page.on_form(*_fields(page, ""), False)[1] == ""  # no nagging before a prompt is typed
    assert all(_is_skip(v) for v in page.on_form(*_fields(page, "a red cube"), True))
    assert page.on_preset("reference").prior == "reference"
    assert page.on_preset("default").steps == load_run_config("default").steps  # the preset's, untouched by the form


def test_a_job_is_polled_from_queue_to_results_inside_the_runs_folder(page):
    message, job_id = page.on_generate(*_fields(page, "a red cube"), False, "")
    assert job_id in message and message.startswith("queued **a red cube**")
    page.manager.wait(job_id, timeout=120)
    out = page.on_poll(job_id, Shown())
    assert out.picker["choices"] == [(f"a red cube · {job_id}", job_id)] and out.picker["value"] == job_id
    assert out.queue == [[job_id, "a red cube", "finished", "step 4 / 4", ""]]
    assert out.status.startswith("**finished** — step 4 / 4") and 'aria-valuenow="4"' in out.progress
    runs = str(page.runs_dir)
    assert (out.preview == f"{runs}/{job_id}/previews/latest.png"
            or out.preview.startswith(f"{runs}/{job_id}/previews/step_"))
    assert out.model == f"{runs}/{job_id}/model.glb" and out.video == f"{runs}/{job_id}/turntable.mp4"
    assert f"{runs}/{job_id}/model.glb" in out.files and all(f.startswith(f"{runs}/{job_id}/") for f in out.files)
    assert out.splats["visible"] is False  # a NeRF has no splats.ply
    assert "IoU" in out.evaluation
    assert out.cancel["interactive"] is False and out.resume["interactive"] is False
    again = page.on_poll(job_id, out.shown)  # nothing changed: nothing is sent again
    assert all(_is_skip(v) for v in (again.picker, again.preview, again.cancel, again.model, again.video))


def test_a_gaussians_job_also_shows_its_splats(page):
    values = form.defaults_for("default", page.overrides)
    values.prompt, values.steps, values.representation = "a red cube", 3, "gaussians"
    _, job_id = page.on_generate(*[getattr(values, name) for name in FIELDS], False, "")
    assert page.manager.wait(job_id, timeout=120).status == "finished"
    out = page.on_poll(job_id, Shown())
    assert out.model.endswith(f"{job_id}/model.glb")
    assert out.splats["visible"] is True and out.splats["value"] == f"{page.runs_dir}/{job_id}/splats.ply"
    assert f"{page.runs_dir}/{job_id}/splats.ply" in out.files


def test_files_outside_the_runs_folder_are_never_served(page, tmp_path):
    outside = tmp_path / "elsewhere.glb"
    outside.write_text("x")
    with pytest.raises(UserError, match="outside the runs folder"):
        page.served(outside)
    poll = page.on_poll("../elsewhere", Shown())
    assert poll.title.startswith("error: '../elsewhere' is not a run name")
    run = page.runs_dir / "linked"  # a run folder whose preview links out of the runs folder
    (run / "previews").mkdir(parents=True)
    (run / "config.yaml").write_text("prompt: a red cube\nsteps: 4\n")
    (run / "previews" / "latest.png").symlink_to(outside)
    poll = page.on_poll("linked", Shown())
    assert poll.title.startswith("error: '") and "outside the runs folder" in poll.title and poll.preview is None
    gallery, rows, ids = page.on_history()
    assert gallery == [] and ids == [] and [row[0] for row in rows] == ["linked"]


def test_uploaded_configs_are_validated(page, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("prompt: a red cube\nsteps: -3\n")
    assert page.on_upload(str(bad))[2] == "error: bad.yaml: steps must be a positive integer, got -3"
    good = tmp_path / "good.yaml"
    good.write_text("prompt: a red cube\nsteps: 3\n")
    text, use_yaml, check = page.on_upload(str(good))
    assert text == good.read_text() and use_yaml is True and check == "✓ valid config"


def test_the_form_says_whether_it_holds_the_shown_jobs_settings_and_can_take_them(page):
    assert page.on_form_match(None, *_fields(page, "a red cube"), False, "") == ""
    _, job_id = page.on_generate(*_fields(page, "a red cube", steps=4), False, "")
    page.manager.wait(job_id, timeout=120)  # a run rewrites its config.yaml (with the server's progress=false)
    assert page.on_form_match(job_id, *_fields(page, "a red cube", steps=4), False, "") == \
        "✓ The form holds this job's settings."
    line = page.on_form_match(job_id, *_fields(page, "a blue cube", steps=9), False, "")
    assert line.startswith("**The form differs from this job** (2 settings): `prompt` a red cube here, a blue cube "
                           "in the form; `steps` 4 here, 9 in the form.")
    assert page.on_form_match(job_id, *_fields(page, "a red cube", steps=4), True, "prompt: [") == ""  # typing YAML

    # a job the fields can hold: its preset and fields go into the form, and the form then matches it
    fields = _fields(page, "a green cone", steps=3)
    fields[FIELDS.index("seed")], fields[FIELDS.index("formats")] = 11, ["obj"]
    _, plain = page.on_generate(*fields, False, "")
    fill = page.on_use_job(plain)
    assert (fill.prompt, fill.steps, fill.seed, fill.formats, fill.use_yaml) == ("a green cone", 3, 11, ["obj"], False)
    assert _is_skip(fill.yaml_text) and fill.action == f"the form now holds the settings of `{plain}` (preset {fill.preset})"
    filled = [getattr(fill, name) for name in ("prompt", "negative", "preset", "guidance", "representation", "prior",
                                                "steps", "seed", "resolution", "formats")]
    assert page.on_form_match(plain, *filled, False, "").startswith("✓")

    # a job with a setting no field holds (from the YAML panel): its whole config goes to the YAML panel, ticked
    text = form.config_to_yaml(form.resolve_form(form.FormValues(prompt="a red cube", steps=3), page.overrides))
    _, custom = page.on_generate(*_fields(page, "ignored"), True, text.replace("guidance_scale: 5.0", "guidance_scale: 33.0"))
    line = page.on_form_match(custom, *_fields(page, "a red cube", steps=3), False, "")
    assert line.startswith("**The form differs from this job** (1 setting): `guidance.guidance_scale` 33.0 here, "
                           "5.0 in the form.")
    fill = page.on_use_job(custom)
    assert fill.use_yaml is True and "guidance_scale: 33.0" in fill.yaml_text and _is_skip(fill.preset)
    assert "cannot hold" in fill.action and fill.prompt == "a red cube"
    assert page.on_form_match(custom, *_fields(page, "whatever"), True, fill.yaml_text).startswith("✓")
    assert page.on_use_job(None).action == "error: no job selected"


def test_the_page_builds_and_on_load_picks_the_newest_run(page):
    assert isinstance(build_app(page), gr.Blocks)
    assert page.on_load() is None
    _, job_id = page.on_generate(*_fields(page, "a blue cube", steps=2), False, "")
    assert page.on_load() == job_id


def test_auth_is_user_colon_password():
    assert parse_auth("ann:s3cr:et") == ("ann", "s3cr:et")
    assert parse_auth(None) is None and parse_auth("") is None
    for bad in ("ann", ":pw", "ann:"):
        with pytest.raises(UserError, match="USER:PASSWORD"):
            parse_auth(bad)


def test_ui_command_mistakes_are_one_line_errors(tmp_path, capsys):
    assert cli.main(["ui", "--runs", str(tmp_path / "runs"), "--auth", "nopassword"]) == 2
    assert capsys.readouterr().err.strip() == "error: --auth (or DREAMER_UI_AUTH) must look like USER:PASSWORD"
    (tmp_path / "file").write_text("x")
    assert cli.main(["ui", "--runs", str(tmp_path / "file")]) == 2
    assert "is a file: choose another --runs" in capsys.readouterr().err
    assert cli.main(["ui", "--runs", str(tmp_path / "runs"), "stepz=3"]) == 2
    assert "unknown config key 'stepz'" in capsys.readouterr().err


def test_the_cli_does_not_import_gradio():
    probe = "import sys, dreamer.cli; print('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.slow(seconds=15)
def test_with_auth_nothing_is_served_before_login(tmp_path):
    runs = tmp_path / "runs"
    (runs / "old-run").mkdir(parents=True)
    (runs / "old-run" / "config.yaml").write_text("prompt: a red cube\n")
    app = App(runs, tmp_path / "app.log", list(UI_TINY), "--auth", "ann:s3cret")
    try:
        file_url = f"{app.url}gradio_api/file={runs.resolve()}/old-run/config.yaml"
        assert http_status(file_url) == 401 and http_status(f"{app.url}config") == 401
        login = urllib.request.Request(f"{app.url}login", data=b"username=ann&password=wrong")
        assert http_status(login) == 400
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        opener.open(urllib.request.Request(f"{app.url}login", data=b"username=ann&password=s3cret"), timeout=10)
        with opener.open(file_url, timeout=10) as response:
            assert response.read() == b"prompt: a red cube\n"
    finally:
        app.stop()
    assert app.proc.returncode == 0, app.tail()

