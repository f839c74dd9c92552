"""The Python API: `generate`, `export`, `evaluate` — what the CLI and the UI call.

The web UI imports nothing from the library but this module: what it needs besides the functions
below (configs, presets, errors, progress events, export formats, component lists) is exported
here on purpose, listed in `__all__`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dreamer import registry
from dreamer.config import list_presets, load_yaml, parse_override
from dreamer.amortized.config import WEIGHTS as AMORTIZED_WEIGHTS
from dreamer.errors import DiskFull, Interrupted, OutOfVocabularyWarning, TrainingDiverged, UserError
from dreamer.export.options import FORMATS as EXPORT_FORMATS
from dreamer.io import atomic_write_text
from dreamer.run_config import RunConfig, build_run_config, load_run_config, save_run_config
from dreamer.trainer.events import ProgressEvent
from dreamer.trainer.run_folder import RunFolder

__all__ = [
    # what a run does
    "generate", "export", "evaluate", "read_metrics", "read_eval", "Result", "EVAL_SUMMARY_KEYS", "MOTION_SUMMARY_KEYS",
    "resolve_config", "default_run_dir", "slugify", "prompt_notice", "check_prompt", "is_exact_prior", "is_embedded_prior",
    # for front doors (the web UI): configs, choices, errors, events
    "RunConfig", "build_run_config", "load_run_config", "save_run_config", "list_presets", "load_yaml",
    "parse_override", "COMPONENT_KINDS", "component_summaries", "EXPORT_FORMATS", "ProgressEvent",
    # one generator for many prompts (dreamer.amortized)
    "train_amortized", "generate_amortized", "amortized_interpolate", "AMORTIZED_WEIGHTS",
    # many prompts on Ray (dreamer.batch)
    "batch",
    "atomic_write_text", "UserError", "Interrupted", "TrainingDiverged", "DiskFull", "OutOfVocabularyWarning",
]

COMPONENT_KINDS: tuple[str, ...] = tuple(registry.TABLES)  # guidance, representation, prior


# eval.json's figures that `Result.metrics["eval"]` carries: 2D (renders) then 3D (exported mesh)
# and of a 4D run
from dreamer.eval import MOTION_SUMMARY_KEYS  # noqa: E402  (a light import: no torch)
EVAL_SUMMARY_KEYS = ("iou", "colour_error", "r_precision", "multi_face_rate", "volume_iou", "chamfer_l1",
                     "fscore_002", "fscore_005", "normal_consistency", "extent_error")


@dataclass
class Result:
    run_dir: Path  # the run folder
    mesh: Path  # model.glb
    exports: dict[str, Path]  # format/video -> path
    video: Path | None  # turntable.mp4 (or .gif); a 4D run's turntable plays the motion
    motion_video: Path | None  # 4D runs: motion.mp4 (the motion from a fixed front camera); None for 3D
    checkpoint: Path
    metrics: dict[str, Any] = field(default_factory=dict)  # steps, final_loss, seconds, eval figures


def component_summaries(kind: str) -> dict[str, str]:
    """Registered names of one kind of component (see COMPONENT_KINDS) with their one-line summaries."""
    return {name: entry.summary for name, entry in registry.TABLES[kind].items()}


def slugify(prompt: str, max_length: int = 40) -> str:
    """A safe folder name from a prompt: lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")
    return slug[:max_length].strip("-") or "run"


def default_run_dir(prompt: str, root: Path | str = "runs") -> Path:
    return Path(root) / f"{time.strftime('%Y%m%d-%H%M%S')}-{slugify(prompt)}"


def _overrides(kwargs: dict) -> dict:
    """generate(steps=10, guidance__guidance_scale=20) -> {"steps": 10, "guidance.guidance_scale": 20}."""
    return {k.replace("__", "."): v for k, v in kwargs.items()}


def resolve_config(prompt: str | None = None, config: str | None = "default", dotted: list[str] | None = None,
                   **overrides) -> RunConfig:
    data = _overrides(overrides)
    if prompt is not None:
        data["prompt"] = prompt
    return load_run_config(config, data, dotted)


def is_embedded_prior(name: str) -> bool:
    """Whether prior `name` ships with dreamer and so knows only the shape library's vocabulary (its class's
    `embedded`); False for a name that is not a prior."""
    return _prior_flag(name, "embedded")


def is_exact_prior(name: str) -> bool:
    """Whether prior `name` is an exact denoiser over the library (its class's `exact`): an oracle with
    nothing to denoise towards outside the library."""
    return _prior_flag(name, "exact")


def _prior_flag(name: str, flag: str) -> bool:
    try:
        return bool(getattr(registry.component_class("prior", name), flag))
    except UserError:
        return False


def prompt_notice(prompt: str, prior: str = "tiny") -> str | None:
    """One line telling why an embedded prior cannot make `prompt`, what it knows and how to use a
    real prior instead; None when the prompt is a library prompt or the prior is not embedded."""
    from dreamer.shapes.prompt import (known_motion_vocabulary, known_vocabulary, motion_vocabulary_problem,
                                       vocabulary_problem)

    if not prompt.strip() or not is_embedded_prior(prior):
        return None
    video = registry.component_class("prior", prior).is_video
    problem = (motion_vocabulary_problem if video else vocabulary_problem)(prompt)
    if problem is None:
        return None
    if not video and motion_vocabulary_problem(prompt) is None:  # a moving library object on a 3D preset
        return (f"prompt {' '.join(prompt.split())!r} names a motion, which a 3D run cannot make ({problem}); "
                "for a moving object use a 4D preset: --config 4d")
    real = ("--config 4d-animatediff prior.model=/path/to/stable-diffusion-v1-5 "
            "prior.motion_adapter=/path/to/animatediff-motion-adapter" if video else
            "--prior sd21-base prior.model=/path/to/stable-diffusion-2-1-base")
    return (f"prompt {' '.join(prompt.split())!r} is outside what the embedded '{prior}' prior knows ({problem}); "
            f"it knows {known_motion_vocabulary() if video else known_vocabulary()}; for other prompts use a real "
            f"prior with local weights, e.g. {real}")


def check_prompt(cfg: RunConfig) -> None:
    """Before any work: an error for the exact priors (they have nothing to denoise towards), an
    `OutOfVocabularyWarning` for `tiny` (it runs, but will not make the object asked for). A 4D run
    checks its video prior and its image prior."""
    import warnings

    checks = [(cfg.prompt, cfg.prior.name)]
    if cfg.is_4d:  # the image prior scores single frames of the prompt without its motion
        from dreamer.shapes.prompt import static_prompt

        checks.append((static_prompt(cfg.prompt), cfg.motion.component("prior").name))
    for prompt, name in checks:
        notice = prompt_notice(prompt, name)
        if notice is None:
            continue
        if is_exact_prior(name):
            raise UserError(notice)
        warnings.warn(notice, OutOfVocabularyWarning, stacklevel=3)



def generate(prompt: str | None = None, *, config: str = "default", out: str | Path | None = None,
             resume: bool = False, overwrite: bool = False, dotted: list[str] | None = None,
             on_progress: Callable[[ProgressEvent], None] | None = None,
             should_stop: Callable[[], bool] | None = None, **overrides) -> Result:
    """Text → 3D asset (→ a moving 4D asset with a 4D preset: `config="4d"`). Keyword overrides use `__` for nesting: `guidance__guidance_scale=20`.

    With `resume=True` and an existing run folder `out`, the run continues from its checkpoint to
    its final step using the config saved in the folder (overrides still apply). A folder that
    already holds a run is never overwritten unless `overwrite=True`.
    """
    from dreamer.trainer.outputs import evaluate_outputs, export_outputs
    from dreamer.trainer.stages import train_stages

    if resume and out is None:
        raise UserError("--resume needs the run folder: pass --out RUN_DIR")
    saved = RunFolder(out).config_path if resume else None
    if saved is not None and saved.exists():
        # Continue with the folder's own config; a prompt given again is just another override.
        cfg = resolve_config(prompt, str(saved), dotted, **overrides)
    else:
        cfg = resolve_config(prompt, config, dotted, **overrides)
    cfg.validate()
    check_prompt(cfg)
    run = RunFolder(out if out is not None else default_run_dir(cfg.prompt))
    if not resume and not overwrite and run.has_checkpoint():
        raise UserError(f"'{run.root}' already holds a run: pass --resume to continue it, "
                        "--overwrite to start it again, or choose another --out")
    run.prepare()
    trained = train_stages(cfg, run, resume, on_progress, should_stop)
    paths = export_outputs(cfg, trained.representation, run)
    metrics = dict(trained.metrics)
    if cfg.trainer.evaluate:
        ev = evaluate_outputs(cfg, trained.representation, run, trained.first_stage_steps)
        if ev is not None:
            metrics["eval"] = {k: ev[k] for k in (MOTION_SUMMARY_KEYS if cfg.is_4d else EVAL_SUMMARY_KEYS)}
    return Result(run.root, paths["glb"], paths, paths.get("video"), paths.get("motion_video"), run.checkpoint_path,
                  metrics)


def export(run_dir: str | Path, formats: list[str] | None = None, video: bool = False,
           mesh_resolution: int | None = None, *, max_faces: int | None = None,
           texture: bool | None = None, texture_size: int | None = None,
           padding: int | None = None) -> dict[str, Path]:
    """Re-export a run folder's checkpoint as meshes (and optionally the turntable).

    `formats`: any of glb, obj, ply (model.glb is always written); obj comes with model.mtl and
    model_albedo.png when textured. Options left as None keep the run's `export` config:
    `max_faces` (decimation cap), `texture` (bake a UV texture, else vertex colours),
    `texture_size` (a power of two), `padding` (texels dilated past chart edges)."""
    from dreamer.export.options import MeshExportOptions
    from dreamer.trainer.outputs import export_outputs, load_run

    given = {name: value for name, value in (("max_faces", max_faces), ("texture", texture),
                                             ("texture_size", texture_size), ("padding", padding))
             if value is not None}
    MeshExportOptions(formats=list(formats or ["glb"]), **given).validate()  # bad flags fail before any work
    if mesh_resolution is not None and (isinstance(mesh_resolution, bool) or not isinstance(mesh_resolution, int)
                                        or mesh_resolution <= 0):
        raise UserError(f"mesh resolution must be a positive integer, got {mesh_resolution!r}")
    config, representation, _ = load_run(run_dir)
    if mesh_resolution is not None:
        config.export.mesh_resolution = mesh_resolution
    for name, value in given.items():
        setattr(config.export, name, value)
    return export_outputs(config, representation, RunFolder(run_dir), formats or ["glb"], video=video)


def evaluate(run_dir: str | Path) -> dict:
    """eval.json for a run of a shape-library prompt; returns its contents."""
    from dreamer.shapes import parse_prompt
    from dreamer.trainer.outputs import evaluate_outputs, load_run

    config, representation, step = load_run(run_dir)
    if config.is_4d:
        from dreamer.shapes.prompt import parse_motion_prompt

        parse_motion_prompt(config.prompt)  # a clear error for prompts without ground truth
    else:
        parse_prompt(config.prompt)
    return evaluate_outputs(config, representation, RunFolder(run_dir), step)


def read_metrics(run_dir: str | Path) -> list[dict]:
    return RunFolder(run_dir).read_metrics()


def read_eval(run_dir: str | Path) -> dict | None:
    path = Path(run_dir) / "eval.json"
    return json.loads(path.read_text()) if path.exists() else None


def train_amortized(out: str | Path, *, guidance: str = "", prompts: str = "", steps: int | None = None,
                    resume: bool = False, dotted: list[str] | None = None, progress: bool = False):
    """Train one text-conditioned generator for many prompts (`dreamer amortized train`); returns its
    `TrainSummary`. `dotted`: `train.*`, `generator.*` and per-prompt run keys."""
    from dreamer.amortized.train import train

    return train(out, dotted or [], guidance, prompts, steps, resume, progress=progress)


def generate_amortized(prompt: str, generator: str | Path, *, out: str | Path | None = None,
                       overwrite: bool = False, dotted: list[str] | None = None) -> Result:
    """Prompt -> run folder with the trained generator in `generator` (one forward pass; exports and eval
    as `generate`). `dotted`: export.* overrides."""
    from dreamer.amortized.use import generate_amortized as run

    return run(prompt, generator, out, overwrite, dotted)


def amortized_interpolate(generator: str | Path, start: str, end: str, out: str | Path, frames: int = 16) -> Path:
    """A video morphing from `start` to `end` through the generator's mixed text vectors."""
    from dreamer.amortized.use import interpolate

    return interpolate(generator, start, end, out, frames=frames)


def batch(prompts: str | Path, out: str | Path, *, address: str | None = None, parallel: int = 1, threads: int = 1,
          config: str = "default", dotted: list[str] | None = None, gpus_per_task: float = 0.0, progress: bool = False):
    """Every prompt of the file `prompts` as a Ray task (`dreamer batch`); returns a `BatchSummary`."""
    from dreamer.batch.runner import run_batch

    return run_batch(prompts, out, address=address, parallel=parallel, threads=threads, config=config, dotted=dotted,
                     gpus_per_task=gpus_per_task, progress=progress)

