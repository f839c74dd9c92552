"""Batched pinhole cameras, orbit sampling and turntables.

Conventions (DESIGN.md): right-handed world, +Y up, the object's front faces +Z; azimuth 0 puts
the camera on +Z looking at the origin, azimuth grows towards +X; elevation is positive above
the XZ plane. Angles are in degrees at the API surface. `c2w` follows the OpenGL camera frame:
the camera looks along its local −Z, local +Y is up and local +X is right.

Time (4D): a camera may carry a time in [0, 1), the phase of a looping motion (frame k of a T-frame
loop is at k / T). `time=None` means "no time" (read as 0 by `times`); static representations
ignore it, so every 3D path is unchanged. A clip of F frames seen by B cameras is a batch of B·F
cameras ordered clip by clip (b0f0, b0f1, …, b1f0, …): see `clip_cameras`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

VIEW_LABELS = ("front", "side", "back", "overhead")


@dataclass
class Camera:
    """A batch of B pinhole cameras sharing one image size."""

    c2w: torch.Tensor  # [B, 4, 4] camera-to-world
    fovy: torch.Tensor  # [B] vertical field of view, degrees
    width: int
    height: int
    time: torch.Tensor | None = None  # [B] phase of the motion in [0, 1); None: no time (static)

    def __post_init__(self) -> None:
        assert self.c2w.ndim == 3 and self.c2w.shape[1:] == (4, 4), self.c2w.shape
        assert self.fovy.shape == (self.c2w.shape[0],), (self.fovy.shape, self.c2w.shape)
        assert self.time is None or self.time.shape == (self.c2w.shape[0],), (self.time.shape, self.c2w.shape)

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def __getitem__(self, index) -> "Camera":
        if isinstance(index, int):
            index = slice(index, index + 1)
        time = None if self.time is None else self.time[index]
        return Camera(self.c2w[index], self.fovy[index], self.width, self.height, time)

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def to(self, device) -> "Camera":
        time = None if self.time is None else self.time.to(device)
        return Camera(self.c2w.to(device), self.fovy.to(device), self.width, self.height, time)

    def with_resolution(self, width: int, height: int | None = None) -> "Camera":
        return Camera(self.c2w, self.fovy, width, height if height is not None else width, self.time)

    def with_time(self, time) -> "Camera":
        """The same cameras at `time` (a float or [B] values, wrapped into [0, 1)); None drops the time."""
        if time is None:
            return Camera(self.c2w, self.fovy, self.width, self.height)
        t = torch.as_tensor(time, dtype=torch.float32, device=self.device).reshape(-1).expand(len(self)).clone()
        return Camera(self.c2w, self.fovy, self.width, self.height, torch.remainder(t, 1.0))

    @property
    def times(self) -> torch.Tensor:  # [B] the time of each camera, 0 where it has none
        if self.time is None:
            return torch.zeros(len(self), dtype=torch.float32, device=self.device)
        return self.time

    @staticmethod
    def cat(cameras: "list[Camera]") -> "Camera":
        """One batch from several (same image size); times are kept when any camera has one."""
        first = cameras[0]
        time = None if all(c.time is None for c in cameras) else torch.cat([c.times for c in cameras])
        return Camera(torch.cat([c.c2w for c in cameras]), torch.cat([c.fovy for c in cameras]),
                      first.width, first.height, time)

    @property
    def position(self) -> torch.Tensor:  # [B, 3]
        return self.c2w[:, :3, 3]

    @property
    def distance(self) -> torch.Tensor:  # [B]
        return self.position.norm(dim=-1)

    @property
    def elevation(self) -> torch.Tensor:  # [B] degrees
        p = self.position
        return torch.rad2deg(torch.asin((p[:, 1] / p.norm(dim=-1).clamp_min(1e-9)).clamp(-1, 1)))

    @property
    def azimuth(self) -> torch.Tensor:  # [B] degrees in [0, 360)
        p = self.position
        return torch.rad2deg(torch.atan2(p[:, 0], p[:, 2])) % 360.0

    @property
    def view_label(self) -> list[str]:
        """front / side / back / overhead, as used by view-dependent prompts."""
        return [
            view_label_for(float(a), float(e)) for a, e in zip(self.azimuth, self.elevation)
        ]

    @property
    def focal(self) -> torch.Tensor:  # [B] focal length in pixels (square pixels)
        return 0.5 * self.height / torch.tan(torch.deg2rad(self.fovy) / 2)

    @property
    def intrinsics(self) -> torch.Tensor:  # [B, 3, 3]
        f = self.focal
        K = torch.zeros(len(self), 3, 3, dtype=self.c2w.dtype, device=self.device)
        K[:, 0, 0] = f
        K[:, 1, 1] = f
        K[:, 0, 2] = self.width / 2
        K[:, 1, 2] = self.height / 2
        K[:, 2, 2] = 1
        return K

    @property
    def w2c(self) -> torch.Tensor:  # [B, 4, 4]
        return torch.linalg.inv(self.c2w)

    def flat_pose(self) -> torch.Tensor:  # [B, 16] for camera embeddings
        return self.c2w.reshape(len(self), 16)

    def spherical(self) -> torch.Tensor:  # [B, 3]: azimuth°, elevation°, distance
        return torch.stack([self.azimuth, self.elevation, self.distance], dim=-1)


def camera_rays(camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins and unit directions, each [B, H, W, 3], in world space, through pixel centres.

    Row 0 is the top of the image; column 0 is the left. (Here, at the bottom layer, so that the
    renderers and the shape library's ray tracer share one definition.)
    """
    B, H, W = len(camera), camera.height, camera.width
    device, dtype = camera.device, camera.c2w.dtype
    j, i = torch.meshgrid(
        torch.arange(H, device=device, dtype=dtype) + 0.5,
        torch.arange(W, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    f = camera.focal.to(dtype).view(B, 1, 1)
    x = (i - W / 2) / f  # [B, H, W]
    y = -(j - H / 2) / f
    dirs_cam = torch.stack([x, y, -torch.ones_like(x)], dim=-1)  # [B, H, W, 3]
    rot = camera.c2w[:, :3, :3]  # [B, 3, 3]
    dirs = torch.einsum("bij,bhwj->bhwi", rot, dirs_cam)
    dirs = torch.nn.functional.normalize(dirs, dim=-1)
    origins = camera.c2w[:, None, None, :3, 3].expand_as(dirs)
    return origins, dirs


def view_label_for(azimuth_deg: float, elevation_deg: float, overhead_threshold: float = 60.0) -> str:
    """DreamFusion-style view buckets: front within ±45° of +Z, back within ±45° of −Z."""
    if elevation_deg > overhead_threshold:
        return "overhead"
    a = azimuth_deg % 360.0
    if a < 45 or a >= 315:
        return "front"
    if 135 <= a < 225:
        return "back"
    return "side"


def look_at(position: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """c2w [B,4,4] for cameras at `position` [B,3] looking at `target` (origin), +Y up."""
    if target is None:
        target = torch.zeros_like(position)
    forward = torch.nn.functional.normalize(target - position, dim=-1)  # camera −Z
    world_up = torch.tensor([0.0, 1.0, 0.0], dtype=position.dtype, device=position.device)
    right = torch.cross(forward, world_up.expand_as(forward), dim=-1)
    # Straight above/below: up is degenerate, fall back to +Z as the reference.
    degenerate = right.norm(dim=-1) < 1e-6
    if degenerate.any():
        alt = torch.tensor([0.0, 0.0, -1.0], dtype=position.dtype, device=position.device)
        right[degenerate] = torch.cross(forward[degenerate], alt.expand_as(forward[degenerate]), dim=-1)
    right = torch.nn.functional.normalize(right, dim=-1)
    up = torch.cross(right, forward, dim=-1)
    c2w = torch.eye(4, dtype=position.dtype, device=position.device).repeat(len(position), 1, 1)
    c2w[:, :3, 0] = right
    c2w[:, :3, 1] = up
    c2w[:, :3, 2] = -forward
    c2w[:, :3, 3] = position
    return c2w


def spherical_to_position(azimuth_deg, elevation_deg, distance) -> torch.Tensor:
    """[B,3] position for azimuth/elevation (degrees) and distance tensors."""
    az, el = torch.deg2rad(azimuth_deg), torch.deg2rad(elevation_deg)
    return torch.stack(
        [distance * torch.cos(el) * torch.sin(az), distance * torch.sin(el), distance * torch.cos(el) * torch.cos(az)],
        dim=-1,
    )


def from_spherical(azimuth_deg, elevation_deg, distance, fovy_deg, width: int, height: int | None = None) -> Camera:
    """Cameras looking at the origin from the given spherical coordinates (tensors or floats)."""
    az = torch.as_tensor(azimuth_deg, dtype=torch.float32).reshape(-1)
    el = torch.as_tensor(elevation_deg, dtype=torch.float32).reshape(-1)
    d = torch.as_tensor(distance, dtype=torch.float32).reshape(-1)
    fov = torch.as_tensor(fovy_deg, dtype=torch.float32).reshape(-1)
    n = max(len(az), len(el), len(d), len(fov))
    az, el, d, fov = (x.expand(n).clone() for x in (az, el, d, fov))
    c2w = look_at(spherical_to_position(az, el, d))
    return Camera(c2w, fov, width, height if height is not None else width)


@dataclass
class OrbitConfig:
    """Ranges the training cameras are drawn from (uniform in each)."""

    distance: tuple[float, float] = (2.6, 3.0)  # camera distance from the origin
    fovy: tuple[float, float] = (40.0, 45.0)  # vertical field of view, degrees
    elevation: tuple[float, float] = (-10.0, 45.0)  # degrees above the horizon
    azimuth: tuple[float, float] = (0.0, 360.0)  # degrees, 0 = front (+Z)


def _uniform(n: int, bounds, generator: torch.Generator | None) -> torch.Tensor:
    lo, hi = float(bounds[0]), float(bounds[1])
    return lo + (hi - lo) * torch.rand(n, generator=generator)


def sample_orbit(n: int, config: OrbitConfig, width: int, height: int | None = None,
                 generator: torch.Generator | None = None) -> Camera:
    """Draw n training cameras on the orbit ranges of `config` (CPU generator)."""
    az = _uniform(n, config.azimuth, generator)
    el = _uniform(n, config.elevation, generator)
    d = _uniform(n, config.distance, generator)
    fov = _uniform(n, config.fovy, generator)
    return from_spherical(az, el, d, fov, width, height)


def view_set_spherical(n_sets: int, views: int, config: OrbitConfig, generator: torch.Generator | None = None,
                       jitter: float = 15.0, even_share: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """View sets as drawn for the multi-view prior and for multi-view distillation.

    Each set shares one elevation, distance and field of view; its V azimuths are
    base + k·360°/V + U(−jitter, jitter) (k ≥ 1; view 0 sits at the base), or, for the sets beyond
    `even_share`, base + U(0°, 360°) (arbitrary spacings). Returns (spherical [n·V, 3] azimuth°,
    elevation°, distance; fovy [n·V]), set-major (s0v0, s0v1, …).
    """
    base = _uniform(n_sets, config.azimuth, generator)  # [n]
    el, d, fov = (_uniform(n_sets, b, generator) for b in (config.elevation, config.distance, config.fovy))
    k = torch.arange(views, dtype=torch.float32)
    offsets = k * (360.0 / views) + (2 * torch.rand(n_sets, views, generator=generator) - 1) * jitter  # [n, V]
    random_offsets = 360.0 * torch.rand(n_sets, views, generator=generator)
    even = torch.rand(n_sets, generator=generator) < even_share
    offsets = torch.where(even[:, None], offsets, random_offsets)
    offsets[:, 0] = 0.0
    az = torch.remainder(base[:, None] + offsets, 360.0).reshape(-1)
    rep = lambda x: x.repeat_interleave(views)  # noqa: E731 - per set -> per view
    return torch.stack([az, rep(el), rep(d)], dim=-1), rep(fov)


def sample_view_sets(n_sets: int, views: int, config: OrbitConfig, width: int, height: int | None = None,
                     generator: torch.Generator | None = None, jitter: float = 15.0) -> Camera:
    """n_sets × V cameras (set-major) drawn by `view_set_spherical` with evenly spaced azimuths."""
    sph, fov = view_set_spherical(n_sets, views, config, generator, jitter)
    return from_spherical(sph[:, 0], sph[:, 1], sph[:, 2], fov, width, height)


def turntable(n: int, width: int, height: int | None = None, elevation: float = 20.0,
              distance: float = 2.8, fovy: float = 42.5) -> Camera:
    """n cameras evenly spaced in azimuth starting at the front, for videos and evaluation."""
    az = torch.arange(n, dtype=torch.float32) * (360.0 / n)
    return from_spherical(az, elevation, distance, fovy, width, height)


def frame_times(frames: int, offset: float = 0.0) -> torch.Tensor:
    """[frames] times of one loop: (offset + k / frames) mod 1, k = 0..frames−1."""
    return torch.remainder(offset + torch.arange(frames, dtype=torch.float32) / frames, 1.0)


def clip_cameras(cameras: Camera, times: torch.Tensor) -> Camera:
    """B cameras × F times [B, F] (or [F], shared) -> B·F cameras ordered clip by clip (b0f0, b0f1, …)."""
    B = len(cameras)
    times = torch.as_tensor(times, dtype=torch.float32)
    if times.ndim == 1:
        times = times.expand(B, -1)
    F = times.shape[1]
    index = torch.arange(B, device=cameras.device).repeat_interleave(F)
    return Camera(cameras.c2w[index], cameras.fovy[index], cameras.width, cameras.height,
                  torch.remainder(times.reshape(-1).to(cameras.device), 1.0))
