"""A trained generator at work: one prompt's run folder in a forward pass, and interpolation videos.

`generate_amortized` writes the run folder a per-prompt `dreamer generate` writes (config.yaml, a
checkpoint of a plain NeRF, model.glb, the turntable, eval.json for library prompts), so `dreamer
export`, the UI's history and the benchmarks read it like any other run.
`interpolate` mixes two prompts' text vectors (ScaleDreamer mixes text embeddings) and renders one
turntable frame per mixture into a video.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreamer.amortized.config import WEIGHTS, GeneratorConfig
from dreamer.amortized.generator import AmortizedNeRF, nerf_config
from dreamer.config import merge, to_dict
from dreamer.errors import UserError
from dreamer.run_config import RunConfig, build_run_config


@dataclass
class LoadedGenerator:
    model: AmortizedNeRF
    run: RunConfig  # the per-prompt settings it was trained with (prior, cameras, export)
    prior: torch.nn.Module
    step: int
    prompts: list[str]

    @torch.no_grad()
    def planes(self, prompts: list[str]) -> torch.Tensor:
        """[N, 3, C, R, R] planes of the prompts."""
        return self.model(self.text_vectors(prompts))

    @torch.no_grad()
    def text_vectors(self, prompts: list[str]) -> torch.Tensor:
        return torch.stack([self.prior.text_vector(self.prior.encode_prompt(p)) for p in prompts])


def load_generator(folder: Path | str, device: str = "cpu") -> LoadedGenerator:
    """The generator in `folder` (its generator.pt) with the text encoder of the prior it was trained with."""
    from dreamer.trainer.build import build_prior

    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise UserError(f"{folder} holds no trained generator ({WEIGHTS}): train one with "
                        f"dreamer amortized train --out {folder}")
    try:
        weights = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file
        raise UserError(f"{path} is not a readable generator ({type(e).__name__}): retrain or restore it") from None
    run = build_run_config(weights["run"])
    run.device = device
    model = AmortizedNeRF(int(weights["text_dim"]), merge(GeneratorConfig(), weights["generator"], prefix="generator"))
    model.load_state_dict(weights["model"])
    prior = build_prior(run, torch.device(device))
    return LoadedGenerator(model.eval(), run, prior, int(weights["step"]), list(weights.get("prompts", [])))


def asset_config(loaded: LoadedGenerator, prompt: str, overrides: list[str] | None = None) -> RunConfig:
    """The run folder's config: the training run's settings with this prompt and the generated NeRF."""
    from dreamer.config import parse_override, nested_update

    data = loaded.run.to_dict()
    data["prompt"] = prompt
    data["representation"] = {"name": "nerf", **to_dict(nerf_config(loaded.model.config, occupancy=True))}
    data["steps"] = max(loaded.step, 1)
    for text in overrides or []:
        path, value = parse_override(text)
        nested_update(data, path, value)
    return build_run_config(data).validate()


def generate_amortized(prompt: str, folder: Path | str, out: Path | str | None = None, overwrite: bool = False,
                       overrides: list[str] | None = None):
    """Prompt -> run folder with a forward pass of the generator in `folder`; a `dreamer.api.Result`
    whose metrics hold `forward_seconds` (text encoding, generator and NeRF assembly) and `seconds`."""
    from dreamer.api import EVAL_SUMMARY_KEYS, Result, check_prompt, default_run_dir
    from dreamer.run_config import save_run_config
    from dreamer.trainer.outputs import evaluate_outputs, export_outputs
    from dreamer.trainer.run_folder import RunFolder

    began = time.perf_counter()
    if not prompt or not prompt.strip():
        raise UserError('the prompt is empty: give a description such as "a red chair"')
    loaded = load_generator(folder)
    config = asset_config(loaded, prompt, overrides)
    check_prompt(config)
    run = RunFolder(out if out is not None else default_run_dir(prompt))
    if not overwrite and run.has_checkpoint():
        raise UserError(f"'{run.root}' already holds a run: pass --overwrite to replace it, or choose another --out")
    run.prepare()
    nerf = loaded.model.snapshot(loaded.planes([prompt])[0])
    forward_seconds = time.perf_counter() - began
    save_run_config(config, run.config_path)
    run.save_checkpoint({"step": loaded.step, "representation": nerf.state_dict(),
                         "amortized": str(Path(folder).resolve())})
    paths = export_outputs(config, nerf, run)
    metrics = {"forward_seconds": forward_seconds, "amortized": str(folder), "generator_step": loaded.step}
    if config.trainer.evaluate:
        ev = evaluate_outputs(config, nerf, run, loaded.step)
        if ev is not None:
            metrics["eval"] = {k: ev[k] for k in EVAL_SUMMARY_KEYS}
    metrics["seconds"] = time.perf_counter() - began
    return Result(run.root, paths["glb"], paths, paths.get("video"), None, run.checkpoint_path, metrics)


@torch.no_grad()
def mixed_planes(loaded: LoadedGenerator, start: str, end: str, frames: int) -> torch.Tensor:
    """[frames, 3, C, R, R]: the planes of (1 − a)·v(start) + a·v(end) for a = 0 … 1."""
    a, b = loaded.text_vectors([start, end])
    mix = torch.linspace(0, 1, frames, dtype=a.dtype)[:, None]
    return loaded.model((1 - mix) * a + mix * b)


@torch.no_grad()
def interpolate(folder: Path | str, start: str, end: str, out: Path | str, frames: int = 16,
                resolution: int = 128, fps: int = 8) -> Path:
    """A video of the asset morphing from `start` to `end`: frame k renders the planes of the text vector
    (1 − a)·v(start) + a·v(end), a = k / (frames − 1), from a camera turning once over the video."""
    from dreamer.cameras import turntable
    from dreamer.export.video import write_video

    if frames < 2:
        raise UserError(f"--frames must be at least 2, got {frames}")
    for name, text in (("start", start), ("end", end)):
        if not text or not text.strip():
            raise UserError(f"the {name} prompt is empty")
    loaded = load_generator(folder)
    planes = mixed_planes(loaded, start, end, frames)
    cameras = turntable(frames, resolution, resolution, elevation=20.0, distance=float(np.mean(loaded.run.camera.distance)),
                        fovy=float(np.mean(loaded.run.camera.fovy)))
    white = torch.ones(3)
    images = [loaded.model.render(planes[k], cameras[k:k + 1], background=white).rgb[0] for k in range(frames)]
    video = (torch.stack(images).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    folder_out = Path(out)
    folder_out.parent.mkdir(parents=True, exist_ok=True)
    return write_video(video, folder_out.parent, stem=folder_out.stem, fps=fps)


__all__ = ["LoadedGenerator", "load_generator", "generate_amortized", "interpolate", "mixed_planes", "asset_config"]
