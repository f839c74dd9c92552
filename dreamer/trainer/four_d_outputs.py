"""What a finished 4D run yields: the animated model.glb, the splat sequence, the motion videos.

The canonical surface (`to_mesh`, decimated to `export.max_faces`) is moved to T frame times
k / T (T = `motion.export_frames`, here `export_frames`) by the representation's `deform_points`,
giving the morph targets of model.glb and the PLYs of frames/; the glTF plays them at `motion.fps`,
so one loop lasts T / motion.fps seconds. The videos keep that speed: motion.mp4 is one loop at
`export.fps` (`motion_video_frames` = round(T / motion.fps · export.fps), at least 2), and
turntable.mp4 (`export.video_frames` at `export.fps`) runs the whole number of loops that best fills
its turn. (All of a 4D run's frame counts: dreamer.trainer.four_d.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import trimesh

from dreamer.errors import UserError


def motion_settings(config) -> tuple[int, float]:
    """(export_frames T, playback fps of the loop) from the run's `motion` section."""
    motion = config.motion.validate()
    return int(motion.export_frames), float(motion.fps)


def canonical_mesh(config, representation) -> trimesh.Trimesh:
    """The canonical surface, decimated to the face cap, coloured by `colour_at` when the
    representation has a colour field (else by its own vertex colours)."""
    from dreamer.export.colour import has_vertex_colours, to_rgba8, torch_colour_fn, vertex_colour_fn
    from dreamer.export.decimate import decimate
    from dreamer.representations.base import ColourField

    mesh = representation.to_mesh(config.export.mesh_resolution, fill_unseen=config.export.fill_unseen)
    if len(mesh.faces) == 0:
        raise UserError("the mesh is empty (nothing above the iso-level): train longer or check the run")
    vertices, faces = decimate(mesh.vertices, mesh.faces, config.export.max_faces)
    simple = trimesh.Trimesh(vertices, faces, process=False)
    device = next(representation.parameters()).device
    if isinstance(representation, ColourField):
        simple.visual.vertex_colors = to_rgba8(torch_colour_fn(representation.colour_at, device)(vertices))
    elif has_vertex_colours(mesh):
        simple.visual.vertex_colors = to_rgba8(vertex_colour_fn(mesh)(vertices))
    return simple


@torch.no_grad()
def frame_vertices(representation, vertices: np.ndarray, export_frames: int) -> np.ndarray:
    """[T, V, 3]: the canonical vertices moved to each frame time k / T (T = `export_frames`)."""
    device = next(representation.parameters()).device
    points = torch.as_tensor(np.asarray(vertices, dtype=np.float32), device=device)
    return np.stack([representation.deform_points(points, k / export_frames).float().cpu().numpy()
                     for k in range(export_frames)])


def export_motion_outputs(config, representation, folder: Path | str, formats: list[str] | None = None,
                          video: bool | None = None, rigid: np.ndarray | None = None) -> dict[str, Path]:
    """The whole 4D export into `folder`; returns name -> path.

    "glb" (model.glb, morph targets), "glb_trs" (model_trs.glb, only when `rigid` [T, 4, 4]
    canonical->world matrices are given), "obj"/"ply" (the canonical surface, when asked in
    `formats` or `export.formats`), "splats", "deformation", "frames" (a folder of per-frame
    PLYs), "motion_video" and "video" (unless `video` is False, or None and `export.video` off)."""
    from dreamer.export.animated_gltf import write_animated_glb, write_trs_glb
    from dreamer.export.mesh import write_mesh
    from dreamer.export.four_d_video import loops_per_turn, write_motion_videos
    from dreamer.export.splat_sequence import write_splat_sequence
    from dreamer.representations.base import Animated, SplatSource

    if not (representation.is_dynamic and isinstance(representation, Animated)):
        raise UserError(f"{type(representation).__name__} has no motion: use the static export")
    export_frames, loop_fps = motion_settings(config)
    if rigid is not None and np.shape(rigid) != (export_frames, 4, 4):
        raise UserError(f"rigid motion needs one 4x4 matrix per frame ({export_frames}), "
                        f"got shape {list(np.shape(rigid))}")
    options = config.export.mesh_options(formats)  # checks the formats and caps before any work
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    device = next(representation.parameters()).device

    mesh = canonical_mesh(config, representation)
    paths = {"glb": write_animated_glb(mesh, frame_vertices(representation, mesh.vertices, export_frames),
                                       folder / "model.glb", loop_fps)}
    if rigid is not None:
        paths["glb_trs"] = write_trs_glb(mesh, np.asarray(rigid), folder / "model_trs.glb", loop_fps)
    for fmt in options.wanted():
        if fmt != "glb":
            paths[fmt] = write_mesh(mesh, folder / f"model.{fmt}")

    if isinstance(representation, SplatSource):
        sequence = [representation.splat_arrays_at(k / export_frames) for k in range(export_frames)]
        metadata = {"fps": loop_fps, "representation": type(representation).__name__}
        paths.update(write_splat_sequence(representation.splat_arrays(), sequence, representation.deformation_state(),
                                          folder, metadata=metadata))

    if config.export.video if video is None else video:
        loop_seconds = export_frames / loop_fps
        motion_video_frames = max(2, round(loop_seconds * config.export.fps))  # one loop at export.fps
        turntable_frames = config.export.video_frames  # one camera turn at export.fps
        loops = loops_per_turn(turntable_frames / config.export.fps, loop_seconds)
        paths.update(write_motion_videos(representation, folder, device, motion_video_frames, turntable_frames,
                                         config.export.video_resolution, config.export.fps, loops))
    return paths
