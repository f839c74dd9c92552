"""4D metrics of an animated result against the animated shape library's ground truth (issue 22).

A loop of `eval_frames` frames at times k / eval_frames is compared with `render_motion` / `motion_mesh` (a
run scores its exported loop: eval_frames = `motion.export_frames`; see dreamer.trainer.four_d's frame counts):

- `per_frame_iou`: silhouette IoU (alpha > 0.5) per frame, averaged over `views` turntable cameras
  (elevation 20°, distance 2.8, fovy 42.5, azimuth from the front) posed at that frame's time.
- `per_frame_volume_iou`: volume IoU (dreamer.eval.geometry's solid occupancy) of the predicted mesh
  at frame k — the canonical mesh moved by `deform_points` — against `motion_mesh(mspec, k / eval_frames)`.
- `trajectory_error`: mean over frames of the distance between the centres of the occupied volumes
  (the occupancy-weighted mean of the grid cells, the same definition on both sides: no side needs
  a watertight mesh for it).
- `amplitude_ratio`: amplitude of the predicted motion / the truth's, where amplitude = mean over
  vertices and frames of ‖x_v(k) − mean_k x_v(k)‖ on fixed-topology frame meshes (each side's
  canonical mesh moved per frame). A spin moves the vertices though not the centroid, so this sees
  it; a result that never moves scores 0. None when the truth itself is still (amplitude < 1e-3).
- `per_frame_iou_phase`, `trajectory_error_phase`: the same two metrics at the best circular shift of the
  result's loop against the truth's (`phase_shift_iou`, `phase_shift_trajectory`: frames the result
  runs ahead). A loop may start anywhere: a right bounce that starts mid-air scores as wrong at fixed
  phase and as right here. Each metric takes its own best shift; the fixed-phase ones stay beside them.
- `amplitude_ratio` is None, with `amplitude_note` giving the reason, where no image shows the motion:
  the truth's views do not change over the loop (under `VISIBLE_CHANGE`) although its vertices move.
  That is a spin of a shape symmetric about the vertical axis (sphere, cylinder, cone, torus,
  capsule, mushroom, tree, lamp; the snowman, whose nose is a few pixels): its vertex amplitude is
  real but no render, and so no prior, can tell a spinning result from a still one.
- `flicker`: how much more the front view changes between consecutive frames (rgb over white,
  looping k -> k + 1 mod eval_frames) than the truth's does: max(0, mean_k |P(k+1) − P(k)| −
  mean_k |G(k+1) − G(k)|). The true motion explains its own change, so only the change beyond it
  counts as flicker; a static result (no change) scores 0 here and is caught by the metrics above.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import trimesh

from dreamer.cameras import Camera, clip_cameras, frame_times, turntable
from dreamer.errors import UserError
from dreamer.eval.geometry import GRID_BOUND, solid_occupancy, volume_iou, weld
from dreamer.eval.metrics import EVAL_ELEVATION, silhouette_iou
from dreamer.representations.base import Animated
from dreamer.shapes.animated import motion_mesh, render_motion
from dreamer.shapes.mesh import spec_mesh
from dreamer.shapes.motions import MotionSpec

STILL_AMPLITUDE = 1e-3  # below this true amplitude (world units) the prompt is still: no ratio
# below this change of the truth's views between frames (mean |Δrgb| of the most changing view) the motion
# is invisible: symmetric spins measure 0, a spinning snowman 0.0008 (its nose), a mug 0.006, a cube 0.03
VISIBLE_CHANGE = 2e-3
INVISIBLE = ("no image shows this motion: the truth's views do not change over the loop although its vertices "
             "move (a spin of a shape symmetric about its axis), so its amplitude cannot be judged from renders")
RENDER_CHUNK = 8  # cameras per representation.render call


@dataclass
class MotionEval:
    motion: str  # the motion's name ("bouncing", ...)
    frames: int  # eval_frames: frames of the scored loop, at times k / frames (eval.json's key "frames")
    views: int  # turntable cameras per frame for the silhouette IoU
    resolution: int  # render size in pixels
    per_frame_iou: list[float]  # silhouette IoU per frame (mean over the views)
    mean_frame_iou: float
    per_frame_volume_iou: list[float]  # volume IoU of the frame meshes per frame
    mean_frame_volume_iou: float
    per_frame_trajectory_error: list[float]  # ‖centroid − true centroid‖ per frame
    trajectory_error: float  # mean of per_frame_trajectory_error
    amplitude: float  # mean vertex distance from its own mean position over the loop (prediction)
    amplitude_gt: float  # the same for the ground truth
    amplitude_ratio: float | None  # amplitude / amplitude_gt (None when the truth is still or its motion invisible)
    flicker: float  # frame-to-frame change of the front view beyond the truth's, in [0, 1]
    per_frame_iou_phase: list[float]  # silhouette IoU per frame at the best circular shift of the loop
    mean_frame_iou_phase: float
    phase_shift_iou: int  # frames the result runs ahead of the truth at that shift
    trajectory_error_phase: float  # trajectory error at its own best circular shift
    phase_shift_trajectory: int
    amplitude_note: str | None = None  # why amplitude_ratio is None, when it is

    def to_dict(self) -> dict:
        return asdict(self)


def motion_eval_cameras(views: int, resolution: int, eval_frames: int) -> Camera:
    """`views` turntable cameras × the loop's frame times: views·eval_frames cameras, view by view."""
    if views < 1:
        raise UserError(f"motion evaluation needs at least 1 view, got {views}")
    if resolution < 8:
        raise UserError(f"motion evaluation resolution must be at least 8 px, got {resolution}")
    return clip_cameras(turntable(views, resolution, resolution, elevation=EVAL_ELEVATION), frame_times(eval_frames))


@torch.no_grad()
def evaluate_motion(representation, mspec: MotionSpec, device: torch.device | str = "cpu", eval_frames: int = 8,
                    views: int = 4, resolution: int = 64, mesh: trimesh.Trimesh | None = None,
                    frame_vertices: list | None = None, mesh_resolution: int = 64,
                    volume_resolution: int = 64) -> MotionEval:
    """Score an `Animated` representation's loop against the moving library object (module notes).

    `mesh` is the canonical mesh to animate (the exported one; default `to_mesh(mesh_resolution)`);
    `frame_vertices[k]` ([V, 3], V = the mesh's vertex count) replaces its deformation at frame k
    (e.g. the exported morph targets). Ground-truth meshes are marched at `mesh_resolution` too."""
    if not isinstance(representation, Animated):
        raise UserError(f"motion evaluation needs a 4D (animated) representation, got {type(representation).__name__}")
    if eval_frames < 2:
        raise UserError(f"motion evaluation needs at least 2 frames, got {eval_frames}")
    if min(mesh_resolution, volume_resolution) < 8:
        raise UserError(f"mesh and volume resolutions must be at least 8, got {mesh_resolution} and {volume_resolution}")
    cams = motion_eval_cameras(views, resolution, eval_frames)
    if isinstance(representation, torch.nn.Module):
        representation.eval()
    times = [k / eval_frames for k in range(eval_frames)]
    predicted = _predicted_frames(representation, device, times, mesh, frame_vertices, mesh_resolution)
    alpha, rgb = _render(representation, cams, device)
    truth = render_motion(mspec, cams, background=(1.0, 1.0, 1.0), supersample=2)
    # [F result, F truth]
    ious = shifted_iou(alpha.reshape(views, eval_frames, -1), truth.alpha.reshape(views, eval_frames, -1))
    per_frame_iou = ious.diagonal().tolist()
    flicker = max(0.0, _change(rgb[:eval_frames]) - _change(truth.rgb[:eval_frames]))  # view 0 is the front
    iou_shift, iou_phase = best_shift(ious)
    visible = _views_change(truth.rgb, views, eval_frames) >= VISIBLE_CHANGE

    canonical_gt = spec_mesh(mspec.spec, mesh_resolution)
    expected = [motion_mesh(mspec, t, canonical=canonical_gt) for t in times]
    frame_volume_iou, centroids, centroids_gt = [], [], []
    for pred, gt in zip(predicted, expected):
        occ, occ_gt = solid_occupancy(weld(pred), volume_resolution), solid_occupancy(weld(gt), volume_resolution)
        frame_volume_iou.append(volume_iou(occ, occ_gt))
        centroids.append(_occupancy_centroid(occ))
        centroids_gt.append(_occupancy_centroid(occ_gt))
    gaps = np.linalg.norm(np.stack(centroids)[:, None] - np.stack(centroids_gt)[None], axis=-1)  # [F pred, F truth]
    distances = [float(gaps[k, k]) for k in range(eval_frames)]
    trajectory_shift, closeness = best_shift(torch.from_numpy(-gaps))
    amplitude = _amplitude([np.asarray(m.vertices) for m in predicted])
    amplitude_gt = _amplitude([np.asarray(m.vertices) for m in expected])
    moves = amplitude_gt >= STILL_AMPLITUDE
    ratio = amplitude / amplitude_gt if moves and visible else None
    return MotionEval(mspec.motion, eval_frames, views, resolution, per_frame_iou, float(np.mean(per_frame_iou)),
                      frame_volume_iou, float(np.mean(frame_volume_iou)), distances, float(np.mean(distances)),
                      amplitude, amplitude_gt, ratio, flicker, iou_phase.tolist(), float(iou_phase.mean()), iou_shift,
                      float(-closeness.mean()), trajectory_shift, None if visible or not moves else INVISIBLE)


def motion_is_visible(mspec: MotionSpec, eval_frames: int = 8, views: int = 4, resolution: int = 64) -> bool:
    """Whether any image shows the motion: the truth's views change over the loop (`VISIBLE_CHANGE`); False
    for a spin of a shape symmetric about the vertical axis."""
    truth = render_motion(mspec, motion_eval_cameras(views, resolution, eval_frames), background=(1.0, 1.0, 1.0),
                          supersample=2)
    return _views_change(truth.rgb, views, eval_frames) >= VISIBLE_CHANGE


def _views_change(rgb: torch.Tensor, views: int, frames: int) -> float:
    """The largest frame-to-frame change (`_change`) among the views of clips [views·frames, H, W, 3], view by view."""
    return max(_change(rgb[v * frames:(v + 1) * frames]) for v in range(views))


def shifted_iou(alpha: torch.Tensor, alpha_gt: torch.Tensor) -> torch.Tensor:
    """[F, F] silhouette IoU (`silhouette_iou`) of result frame k against truth frame j, mean over the views;
    alpha and alpha_gt are [V, F, P] (P pixels). Its diagonal is the fixed-phase per-frame IoU."""
    views, frames, pixels = alpha.shape
    pairs = (views, frames, frames, pixels)
    a = alpha[:, :, None].expand(pairs).reshape(-1, pixels, 1, 1)
    b = alpha_gt[:, None].expand(pairs).reshape(-1, pixels, 1, 1)
    return silhouette_iou(a, b).reshape(views, frames, frames).mean(0)


def best_shift(score: torch.Tensor) -> tuple[int, torch.Tensor]:
    """For a score [F, F] of result frame k against truth frame j (higher is better): the circular shift s
    whose pairs (k, k + s mod F) score best on average, and those F per-frame scores (s: frames the result
    runs ahead of the truth: its frame k shows the truth's frame k + s)."""
    frames = score.shape[0]
    k = torch.arange(frames)
    per_shift = torch.stack([score[k, (k + s) % frames] for s in range(frames)])  # [S, F]
    s = int(per_shift.mean(1).argmax())
    return s, per_shift[s]


def _render(representation, cams: Camera, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha [N,H,W,1], rgb [N,H,W,3]) of the representation over white, on the CPU."""
    white = torch.ones(3, device=device)
    alphas, rgbs = [], []
    for start in range(0, len(cams), RENDER_CHUNK):
        out = representation.render(cams[start:start + RENDER_CHUNK].to(device), background=white)
        alphas.append(out.alpha.float().cpu())
        rgbs.append(out.rgb.float().cpu())
    return torch.cat(alphas), torch.cat(rgbs)


def _change(clip: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames [F,H,W,3] of a looping clip (k -> k+1 mod F)."""
    return float((clip.roll(-1, dims=0) - clip).abs().mean())


def _predicted_frames(representation, device, times: list[float], mesh: trimesh.Trimesh | None,
                      frame_vertices: list | None, mesh_resolution: int) -> list[trimesh.Trimesh]:
    """The predicted canonical mesh moved to each frame (same faces, per-frame vertices)."""
    canonical = mesh if mesh is not None else representation.to_mesh(mesh_resolution)
    vertices = np.asarray(canonical.vertices, dtype=np.float32)
    faces = np.asarray(canonical.faces)
    if frame_vertices is not None:
        if len(frame_vertices) != len(times):
            raise UserError(f"frame_vertices has {len(frame_vertices)} frames, the evaluation has {len(times)}")
        moved = [np.asarray(v, dtype=np.float64) for v in frame_vertices]
        if any(v.shape != vertices.shape for v in moved):
            raise UserError(f"each frame_vertices entry must have the mesh's shape {tuple(vertices.shape)}")
    else:
        points = torch.from_numpy(vertices).to(device)
        moved = [representation.deform_points(points, t).float().cpu().numpy().astype(np.float64) for t in times]
    return [trimesh.Trimesh(v, faces, process=False) for v in moved]


def _occupancy_centroid(occ: np.ndarray) -> np.ndarray:
    """[3] occupancy-weighted mean of the cell centres (the grid's centre when empty)."""
    resolution = occ.shape[0]
    centres = (np.arange(resolution) + 0.5) * (2.0 * GRID_BOUND / resolution) - GRID_BOUND
    total = occ.sum()
    if total == 0:
        return np.zeros(3)
    return np.array([(occ.sum(axis=tuple(a for a in range(3) if a != axis)) * centres).sum() / total
                     for axis in range(3)])


def _amplitude(frames: list[np.ndarray]) -> float:
    """Mean over vertices and frames of ‖x_v(k) − mean_k x_v(k)‖ for per-frame vertices [V, 3]."""
    stacked = np.stack(frames)  # [F, V, 3]
    if stacked.shape[1] == 0:
        return 0.0
    return float(np.linalg.norm(stacked - stacked.mean(0, keepdims=True), axis=-1).mean())
