"""What a finished (or stopped) run folder yields: meshes, the turntable, eval.json.

These work from the run folder alone (config.yaml + checkpoint), so `dreamer export` and
`dreamer eval` need neither the prior nor the optimiser.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from dreamer.devices import resolve_device
from dreamer.errors import UserError
from dreamer.io import atomic_write_text
from dreamer.run_config import RunConfig, build_run_config
from dreamer.trainer.build import build_representation
from dreamer.trainer.run_folder import RunFolder


def load_run(run_dir: Path | str, device: str | None = None, stage: str = "final"):
    """(RunConfig, representation with the checkpoint's weights, step) of a run folder.

    `stage="final"` takes the refine stage (`<run>/refine`) when it has a checkpoint, else the
    first stage; `stage="first"` always takes the first."""
    from dreamer import registry

    run = RunFolder(run_dir)
    if not run.root.is_dir():
        raise UserError(f"run folder '{run.root}' does not exist")
    if not run.config_path.exists():
        raise UserError(f"'{run.root}' is not a run folder (no config.yaml)")
    refine = RunFolder(run.refine_dir)
    if stage == "final" and refine.config_path.exists() and refine.has_checkpoint():
        run = refine
    from dreamer.config import load_yaml

    config = build_run_config(load_yaml(run.config_path))
    if device is not None:
        config.device = device
    # the checkpoint holds every parameter: the representation may skip a costly initialisation
    cls = registry.component_class("representation", config.representation.name)
    config.representation.config = cls.restore_config(config.representation.config)
    dev = resolve_device(config.device)
    representation = build_representation(config, dev)
    state = run.load_checkpoint(map_location=dev)
    representation.load_state_dict(state["representation"])
    representation.eval()
    return config, representation, int(state["step"])


@torch.no_grad()
def render_turntable(representation, frames: int, resolution: int, device: torch.device, chunk: int = 4) -> np.ndarray:
    from dreamer.cameras import turntable
    from dreamer.export.images import to_uint8

    cams = turntable(frames, resolution, resolution, elevation=20.0)
    white = torch.ones(3, device=device)
    out = []
    for i in range(0, frames, chunk):
        r = representation.render(cams[i:i + chunk].to(device), background=white)
        out.append(to_uint8(r.rgb.float()))
    return np.concatenate(out)


def export_outputs(config: RunConfig, representation, run: RunFolder, formats: list[str] | None = None,
                   video: bool | None = None) -> dict[str, Path]:
    """Write model.glb (+ obj/mtl/png, ply), splats.ply for Gaussians, and the turntable; returns name -> path.

    The mesh is the representation's `to_mesh` (automatic iso-level); colours come from its
    `colour_at` when it is a `ColourField` (baked into a texture unless `export.texture` is off), else from
    the mesh's vertex colours. `config.export` gives the caps (faces, texture size). With several
    VSD particles the first is written to the run folder and particle k to `particle_k/` (its
    paths are returned as "particle_k/glb" and so on)."""
    from dreamer.representations.particles import particle_members

    if representation.is_dynamic:  # 4D: animated GLB, splat sequence, motion and turntable videos
        from dreamer.trainer.four_d_outputs import export_motion_outputs

        return export_motion_outputs(config, representation, run.root, formats, video)
    paths: dict[str, Path] = {}
    for index, member in enumerate(particle_members(representation)):
        folder, prefix = (run.root, "") if index == 0 else (run.root / f"particle_{index}", f"particle_{index}/")
        written = _export_one(config, member, folder, formats, video)
        paths.update({prefix + name: path for name, path in written.items()})
    return paths


def _export_one(config: RunConfig, representation, folder: Path, formats: list[str] | None,
                video: bool | None) -> dict[str, Path]:
    from dreamer.export.colour import torch_colour_fn
    from dreamer.export.pipeline import export_mesh
    from dreamer.export.video import write_video
    from dreamer.representations.base import ColourField, SplatSource

    folder.mkdir(parents=True, exist_ok=True)
    options = config.export.mesh_options(formats)
    device = next(representation.parameters()).device
    mesh = representation.to_mesh(config.export.mesh_resolution, fill_unseen=config.export.fill_unseen)
    colour = torch_colour_fn(representation.colour_at, device) if isinstance(representation, ColourField) else None
    paths = dict(export_mesh(mesh, colour, folder, options).paths)
    if isinstance(representation, SplatSource):  # Gaussians: also the splats themselves, for splat viewers
        from dreamer.render.splat.ply import write_splats_ply

        paths["splats"] = write_splats_ply(representation.splat_arrays(), folder / "splats.ply")
    if config.export.video if video is None else video:
        frames = render_turntable(representation, config.export.video_frames, config.export.video_resolution, device)
        paths["video"] = write_video(frames, folder, fps=config.export.fps)
    return paths


def evaluate_outputs(config: RunConfig, representation, run: RunFolder, step: int) -> dict | None:
    """eval.json for prompts of the shape library (None for other prompts): the 2D metrics of the
    representation's renders and the 3D metrics of the exported mesh (`model.glb`, what the user
    receives; the representation's `to_mesh` when it has not been exported)."""
    from dreamer.eval.metrics import evaluate_representation
    from dreamer.shapes import parse_prompt

    if representation.is_dynamic:
        return _evaluate_motion_outputs(config, representation, run, step)

    try:
        parse_prompt(config.prompt)
    except UserError:  # not a library prompt: there is no ground truth
        return None
    from dreamer.representations.particles import particle_members

    from dreamer.shapes import spec_mesh

    device = next(representation.parameters()).device
    members = particle_members(representation)
    truth = spec_mesh(parse_prompt(config.prompt))
    results = []
    for index, member in enumerate(members):
        result = evaluate_representation(member, config.prompt, device).to_dict()
        folder = run.root if index == 0 else run.root / f"particle_{index}"
        result.update(_mesh_metrics(config, member, folder / "model.glb", truth))
        results.append(result)
    result = dict(results[0])  # the first particle is the run's asset (model.glb)
    if len(members) > 1:
        result["particles"] = results
    result["step"] = step
    atomic_write_text(run.asset("eval.json"), json.dumps(result, indent=2))
    return result


def _mesh_metrics(config: RunConfig, representation, glb: Path, truth) -> dict:
    """The 3D metrics (dreamer.eval.geometry) of the exported mesh against the ground-truth mesh,
    `fill_unseen`: whether space no camera sees was filled before meshing (it raises volume IoU), and
    `surface_samples`: the points per mesh behind the distance metrics (`export.eval_surface_samples`)."""
    from dreamer.eval.geometry import geometry_metrics, load_mesh

    fill = config.export.fill_unseen
    mesh = load_mesh(glb) if glb.exists() else representation.to_mesh(config.export.mesh_resolution, fill_unseen=fill)
    samples = config.export.eval_surface_samples
    return {**geometry_metrics(mesh, truth, samples=samples).to_dict(), "fill_unseen": fill and representation.fills_unseen,
            "surface_samples": samples}


def _evaluate_motion_outputs(config: RunConfig, representation, run: RunFolder, step: int) -> dict | None:
    """eval.json of a 4D run of an animated-library prompt (None for other prompts): the motion metrics
    (dreamer.eval.four_d_metrics) of the exported loop (`model.glb`'s canonical mesh moved by the deformation)."""
    from dreamer.eval.geometry import load_mesh
    from dreamer.eval.four_d_metrics import evaluate_motion
    from dreamer.shapes.prompt import parse_motion_prompt

    try:
        mspec = parse_motion_prompt(config.prompt)
    except UserError:
        return None
    device = next(representation.parameters()).device
    glb = run.asset("model.glb")
    mesh = load_mesh(glb) if glb.exists() else None
    result = evaluate_motion(representation, mspec, device, eval_frames=config.motion.export_frames,
                             mesh=mesh).to_dict()
    result["fill_unseen"] = config.export.fill_unseen and representation.fills_unseen
    result["step"] = step
    atomic_write_text(run.asset("eval.json"), json.dumps(result, indent=2))
    return result
