"""Past runs, read back from the run folders on disk — so the history survives an app restart.

A run folder is any folder directly inside the runs folder with a `config.yaml`. What it holds
says where it stands: `model.glb` means finished; `ui-job.json` (written by the job manager when
a job stops) can say it failed and why; anything else stopped before its end and can be resumed
from its checkpoint (or from step 0 when it never started).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from dreamer.api import UserError, build_run_config, load_yaml, read_eval

from dreamer.ui.frames import FRAMES_ZIP, frames_zip

STATUS_FILE = "ui-job.json"  # {"status": queued|running|interrupted|cancelled|failed|finished, "error": str|None}
THUMBNAIL = Path("previews") / "latest.png"
MOTION_VIDEO = "motion.mp4"  # 4D runs: the motion from a fixed front camera
# What a finished run offers for download, in this order (those present).
DOWNLOADS = ("model.glb", "model_trs.glb", "model.obj", "model.mtl", "model_albedo.png", "model.ply", "splats.ply",
             "deformation.safetensors", FRAMES_ZIP, "turntable.mp4", MOTION_VIDEO, "turntable.gif", "eval.json",
             "config.yaml", "metrics.jsonl")


@dataclass
class RunRecord:
    """One run folder as the history shows it."""

    id: str  # the folder name
    run_dir: Path
    prompt: str
    status: str  # finished | failed | cancelled (stopped before its last step; resumable)
    step: int  # last step logged in metrics.jsonl
    total: int  # the config's steps
    loss: float | None  # last logged loss
    error: str | None  # one line, for failed runs
    thumbnail: Path | None  # previews/latest.png when written
    modified: float  # newest change to config.yaml / metrics.jsonl / model.glb (seconds since the epoch)
    representation: str = ""
    is_4d: bool = False  # a dynamic representation: an animated model.glb, motion.mp4, frames


@dataclass
class RunOutputs:
    """The result files of a run folder (None / empty when absent)."""

    model: Path | None  # model.glb
    splats: Path | None  # splats.ply (Gaussians)
    video: Path | None  # turntable.mp4
    motion_video: Path | None = None  # motion.mp4 (4D runs)
    downloads: list[Path] = field(default_factory=list)
    eval: dict | None = None  # eval.json


def _last_metrics(path: Path) -> dict:
    if not path.exists():
        return {}
    for line in reversed(path.read_text().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        if isinstance(record, dict):
            return record
    return {}


def read_status_file(run_dir: Path) -> dict:
    try:
        data = json.loads((run_dir / STATUS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def is_4d_config(config: dict) -> bool:
    """Whether a saved config is a 4D run's: its representation is dynamic (e.g. gaussians4d)."""
    rep = config.get("representation")
    name = rep.get("name") if isinstance(rep, dict) else rep
    return isinstance(name, str) and _dynamic(name)


@functools.lru_cache(maxsize=None)
def _dynamic(representation: str) -> bool:
    """Asked once per name (the history reads every run folder on each refresh)."""
    try:
        return build_run_config({"representation": representation}).is_4d
    except UserError:  # not a registered representation: such a run fails when resumed, and says why
        return False


def read_run(run_dir: Path) -> RunRecord | None:
    """The record of `run_dir`, or None when it is not a run folder."""
    config_path = run_dir / "config.yaml"
    if not run_dir.is_dir() or not config_path.is_file():
        return None
    error = None
    try:
        config = load_yaml(config_path)
    except UserError as e:
        config, error = {}, str(e)
    last = _last_metrics(run_dir / "metrics.jsonl")
    saved = read_status_file(run_dir)
    if error is not None:
        status = "failed"
    elif (run_dir / "model.glb").is_file():
        status = "finished"
    elif saved.get("status") == "failed":
        status, error = "failed", str(saved.get("error") or "failed")
    else:
        status = "cancelled"
    rep = config.get("representation")
    stamps = [p.stat().st_mtime for p in (config_path, run_dir / "metrics.jsonl", run_dir / "model.glb") if p.exists()]
    thumb = run_dir / THUMBNAIL
    return RunRecord(
        id=run_dir.name, run_dir=run_dir, prompt=str(config.get("prompt", "")), status=status,
        step=int(last.get("step", 0)), total=int(config.get("steps", 0) or 0),
        loss=float(last["loss"]) if isinstance(last.get("loss"), (int, float)) else None,
        error=error, thumbnail=thumb if thumb.is_file() else None, modified=max(stamps),
        representation=str(rep.get("name", "")) if isinstance(rep, dict) else str(rep or ""),
        is_4d=error is None and is_4d_config(config),
    )


def list_runs(runs_dir: Path) -> list[RunRecord]:
    """Every run folder directly inside `runs_dir`, newest first (hidden folders skipped)."""
    if not runs_dir.is_dir():
        return []
    records = [read_run(p) for p in runs_dir.iterdir() if not p.name.startswith(".")]
    return sorted((r for r in records if r is not None), key=lambda r: (r.modified, r.id), reverse=True)


def run_outputs(run_dir: Path) -> RunOutputs:
    """The result files of a finished (or stopped) run; writes frames.zip of a 4D run first."""
    frames_zip(run_dir)

    def present(name: str) -> Path | None:
        path = run_dir / name
        return path if path.is_file() else None

    try:
        ev = read_eval(run_dir)
    except (OSError, json.JSONDecodeError):
        ev = None
    return RunOutputs(model=present("model.glb"), splats=present("splats.ply"), video=present("turntable.mp4"),
                      motion_video=present(MOTION_VIDEO),
                      downloads=[p for p in map(present, DOWNLOADS) if p is not None],
                      eval=ev if isinstance(ev, dict) else None)
