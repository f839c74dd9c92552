"""The Gradio page of `dreamer ui`: a form, a job queue with live progress, results and history.

Jobs live in a `JobManager` (ui/jobs.py), not in the callbacks: the page only submits, cancels
and resumes, and a `gr.Timer` polls the selected job, so closing the tab never touches a job and
a reopened tab picks it up again. Every file handed to a component passes `inside_runs` first,
Gradio's own copies of them (and uploads) go to `<runs>/.ui-cache`, and `allowed_paths` names the
runs folder only. A 4D run (a 4D preset) shows the same panel: its model.glb is animated (the
viewer, Babylon.js, plays glTF animations on load), and a second video, motion.mp4, appears.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr

from dreamer.api import DiskFull, OutOfVocabularyWarning, UserError, check_prompt, is_exact_prior, prompt_notice
from dreamer.ui import amortized, form, views
from dreamer.ui.history import list_runs, run_outputs
from dreamer.ui.jobs import JobManager, JobState
from dreamer.ui.paths import CACHE_NAME, inside_runs, runs_root

POLL_S = 1.0  # seconds between the page's looks at the selected job
# Previews are small renders (128 px a view by default): draw them large, with crisp pixels.
CSS = """
#job-preview .image-frame { width: 100%; }
#job-preview img { width: 100%; height: auto; max-height: 220px; object-fit: contain; image-rendering: pixelated; }
#history-gallery img { image-rendering: pixelated; }
"""
MAX_UPLOAD = "1mb"  # uploaded configs are small YAML files


@dataclass
class Shown:
    """What one browser tab shows now, so that a poll sends only what changed."""

    job_id: str | None = None
    choices: tuple = ()
    preview: str | None = None
    results: tuple | None = None  # (job id, status, model.glb mtime) of the results on screen
    buttons: tuple | None = None  # (cancel enabled, resume enabled)


class PresetFields(NamedTuple):
    """What choosing a preset sets in the form (outputs of `on_preset`, wired by these names)."""

    negative: Any
    guidance: Any
    representation: Any
    prior: Any
    steps: Any
    seed: Any
    resolution: Any
    formats: Any


class JobPanel(NamedTuple):
    """What one poll sends to the 'Jobs' side of the page (outputs of `on_poll`, wired by these names);
    a field is `skip()` when that component is left as it is."""

    picker: Any  # the job dropdown
    queue: Any  # the jobs table
    title: Any
    status: Any
    progress: Any  # the progress bar's HTML
    preview: Any
    cancel: Any
    resume: Any
    model: Any  # model.glb viewer
    splats: Any  # splats.ply viewer (Gaussians only)
    video: Any  # turntable.mp4
    motion: Any  # motion.mp4 (4D runs only)
    files: Any  # downloads
    evaluation: Any  # eval tables
    shown: Shown  # the tab's state after this poll


class FormFill(NamedTuple):
    """What "Use this job's settings" sets (outputs of `on_use_job`, wired by these names)."""

    prompt: Any
    negative: Any
    preset: Any
    guidance: Any
    representation: Any
    prior: Any
    steps: Any
    seed: Any
    resolution: Any
    formats: Any
    use_yaml: Any
    yaml_text: Any
    action: Any  # one line: what was done


@dataclass
class Page:
    """The callbacks, bound to one job manager and the server's `key=value` overrides."""

    manager: JobManager
    overrides: list[str] = field(default_factory=list)

    @property
    def runs_dir(self) -> Path:
        return self.manager.runs_dir

    def served(self, path: Path | None) -> str | None:
        """`path` as a string for a component, once it is known to lie inside the runs folder."""
        return None if path is None else str(inside_runs(self.runs_dir, path))

    # -- the form -----------------------------------------------------------------------------
    def values(self, *fields) -> form.FormValues:
        prompt, negative, preset, guidance, representation, prior, steps, seed, resolution, formats = fields
        return form.FormValues(prompt=prompt or "", negative_prompt=negative or "", preset=preset or "default",
                               guidance=guidance, representation=representation, prior=prior, steps=steps,
                               seed=seed, resolution=resolution, formats=list(formats or []))

    def on_preset(self, preset: str):
        """The preset's values (with the server's overrides) into the fields below it."""
        try:
            d = form.defaults_for(preset, self.overrides)
        except UserError as e:
            gr.Warning(str(e))
            return PresetFields(*(skip() for _ in PresetFields._fields))
        return PresetFields(d.negative_prompt, d.guidance, d.representation, d.prior, d.steps, d.seed, d.resolution,
                            d.formats)

    def on_form(self, *args):
        """The resolved config as YAML (left alone while the YAML is being used instead)."""
        *fields, use_yaml = args
        if use_yaml:
            return skip(), skip()
        values = self.values(*fields)
        try:
            text = form.config_to_yaml(form.resolve_form(values, self.overrides))
        except UserError as e:
            return skip(), _problem(str(e))
        return text, _problem(form.yaml_problem(text)) if values.prompt.strip() else ""

    def on_yaml(self, text: str) -> str:
        return _problem(form.yaml_problem(text))

    def on_upload(self, path: str | None):
        """An uploaded YAML config: checked, then put in the editor and used for the next job."""
        if not path:
            return skip(), skip(), skip()
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError):
            return skip(), skip(), _problem("the uploaded file is not a readable text file")
        problem = form.yaml_problem(text)
        if problem:
            return skip(), skip(), _problem(f"{Path(path).name}: {problem}")
        return text, True, _problem(None)

    def on_notice(self, prompt: str, prior: str | None) -> str:
        """Beside the prompt, before anything is queued: what the embedded prior cannot make."""
        return notice_markdown(prompt_notice(prompt or "", prior or ""), prior)

    def on_generate(self, *args):
        *fields, use_yaml, text = args
        try:
            if use_yaml:
                config = form.config_from_yaml(text)
            else:
                config = form.resolve_form(self.values(*fields), self.overrides).validate()
            with warnings.catch_warnings(record=True) as warned:  # the API's own rule: error or warning
                warnings.simplefilter("always", OutOfVocabularyWarning)
                check_prompt(config)
            notice = any(issubclass(w.category, OutOfVocabularyWarning) for w in warned)
            job = self.manager.submit(config)
        except UserError as e:
            return f"error: {e}", skip()
        where = f"#{job.queue_position} in line" if job.queue_position else "starting"
        queued = f"queued **{job.prompt}** as `{job.id}` ({where})"
        return (f"{queued}. Warning: the `{config.prior.name}` prior does not know this prompt; "
                "see the notice under the prompt." if notice else queued), job.id

    def on_api_jobs(self) -> list[dict]:
        """The `/jobs` HTTP endpoint: this server's jobs, oldest first, as the jobs table shows them
        (`resume`: the job continues from its checkpoint when it starts)."""
        return [{"id": j.id, "prompt": j.prompt, "status": j.status, "step": j.step, "total": j.total,
                 "queue_position": j.queue_position, "resume": j.resume} for j in self.manager.jobs()]

    # -- the selected job ---------------------------------------------------------------------
    def on_form_match(self, job_id: str | None, *args) -> str:
        """Under the job on display: whether the form holds that job's settings (empty when no job)."""
        *fields, use_yaml, text = args
        if not job_id:
            return ""
        try:
            job = form.read_job_config(self.manager.state(job_id).run_dir)
            ours = form.config_from_yaml(text) if use_yaml else form.resolve_form(self.values(*fields), self.overrides)
        except UserError:  # no config to compare (yet), or the YAML being typed is not valid: say nothing
            return ""
        return views.form_match_markdown(form.config_differences(ours, job))

    def on_use_job(self, job_id: str | None) -> FormFill:
        """The job on display's settings into the form: its preset and fields when they reproduce the job
        exactly, else the fields it has and its whole config in the YAML panel, ticked for the next job."""
        if not job_id:
            return FormFill(*(skip() for _ in FormFill._fields[:-1]), "error: no job selected")
        try:
            job = form.read_job_config(self.manager.state(job_id).run_dir)
        except UserError as e:
            return FormFill(*(skip() for _ in FormFill._fields[:-1]), f"error: {e}")
        values = form.form_for_job(job, self.overrides)
        exact = values is not None
        values = values or form.values_of(job, "default")
        said = (f"the form now holds the settings of `{job_id}` (preset {values.preset})" if exact else
                f"`{job_id}` has settings the form's fields cannot hold: its whole config is in the YAML panel, "
                "which the next Generate uses")
        return FormFill(values.prompt, values.negative_prompt, values.preset if exact else skip(), values.guidance,
                        values.representation, values.prior, values.steps, values.seed, values.resolution,
                        values.formats, not exact, skip() if exact else form.config_to_yaml(job), said)

    def on_cancel(self, job_id: str | None) -> str:
        return self._act(self.manager.cancel, job_id, "cancel requested")

    def on_resume(self, job_id: str | None) -> str:
        return self._act(self.manager.resume, job_id, "queued again")

    def _act(self, action, job_id: str | None, done: str) -> str:
        if not job_id:
            return "error: no job selected"
        try:
            job = action(job_id)
        except UserError as e:
            return f"error: {e}"
        return f"{done}: `{job.id}` is {job.status}"

    def on_poll(self, job_id: str | None, shown: Shown) -> JobPanel:
        """Everything under 'Jobs' that changed since this tab last looked."""
        jobs = self.manager.jobs()
        choices = tuple((f"{j.prompt} · {j.id}", j.id) for j in reversed(jobs))
        if job_id and job_id not in {c[1] for c in choices}:
            choices += ((job_id, job_id),)
        new = Shown(job_id=job_id, choices=choices, preview=shown.preview, results=shown.results,
                    buttons=shown.buttons)
        if job_id != shown.job_id or choices != shown.choices:
            picker = gr.update(choices=list(choices), value=job_id)
        else:
            picker = skip()
        table = views.job_rows(jobs)
        if job_id != shown.job_id:
            new.preview = new.results = new.buttons = None
        try:
            job = self.manager.state(job_id) if job_id else None
            if job is not None:  # every path below is checked against the runs folder
                return JobPanel(picker, table, views.title_line(job), views.status_line(job), views.progress_html(job),
                                self._preview(job, new), *self._buttons(job, new), *self._results(job, new), new)
            title, line = "", "No job selected: generate one, or open a run from the history."
        except UserError as e:
            title, line = f"error: {e}", ""
            new.preview = new.results = new.buttons = None
        return JobPanel(picker, table, title, line, "", None, *self._buttons(None, new), *self._results(None, new), new)

    def _preview(self, job: JobState, shown: Shown):
        path = job.preview or _existing(job.run_dir / "previews" / "latest.png")
        value = self.served(path)
        if value == shown.preview:
            return skip()
        shown.preview = value
        return value

    def _buttons(self, job: JobState | None, shown: Shown):
        state = (job is not None and job.status in ("queued", "running"),
                 job is not None and job.status in ("cancelled", "failed"))
        if state == shown.buttons:
            return skip(), skip()
        shown.buttons = state
        return gr.update(interactive=state[0]), gr.update(interactive=state[1])

    def _results(self, job: JobState | None, shown: Shown):
        """model viewer, splats viewer, turntable, motion video, downloads, eval table."""
        model = None if job is None else _existing(job.run_dir / "model.glb")
        key = None if job is None else (job.id, job.status, model.stat().st_mtime if model else None)
        if key == shown.results:
            return skip(), skip(), skip(), skip(), skip(), skip()
        shown.results = key
        if job is None or job.status in ("queued", "running", "cancelling"):
            return None, gr.update(value=None, visible=False), None, gr.update(value=None, visible=False), None, ""
        out = run_outputs(job.run_dir)
        return (self.served(out.model), gr.update(value=self.served(out.splats), visible=out.splats is not None),
                self.served(out.video),
                gr.update(value=self.served(out.motion_video), visible=out.motion_video is not None),
                [self.served(p) for p in out.downloads] or None, views.eval_markdown(out.eval))

    # -- history ------------------------------------------------------------------------------
    # -- the one-generator tab ----------------------------------------------------------------
    def on_generators(self):
        names = amortized.list_generators(self.runs_dir)
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    def on_make(self, generator: str | None, prompt: str):
        """(message, model, video, eval) of an asset made by a trained generator, shown at once."""
        try:
            made = amortized.make(self.runs_dir, generator, prompt, self.overrides)
        except UserError as e:
            return _problem(str(e)), None, None, ""
        message = f"Made in one forward pass ({made.forward_seconds:.1f} s, then export) → `{made.run_dir.name}`"
        video = self.served(made.video) if made.video is not None else None
        return message, self.served(made.model), video, views.eval_markdown(made.eval)

    def on_blend(self, generator: str | None, start: str, end: str, frames):
        """(message, video) of an interpolation between two prompts by a trained generator."""
        try:
            video = amortized.blend(self.runs_dir, generator, start, end, frames)
        except (UserError, DiskFull) as e:
            return _problem(str(e)), None
        return f"Interpolated {start.strip()} → {end.strip()} → `{video.parent.name}`", self.served(video)

    def on_history(self):
        records = list_runs(self.runs_dir)
        gallery, ids = [], []
        for record in records:
            try:
                thumbnail = self.served(record.thumbnail)
            except UserError:  # e.g. a link out of the runs folder: listed, but not shown
                continue
            if thumbnail is not None:
                gallery.append((thumbnail, views.history_caption(record)))
                ids.append(record.id)
        return gallery, views.history_rows(records), ids

    def on_open_thumbnail(self, ids: list[str], evt: gr.SelectData):
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        return (ids[index] if 0 <= index < len(ids) else skip()), gr.Tabs(selected="generate")

    def on_open_row(self, evt: gr.SelectData):
        row = evt.row_value or []
        return (row[0] if row else skip()), gr.Tabs(selected="generate")

    def on_pick_row(self, evt: gr.SelectData):
        row = evt.row_value or []
        return row[0] if row else skip()

    def on_load(self) -> str | None:
        """A (re)opened tab shows the newest active job, else the newest job, else the newest run."""
        jobs = self.manager.jobs()
        active = [j for j in jobs if j.status in ("queued", "running", "cancelling")]
        if active or jobs:
            return (active or jobs)[-1].id
        runs = list_runs(self.runs_dir)
        return runs[0].id if runs else None


def skip():
    """'Leave this component as it is' (a fresh value each time: Gradio may consume it)."""
    return gr.skip()


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def notice_markdown(notice: str | None, prior: str | None) -> str:
    if not notice:
        return ""
    verdict = "cannot be generated" if is_exact_prior(prior) else "will run, but not as asked"
    return f"**⚠ Out of vocabulary — {verdict}.** {notice}"


def _problem(message: str | None) -> str:
    return "✓ valid config" if message is None else f"error: {message}"


def build_app(page: Page) -> gr.Blocks:
    """The page's layout and wiring."""
    start = form.defaults_for("default", page.overrides)
    with gr.Blocks(title="dreamer — text to 3D", analytics_enabled=False, delete_cache=(3600, 24 * 3600)) as demo:
        selected = gr.State(None)
        shown = gr.State(Shown())
        history_ids = gr.State([])
        gr.Markdown("# dreamer — text to 3D\nDescribe an object; jobs queue up and keep running when this tab closes. "
                    "With a 4D preset, describe a moving one: *a red cube bouncing*.")
        with gr.Tabs(selected="generate") as tabs:
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=2):
                        prompt = gr.Textbox(label="Prompt", placeholder="a red cube", elem_id="prompt")
                        notice = gr.Markdown(elem_id="prompt-notice")
                        negative = gr.Textbox(label="Negative prompt", value=start.negative_prompt)
                        preset = gr.Dropdown(form.preset_choices(), value="default", label="Preset", elem_id="preset")
                        with gr.Row():
                            guidance = gr.Dropdown(form.component_choices("guidance"), value=start.guidance,
                                                   label="Guidance rule")
                            representation = gr.Dropdown(form.component_choices("representation"),
                                                         value=start.representation, label="Representation")
                            prior = gr.Dropdown(form.component_choices("prior"), value=start.prior, label="Prior")
                        with gr.Row():
                            steps = gr.Number(start.steps, label="Steps", precision=0, minimum=1, elem_id="steps")
                            seed = gr.Number(start.seed, label="Seed", precision=0, elem_id="seed")
                            resolution = gr.Number(start.resolution, label="Resolution (px)", precision=0, minimum=8)
                        formats = gr.CheckboxGroup(list(form.EXTRA_FORMATS), value=start.formats,
                                                   label="Also export (model.glb is always written)")
                        with gr.Accordion("Advanced: the resolved config (YAML)", open=False):
                            use_yaml = gr.Checkbox(False, label="Generate from this YAML instead of the form",
                                                   elem_id="use-yaml")
                            yaml_text = gr.Code(language="yaml", interactive=True, lines=16, max_lines=24, label="config.yaml",
                                                elem_id="config-yaml")
                            yaml_check = gr.Markdown(elem_id="config-check")
                            upload = gr.File(label="Load a config (YAML)", file_types=[".yaml", ".yml"],
                                             type="filepath")
                        generate = gr.Button("Generate", variant="primary", elem_id="generate")
                        message = gr.Markdown(elem_id="submit-message")
                    with gr.Column(scale=3):
                        queue = gr.Dataframe(headers=views.JOB_COLUMNS, value=[], label="Jobs (click one to show it)",
                                             interactive=False, elem_id="job-table", wrap=True, max_height=220)
                        picker = gr.Dropdown([], label="Showing", elem_id="job-picker", interactive=True)
                        title = gr.Markdown(elem_id="job-title")
                        with gr.Row():
                            form_match = gr.Markdown(elem_id="form-match")
                            use_job = gr.Button("Use this job's settings", size="sm", scale=0,
                                                elem_id="use-job-settings")
                        status = gr.Markdown(elem_id="job-status")
                        bar = gr.HTML(elem_id="job-progress")
                        preview = gr.Image(label="Preview (front, side, back, side)", type="filepath",
                                           interactive=False, elem_id="job-preview")
                        with gr.Row():
                            cancel = gr.Button("Cancel", variant="stop", interactive=False, elem_id="cancel")
                            resume = gr.Button("Resume", interactive=False, elem_id="resume")
                        action = gr.Markdown(elem_id="job-action")
                        with gr.Row():
                            model = gr.Model3D(label="model.glb", elem_id="result-model", height=320,
                                               clear_color=(1.0, 1.0, 1.0, 1.0))
                            video = gr.Video(label="turntable", elem_id="result-video", autoplay=True, loop=True,
                                             interactive=False, height=320)
                        with gr.Row():
                            splats = gr.Model3D(label="splats.ply", elem_id="result-splats", visible=False, height=320)
                            motion = gr.Video(label="motion (front camera)", elem_id="result-motion", autoplay=True,
                                              loop=True, interactive=False, height=320, visible=False)
                        evaluation = gr.Markdown(elem_id="result-eval")
                        files = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                        elem_id="result-files", height=240)
            with gr.Tab("One generator", id="amortized") as amortized_tab:
                gr.Markdown("A generator trained on many prompts (`dreamer amortized train --out "
                            "<runs>/generators/NAME`) makes an asset in one forward pass instead of an optimisation.")
                with gr.Row():
                    with gr.Column(scale=2):
                        generator_name = gr.Dropdown([], label="Generator", elem_id="amortized-generator")
                        generator_prompt = gr.Textbox(label="Prompt", placeholder="a purple cube",
                                                      elem_id="amortized-prompt")
                        make = gr.Button("Make", variant="primary", elem_id="amortized-make")
                        made_message = gr.Markdown(elem_id="amortized-message")
                    with gr.Column(scale=3):
                        with gr.Row():
                            made_model = gr.Model3D(label="model.glb", elem_id="amortized-model", height=320,
                                                    clear_color=(1.0, 1.0, 1.0, 1.0))
                            made_video = gr.Video(label="turntable", elem_id="amortized-video", autoplay=True,
                                                  loop=True, interactive=False, height=320)
                        made_eval = gr.Markdown(elem_id="amortized-eval")
                with gr.Accordion("Interpolate between two prompts", open=False):
                    with gr.Row():
                        with gr.Column(scale=2):
                            blend_start = gr.Textbox(label="From", placeholder="a red cube", elem_id="blend-start")
                            blend_end = gr.Textbox(label="To", placeholder="a blue sphere", elem_id="blend-end")
                            blend_frames = gr.Number(16, label="Frames", precision=0, minimum=2, elem_id="blend-frames")
                            blend_button = gr.Button("Interpolate", elem_id="blend")
                            blend_message = gr.Markdown(elem_id="blend-message")
                        with gr.Column(scale=3):
                            blend_video = gr.Video(label="interpolation", elem_id="blend-video", autoplay=True,
                                                   loop=True, interactive=False, height=320)
            with gr.Tab("History", id="history") as history_tab:
                refresh = gr.Button("Refresh", size="sm")
                gallery = gr.Gallery(label="Runs with a preview (click to open)", columns=3, fit_columns=False,
                                     height="auto", object_fit="contain", allow_preview=False, elem_id="history-gallery")
                runs = gr.Dataframe(headers=views.HISTORY_COLUMNS, value=[], label="All runs (click to open)",
                                    interactive=False, elem_id="history-table", wrap=True)

        fields = [prompt, negative, preset, guidance, representation, prior, steps, seed, resolution, formats]
        components = {"picker": picker, "queue": queue, "title": title, "status": status, "progress": bar,
                      "preview": preview, "cancel": cancel, "resume": resume, "model": model, "splats": splats,
                      "video": video, "motion": motion, "files": files, "evaluation": evaluation, "shown": shown,
                      "negative": negative, "guidance": guidance, "representation": representation, "prior": prior,
                      "steps": steps, "seed": seed, "resolution": resolution, "formats": formats, "prompt": prompt,
                      "preset": preset, "use_yaml": use_yaml, "yaml_text": yaml_text, "action": action}
        panel = [components[name] for name in JobPanel._fields]
        quiet = {"show_progress": "hidden"}

        latest = {"show_progress": "hidden", "trigger_mode": "always_last"}  # typing: the last value wins
        preset.input(page.on_preset, preset, [components[name] for name in PresetFields._fields], **quiet)
        for f in [*fields, use_yaml]:  # any change, typed or set by the preset, shows in the YAML
            f.change(page.on_form, [*fields, use_yaml], [yaml_text, yaml_check], **latest)
        for f in (prompt, prior):  # the prior changes with the preset too
            f.change(page.on_notice, [prompt, prior], notice, **latest)
        yaml_text.input(page.on_yaml, yaml_text, yaml_check, **latest)
        upload.upload(page.on_upload, upload, [yaml_text, use_yaml, yaml_check])
        # HTTP clients (gradio_client) submit with /generate and watch the queue with /jobs
        generate.click(page.on_generate, [*fields, use_yaml, yaml_text], [message, selected], api_name="generate").then(
            page.on_poll, [selected, shown], panel, **quiet)

        # the job on display against the form: re-checked when either changes
        match_inputs = [selected, *fields, use_yaml, yaml_text]
        for source in (selected, *fields, use_yaml, yaml_text):
            source.change(page.on_form_match, match_inputs, form_match, **latest)
        use_job.click(page.on_use_job, selected, [components[name] for name in FormFill._fields])

        cancel.click(page.on_cancel, selected, action).then(page.on_poll, [selected, shown], panel, **quiet)
        resume.click(page.on_resume, selected, action).then(page.on_poll, [selected, shown], panel, **quiet)
        picker.input(lambda job_id: job_id, picker, selected).then(page.on_poll, [selected, shown], panel, **quiet)
        queue.select(page.on_pick_row, None, selected).then(page.on_poll, [selected, shown], panel, **quiet)
        gr.api(page.on_api_jobs, api_name="jobs")
        gr.Timer(POLL_S).tick(page.on_poll, [selected, shown], panel, **quiet)

        amortized_tab.select(page.on_generators, None, generator_name)
        make.click(page.on_make, [generator_name, generator_prompt], [made_message, made_model, made_video, made_eval])
        blend_button.click(page.on_blend, [generator_name, blend_start, blend_end, blend_frames],
                           [blend_message, blend_video])

        history_outputs = [gallery, runs, history_ids]
        refresh.click(page.on_history, None, history_outputs)
        history_tab.select(page.on_history, None, history_outputs)
        gallery.select(page.on_open_thumbnail, history_ids, [selected, tabs]).then(
            page.on_poll, [selected, shown], panel, **quiet)
        runs.select(page.on_open_row, None, [selected, tabs]).then(page.on_poll, [selected, shown], panel, **quiet)

        demo.load(page.on_load, None, selected).then(page.on_poll, [selected, shown], panel, **quiet).then(
            page.on_form, [*fields, use_yaml], [yaml_text, yaml_check], **quiet).then(
            page.on_history, None, history_outputs, **quiet)
    return demo


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """'USER:PASSWORD' -> (user, password); None or '' -> no login."""
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth (or DREAMER_UI_AUTH) must look like USER:PASSWORD")
    return user, password


def launch(runs: str | Path = "runs", host: str = "127.0.0.1", port: int = 7860, concurrency: int = 1,
           auth: str | None = None, overrides: list[str] | None = None) -> None:
    """Serve the page until Ctrl-C (or SIGTERM); running jobs then save a checkpoint and stop."""
    runs_dir = runs_root(runs)
    overrides = form.check_overrides(list(overrides or []))
    credentials = parse_auth(auth if auth is not None else os.environ.get("DREAMER_UI_AUTH"))
    if host not in ("127.0.0.1", "localhost", "::1") and credentials is None:
        print(f"warning: serving on {host} without --auth: anyone who reaches this address can start jobs")
    # Gradio copies each file it serves (and each upload) into its cache: keep that inside the runs folder.
    os.environ["GRADIO_TEMP_DIR"] = str(runs_dir / CACHE_NAME)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    manager = JobManager(runs_dir, concurrency, recover=True)  # jobs a previous server left queued or running
    if manager.recovered:
        print(f"queued again after a restart: {len(manager.recovered)} job(s)", flush=True)
    demo = build_app(Page(manager, overrides))
    demo.queue(default_concurrency_limit=4)
    print(f"runs folder: {runs_dir}  (jobs: {concurrency} at a time)", flush=True)
    # Off when this Gradio has them: the browser-side run log, the footer links, the MCP endpoint.
    optional = {"run_history": False, "footer_links": [], "mcp_server": False}
    known = inspect.signature(demo.launch).parameters
    try:
        try:
            demo.launch(server_name=host, server_port=port, auth=credentials, allowed_paths=[str(runs_dir)],
                        max_file_size=MAX_UPLOAD, ssr_mode=False, css=CSS, prevent_thread_lock=True,
                        **{k: v for k, v in optional.items() if k in known})
        except OSError as e:
            raise UserError(f"cannot serve on {host}:{port} ({e}); choose another --port") from None
        while True:  # serve until Ctrl-C or SIGTERM (both arrive as KeyboardInterrupt)
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("stopping: running jobs save a checkpoint; the next server queues them again", flush=True)
    finally:
        # the queue first (also when start-up fails), so that no job starts while the web server closes
        manager.shutdown()
        demo.close()
