"""Ground-truth renders of an `ObjectSpec` by sphere tracing its SDF.

Shading is deliberately mild so the named colour stays recognisable: the albedo times
`AMBIENT + DIFFUSE * (0.5 + 0.5 * n.l)` ("half-Lambert" wrap lighting) with one light fixed in
the world frame, above-front-right of the object. A surface therefore shows between 50 % (facing
away from the light) and 100 % (facing it) of its albedo; a face looking straight at +Z gets
about 90 %. Because the light is fixed in the world, the same object looks consistently lit from
every camera.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from dreamer.cameras import Camera, camera_rays
from dreamer.shapes.spec import ObjectSpec, sdf_and_colour

LIGHT_DIRECTION = (0.5, 1.0, 0.8)  # towards the light (normalised in use): +X right, +Y up, +Z front
AMBIENT = 0.5
DIFFUSE = 0.5
TRACE_RADIUS = 0.8  # every library object lies inside this sphere (tested), so rays start on it
MAX_STEPS = 64
HIT_PIXELS = 0.1  # a ray hits when the SDF is below this fraction of the pixel footprint
NORMAL_STEP = 1e-3  # finite-difference step for normals



@dataclass
class ShapeRender:
    """A ground-truth render. The fields mirror a representation's `RenderOutput` so that metrics
    compare the two directly; shapes sits below the representations layer, hence its own type."""

    rgb: torch.Tensor  # [B, H, W, 3] in [0, 1], composited over the background
    alpha: torch.Tensor  # [B, H, W, 1] hit fraction
    depth: torch.Tensor  # [B, H, W, 1] ray distance to the surface, 0 where empty
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # "normal", "albedo" [B, H, W, 3]


def sphere_trace(
    sdf: Callable[[torch.Tensor], torch.Tensor],
    origins: torch.Tensor,
    dirs: torch.Tensor,
    pixel_angle: torch.Tensor,
    radius: float = TRACE_RADIUS,
    steps: int = MAX_STEPS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray distance t [R] and hit mask [R] for rays [R, 3] (unit `dirs`) against `sdf`.

    Rays start where they enter the bounding sphere of `radius`; only unfinished rays are
    evaluated each step. `pixel_angle` [R] (radians per pixel) sets the hit tolerance so that it
    stays a fixed fraction of a pixel at any distance.
    """
    b = (origins * dirs).sum(-1)
    disc = b * b - ((origins * origins).sum(-1) - radius * radius)
    root = disc.clamp_min(0).sqrt()
    t = (-b - root).clamp_min(0)
    t_far = -b + root
    hit = torch.zeros_like(t, dtype=torch.bool)
    active = torch.nonzero((disc > 0) & (t_far > 0)).squeeze(-1)
    dist = torch.empty(0, dtype=t.dtype, device=t.device)
    for _ in range(steps):
        if active.numel() == 0:
            break
        ta = t[active]
        dist = sdf(origins[active] + ta[:, None] * dirs[active])
        tolerance = (HIT_PIXELS * pixel_angle[active] * ta).clamp_min(1e-4)
        done = dist < tolerance
        hit[active[done]] = True
        ta = ta + dist
        t[active] = ta
        keep = ~done & (ta < t_far[active])
        active, dist = active[keep], dist[keep]
    # Rays still marching after the last step graze a silhouette; keep the nearly converged ones.
    if active.numel() > 0:
        tolerance = (4 * HIT_PIXELS * pixel_angle[active] * t[active]).clamp_min(4e-4)
        hit[active[dist < tolerance]] = True
    return t, hit


def _normals(sdf: Callable[[torch.Tensor], torch.Tensor], points: torch.Tensor) -> torch.Tensor:
    """Unit SDF gradients [M, 3] by the four-point tetrahedral difference."""
    k = torch.tensor([[1, -1, -1], [-1, -1, 1], [-1, 1, -1], [1, 1, 1]], dtype=points.dtype, device=points.device)
    samples = points[None] + NORMAL_STEP * k[:, None]  # [4, M, 3]
    d = sdf(samples.reshape(-1, 3)).reshape(4, -1, 1)
    return torch.nn.functional.normalize((k[:, None] * d).sum(0), dim=-1)


def shade(albedo: torch.Tensor, normals: torch.Tensor) -> torch.Tensor:
    """Albedo [M, 3] lit by the fixed world light (see the module docstring)."""
    light = torch.nn.functional.normalize(torch.tensor(LIGHT_DIRECTION, dtype=normals.dtype, device=normals.device), dim=0)
    wrap = 0.5 + 0.5 * (normals @ light)
    return albedo * (AMBIENT + DIFFUSE * wrap)[:, None]


def _background(background: Sequence[float] | torch.Tensor, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    bg = torch.as_tensor(background, dtype=like.dtype, device=like.device)
    return bg.expand(shape)


def _render_pixels(sdf: Callable[[torch.Tensor], torch.Tensor],
                   colour: Callable[[torch.Tensor], torch.Tensor], camera: Camera) -> tuple[torch.Tensor, ...]:
    """Per-pixel (hit [B,H,W,1], shaded [B,H,W,3], depth [B,H,W,1], normal, albedo) of the surface of
    `sdf` (world points [N,3] -> [N]) with albedo `colour` (world points -> [N, 3])."""
    origins, dirs = camera_rays(camera)
    shape = origins.shape[:-1]
    origins, dirs = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    pixel_angle = (1.0 / camera.focal.to(origins.dtype)).repeat_interleave(camera.height * camera.width)
    t, hit = sphere_trace(sdf, origins, dirs, pixel_angle)

    idx = torch.nonzero(hit).squeeze(-1)
    points = origins[idx] + t[idx, None] * dirs[idx]
    normal_hit = _normals(sdf, points)
    albedo_hit = colour(points)

    n = origins.shape[0]
    zeros3 = origins.new_zeros(n, 3)
    normal = zeros3.index_copy(0, idx, normal_hit)
    albedo = zeros3.index_copy(0, idx, albedo_hit)
    shaded = zeros3.index_copy(0, idx, shade(albedo_hit, normal_hit))
    depth = torch.where(hit, t, torch.zeros_like(t))
    unflat = lambda x, c: x.reshape(*shape, c)  # noqa: E731
    return unflat(hit.to(origins.dtype), 1), unflat(shaded, 3), unflat(depth, 1), unflat(normal, 3), unflat(albedo, 3)


def _pool(x: torch.Tensor, s: int) -> torch.Tensor:
    """Mean over s x s pixel blocks of [B, H*s, W*s, C]."""
    B, H, W, C = x.shape
    return x.reshape(B, H // s, s, W // s, s, C).mean(dim=(2, 4))


@torch.no_grad()
def render_spec(
    spec: ObjectSpec,
    camera: Camera,
    background: Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
    supersample: int = 1,
) -> ShapeRender:
    """Ground-truth render of `spec` from each camera of the batch.

    rgb [B,H,W,3] in [0, 1] composited over `background` (RGB or anything broadcastable to
    [B,H,W,3]); alpha [B,H,W,1] is the hit fraction (0/1, or the share of the
    `supersample` x `supersample` sub-pixels that hit); depth [B,H,W,1] is the ray distance to
    the surface averaged over sub-pixels with 0 for misses (the "expected depth" of volume
    rendering: depth / alpha is the mean surface distance). extras: "normal" (world-space
    normals) and "albedo" (unshaded colour), both averaged the same way and zero where empty.
    """
    return render_surface(spec.object.sdf, lambda p: sdf_and_colour(spec, p)[1], camera, background, supersample)


def render_surface(sdf: Callable[[torch.Tensor], torch.Tensor], colour: Callable[[torch.Tensor], torch.Tensor],
                   camera: Camera, background: Sequence[float] | torch.Tensor = (1.0, 1.0, 1.0),
                   supersample: int = 1) -> ShapeRender:
    """`render_spec` for any SDF and albedo function of world points (the animated library's posed objects)."""
    s = int(supersample)
    if s < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    fine = camera.with_resolution(camera.width * s, camera.height * s) if s > 1 else camera
    hit, shaded, depth, normal, albedo = _render_pixels(sdf, colour, fine)
    rgb = shaded + (1 - hit) * _background(background, shaded.shape, shaded)
    if s > 1:
        hit, rgb, depth, normal, albedo = (_pool(x, s) for x in (hit, rgb, depth, normal, albedo))
    return ShapeRender(rgb=rgb.clamp(0, 1), alpha=hit, depth=depth, extras={"normal": normal, "albedo": albedo})
