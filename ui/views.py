"""What the page shows of a job or a past run, as plain text, HTML and table rows (no Gradio here)."""

from __future__ import annotations

import html
import math
import time

from dreamer.ui.history import RunRecord
from dreamer.ui.jobs import JobState

JOB_COLUMNS = ["run", "prompt", "status", "progress", "ETA"]
HISTORY_COLUMNS = ["run", "prompt", "kind", "status", "steps", "representation", "changed"]
EVAL_FIELDS = (("iou", "IoU"), ("colour_error", "colour error"), ("r_precision", "R-precision"),
               ("multi_face_rate", "multi-face rate"))
# the exported mesh against the ground-truth mesh, in 3D (dreamer.eval.geometry)
EVAL_3D_FIELDS = (("volume_iou", "volume IoU"), ("fscore_002", "F-score@0.02"), ("fscore_005", "F-score@0.05"),
                  ("chamfer_l1", "chamfer L1"), ("normal_consistency", "normal consistency"),
                  ("extent_error", "extent error x / y / z"))
# a 4D run's eval.json (dreamer.eval.four_d_metrics): per-frame lists summarised by their mean and their worst frame
EVAL_FRAME_FIELDS = (("mean_frame_iou", "IoU, mean"), ("min_frame_iou", "IoU, worst frame"),
                     ("mean_frame_iou_phase", "IoU, mean at the best phase"),
                     ("mean_frame_volume_iou", "volume IoU, mean"), ("min_frame_volume_iou", "volume IoU, worst frame"))
EVAL_MOTION_FIELDS = (("trajectory_error", "trajectory error"),
                      ("trajectory_error_phase", "trajectory error at the best phase"),
                      ("amplitude_ratio", "amplitude ratio"), ("flicker", "flicker"))
PER_FRAME = {"per_frame_iou": "min_frame_iou", "per_frame_volume_iou": "min_frame_volume_iou"}  # list -> its worst


def format_eta(seconds: float | None) -> str:
    """12 s, 3 min 05 s, 1 h 02 min; an empty string when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _loss(loss: float | None) -> str:
    return f"{loss:.4g}" if loss is not None and math.isfinite(loss) else "–"


def progress_text(job: JobState) -> str:
    return f"step {job.step} / {job.total}"


def status_line(job: JobState) -> str:
    """One line: the status and what it means now (Markdown)."""
    steps = progress_text(job)
    if job.status == "queued":
        place = f"#{job.queue_position} in line" if job.queue_position else "waiting"
        return f"**queued** — {place} · {steps}"
    if job.status == "running":
        if job.total and job.step >= job.total:
            what = "the animation and the videos" if job.is_4d else "the mesh and the turntable"
            return f"**running** — {steps} · exporting {what}"
        eta = format_eta(job.eta_s)
        return f"**running** — {steps} · loss {_loss(job.loss)}" + (f" · ETA {eta}" if eta else "")
    if job.status == "cancelling":
        return f"**cancelling** — {steps} · saving a checkpoint"
    if job.status == "cancelled":
        return f"**cancelled** — {steps} · checkpoint kept: Resume continues it"
    if job.status == "finished":
        return f"**finished** — {steps} · loss {_loss(job.loss)}"
    return f"**failed** — {steps} · {job.error or 'unknown error'}"


def progress_html(job: JobState) -> str:
    fraction = min(max(job.step / job.total, 0.0), 1.0) if job.total else 0.0
    colour = {"failed": "#dc2626", "cancelled": "#9ca3af", "cancelling": "#9ca3af"}.get(job.status, "#f97316")
    return (f'<div class="dreamer-progress" role="progressbar" aria-valuenow="{job.step}" aria-valuemax="{job.total}" '
            f'style="height:10px;border-radius:5px;background:#e5e7eb;overflow:hidden">'
            f'<div style="height:100%;width:{fraction * 100:.1f}%;background:{colour}"></div></div>')


def job_rows(jobs: list[JobState]) -> list[list[str]]:
    """The queue table, newest first."""
    rows = []
    for job in reversed(jobs):
        place = f"queued #{job.queue_position}" if job.status == "queued" and job.queue_position else job.status
        eta = format_eta(job.eta_s) if job.status == "running" else ""
        rows.append([job.id, job.prompt, place, progress_text(job), eta])
    return rows


def history_rows(records: list[RunRecord]) -> list[list[str]]:
    return [[r.id, r.prompt, "4D" if r.is_4d else "3D", r.status, f"{r.step} / {r.total}", r.representation,
             time.strftime("%Y-%m-%d %H:%M", time.localtime(r.modified))] for r in records]


def history_caption(record: RunRecord) -> str:
    return f"{record.prompt or record.id} — {'4D, ' if record.is_4d else ''}{record.status}"


def eval_markdown(ev: dict | None) -> str:
    """The eval figures as Markdown tables, renders then exported mesh ('' when the run has none)."""
    if not ev:
        return ""
    if any(key in ev for key in PER_FRAME):
        return motion_eval_markdown(ev)
    parts = [_table(ev, EVAL_FIELDS, "renders, 8 views"), _table(ev, EVAL_3D_FIELDS, "exported mesh, in 3D")]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return "**Evaluation** (against the shape library)\n\n" + "\n\n".join(parts)


def motion_eval_markdown(ev: dict) -> str:
    """A 4D run's figures: each frame against the animated library (mean and worst), then the motion."""
    summary = dict(ev)
    for key, worst in PER_FRAME.items():
        values = ev.get(key)
        if isinstance(values, list) and values and all(_number(v) for v in values):
            summary[worst] = min(values)
    frames = f"{ev['frames']} frames" if _number(ev.get("frames")) else "each frame"
    views = f" ({ev['views']} views)" if _number(ev.get("views")) else ""
    motion = f" ({html.escape(str(ev['motion']))})" if isinstance(ev.get("motion"), str) else ""
    parts = [_table(summary, EVAL_FRAME_FIELDS, f"{frames} against the library at their times: renders{views}, volume"),
             _table(summary, EVAL_MOTION_FIELDS, f"motion{motion}")]
    parts = [p for p in parts if p]
    if not parts:
        return ""
    return "**Evaluation** (against the animated shape library)\n\n" + "\n\n".join(parts)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _cell(value) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return f"{value:.3f}"
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        return " / ".join(f"{v:.3f}" for v in value)
    return None


def _table(ev: dict, fields, caption: str) -> str:
    cells = [(label, _cell(ev.get(key))) for key, label in fields]
    cells = [(label, text) for label, text in cells if text is not None]
    if not cells:
        return ""
    head = "| " + " | ".join(label for label, _ in cells) + " |"
    rule = "|" + "---|" * len(cells)
    values = "| " + " | ".join(text for _, text in cells) + " |"
    return f"*{caption}*\n\n{head}\n{rule}\n{values}"


def title_line(job: JobState) -> str:
    return f"### {html.escape(job.prompt) or job.id}\n`{job.id}`"


def form_match_markdown(differences: list[tuple[str, object, object]], shown: int = 4) -> str:
    """Under the job on display: whether the form holds its settings, and where not, how they differ."""
    if not differences:
        return "✓ The form holds this job's settings."
    items = [f"`{key}` {_short(job)} here, {_short(form)} in the form" for key, job, form in differences[:shown]]
    more = len(differences) - shown
    tail = f"; and {more} more" if more > 0 else ""
    return (f"**The form differs from this job** ({len(differences)} setting{'s' if len(differences) > 1 else ''}): "
            + "; ".join(items) + tail + ". *Use this job's settings* puts them in the form.")


def _short(value: object, limit: int = 40) -> str:
    text = "–" if value is None else "(empty)" if value == "" else str(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"
