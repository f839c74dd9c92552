"""Ground truth of the animated library: renders at each camera's time, meshes per frame.

Cameras carry their own times (`Camera.time`); a batch may mix times (a clip is B·F cameras), and
each distinct time is traced once with the object posed at that time.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import trimesh

from dreamer.cameras import Camera
from dreamer.shapes.mesh import spec_mesh
from dreamer.shapes.motions import MotionSpec
from dreamer.shapes.raytrace import ShapeRender, render_surface


@torch.no_grad()
def render_motion(mspec: MotionSpec, camera: Camera, background: Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
                  supersample: int = 1) -> ShapeRender:
    """Ground-truth render of the moving object from each camera at that camera's time (0 when none)."""
    times = camera.times.cpu()
    parts: dict[int, ShapeRender] = {}
    order = []
    for value in torch.unique(times):
        index = torch.nonzero(times == value).squeeze(-1)
        time = float(value)

        def colour(p, time=time):
            return mspec.sdf_and_colour(p, time)[1]

        bg = background
        if isinstance(background, torch.Tensor) and background.ndim == 4 and background.shape[0] == len(camera):
            bg = background[index.to(background.device)]
        parts[len(order)] = render_surface(mspec.sdf(time), colour, camera[index.to(camera.device)], bg, supersample)
        order.append(index)
    return _gather(parts, order, len(camera))


def _gather(parts: dict[int, ShapeRender], order: list[torch.Tensor], n: int) -> ShapeRender:
    """The per-time renders put back in the cameras' order."""
    first = parts[0]

    def merge(get):
        ref = get(first)
        out = ref.new_empty((n, *ref.shape[1:]))
        for k, index in enumerate(order):
            out[index.to(out.device)] = get(parts[k])
        return out

    extras = {key: merge(lambda r, key=key: r.extras[key]) for key in first.extras}
    return ShapeRender(rgb=merge(lambda r: r.rgb), alpha=merge(lambda r: r.alpha), depth=merge(lambda r: r.depth),
                       extras=extras)


def motion_mesh(mspec: MotionSpec, time: float, resolution: int = 128,
                canonical: trimesh.Trimesh | None = None) -> trimesh.Trimesh:
    """The ground-truth mesh at `time`: the static mesh (or `canonical`) moved by the motion's pose."""
    mesh = (canonical if canonical is not None else spec_mesh(mspec.spec, resolution)).copy()
    mesh.apply_transform(mspec.pose(time).matrix()[0].double().numpy())
    return mesh


def motion_meshes(mspec: MotionSpec, frames: int, resolution: int = 128) -> list[trimesh.Trimesh]:
    """Ground-truth meshes at the loop's `frames` times k / frames (one marching cubes, moved per frame)."""
    canonical = spec_mesh(mspec.spec, resolution)
    return [motion_mesh(mspec, k / frames, canonical=canonical) for k in range(frames)]


def motion_centroids(mspec: MotionSpec, times: Sequence[float] | torch.Tensor, resolution: int = 64) -> np.ndarray:
    """[T, 3] centres of volume of the moving object at `times` (the canonical centroid, moved)."""
    mesh = spec_mesh(mspec.spec, resolution)
    centre = torch.as_tensor(np.asarray(mesh.center_mass), dtype=torch.float32)[None]
    pose = mspec.pose(torch.as_tensor(times, dtype=torch.float32))
    return np.stack([pose.to_world(centre, k)[0].numpy() for k in range(len(pose.scale))])
