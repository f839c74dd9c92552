"""4D Gaussians: a canonical Gaussian asset moved by a HexPlane deformation and a global similarity track.

A 4D run starts from a static one: its own static stage (`motion.static_steps`), or a 3D run's result
(`init: points`, `init_points: <3D run>/splats.ply`, `motion.static_steps=0`). Each camera
is rendered at its `Camera.time`: the canonical Gaussians are first deformed locally by the
`HexPlaneField` (Δx, Δq, Δs, all zero at first) and then moved as a whole by a looping similarity
track (translation, rotation, uniform scale per keyframe, zero at first): x' = s·R·(x + Δx) + c.
The track makes rigid motions (spin, slide, bounce, orbit, pulse) a few numbers to learn. (Exports
write morph targets, which carry any deformation; `export.animated_gltf.write_trs_glb` writes node-TRS
animation for callers that pass rigid matrices, e.g. `track_pose`, but runs do not yet.)

Stages: "static" renders the canonical asset at every time (the parent's path, densification
included) and leaves the deformation untouched; "motion" (the default: the canonical asset comes
from a static run) deforms per time and never densifies, so the Gaussian count stays fixed while
the motion is learnt.
"""

from __future__ import annotations

import math

from dataclasses import dataclass

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.representations.base import AlphaRegularizers, Animated, RenderOutput
from dreamer.representations.gaussians import Gaussians, GaussiansConfig
from dreamer.representations.hexplane import HexPlaneField

STAGES = ("static", "motion")


@dataclass
class Gaussians4DConfig(GaussiansConfig):
    """A Gaussian asset (the parent's fields) plus its deformation field and similarity track."""

    plane_resolution: int = 32  # cells per side of the three spatial planes (and the space axis of the time planes)
    time_resolution: int = 16  # cells along the (looping) time axis of the xt, yt, zt planes
    feature_dim: int = 16  # channels of every plane (the MLP's input width)
    hidden: int = 64  # width of the deformation MLP's two hidden layers
    bound: float = 1.0  # half-width (world units) of the cube the field covers; positions outside clamp to it
    lr_planes: float = 1e-2  # Adam lr of the six feature planes (K-planes' grid lr)
    lr_mlp: float = 1e-3  # Adam lr of the deformation MLP and its heads
    lr_track: float = 1e-2  # Adam lr of the similarity track's keyframes
    track: bool = True  # a global translation / rotation / scale per keyframe, applied after the local deformation
    track_keyframes: int = 16  # K: keyframes of that track over one loop (interpolated periodically); a parameter
                               # count, independent of the clip and export frame counts (motion.frames, export_frames)
    rigidity_neighbours: int = 8  # k nearest canonical neighbours of each Gaussian in the rigidity regulariser

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("plane_resolution", "time_resolution", "feature_dim", "hidden", "track_keyframes",
                     "rigidity_neighbours"):
            if int(getattr(self, name)) < (2 if name in ("plane_resolution", "time_resolution") else 1):
                raise UserError(f"gaussians4d.{name} must be a positive integer (resolutions >= 2), "
                                f"got {getattr(self, name)!r}")
        for name in ("lr_planes", "lr_mlp", "lr_track", "bound"):
            if not getattr(self, name) > 0:
                raise UserError(f"gaussians4d.{name} must be > 0, got {getattr(self, name)!r}")


@dataclass
class Motion4DRegularizers(AlphaRegularizers):
    """The alpha regularisers plus the deformation's (all 0 = off; zero in stage "static")."""

    time_smoothness: float = 0.0  # mean squared second difference of the time planes along looping time
    plane_tv: float = 0.0  # mean squared first difference of the spatial planes (smooth motion in space)
    rigidity: float = 0.0  # mean (|x_i(t) - x_j(t)| - |x_i - x_j|)² over k-nearest canonical pairs (local deformation)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a ⊗ b of w x y z quaternions [..., 4] (rotates b by a; norms multiply)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                        aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw], dim=-1)


def periodic_lerp(keys: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
    """[K, D] keyframes at k / K of a loop -> [N, D] at times [N], linear between neighbours, wrapping at 1."""
    K = keys.shape[0]
    u = torch.remainder(times, 1.0) * K
    lo = torch.floor(u)
    frac = (u - lo)[:, None]
    i0 = lo.long() % K
    return (1.0 - frac) * keys[i0] + frac * keys[(i0 + 1) % K]


class SimilarityTrack(torch.nn.Module):
    """A looping global pose: per keyframe a translation, an axis-angle rotation and a log-scale (zero = identity),
    the rotation composed after a whole number of turns per loop about an axis (`turns`, `spin_axis`: fixed, not
    learnt; the 4D trainer chooses them by a hypothesis test, `dreamer.trainer.spin`). A turn is what gradients
    cannot learn: 16 keyframes would each have to travel up to π from zero, through a landscape where the
    quarter-turned object scores no better than the still one."""

    def __init__(self, keyframes: int):
        super().__init__()
        self.translation = torch.nn.Parameter(torch.zeros(keyframes, 3))
        self.rotation = torch.nn.Parameter(torch.zeros(keyframes, 3))  # axis-angle (radians)
        self.log_scale = torch.nn.Parameter(torch.zeros(keyframes, 1))
        self.register_buffer("turns", torch.zeros(()))  # whole turns per loop (a sign is a direction)
        self.register_buffer("spin_axis", torch.tensor([0.0, 1.0, 0.0]))  # unit axis of those turns

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints from before the turns were added hold no turns: none
        for name, default in (("turns", torch.zeros(())), ("spin_axis", torch.tensor([0.0, 1.0, 0.0]))):
            state_dict.setdefault(prefix + name, default)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(R [N, 3, 3], quaternion [N, 4] of R, c [N, 3], log s [N]) at times [N]."""
        from kornia.geometry.conversions import axis_angle_to_quaternion, quaternion_to_rotation_matrix

        keys = torch.cat([self.translation, self.log_scale], dim=-1)  # [K, 4]
        pose = periodic_lerp(keys, times)
        # Rotations are interpolated as quaternions along the shorter arc (normalised lerp), not as axis-angle
        # vectors: keyframes of a full turn (…, 337.5°, 0°) would otherwise turn back through 180° between them.
        quats = axis_angle_to_quaternion(self.rotation)  # [K, 4] w x y z
        K = quats.shape[0]
        u = torch.remainder(times, 1.0) * K
        lo = torch.floor(u)
        frac = (u - lo)[:, None]
        q0, q1 = quats[lo.long() % K], quats[(lo.long() + 1) % K]
        q1 = torch.where((q0 * q1).sum(-1, keepdim=True) < 0, -q1, q1)
        q = torch.nn.functional.normalize((1.0 - frac) * q0 + frac * q1, dim=-1)
        if float(self.turns) != 0.0:
            angle = 2.0 * math.pi * self.turns * torch.remainder(times, 1.0)  # [N]
            q = quat_multiply(axis_angle_to_quaternion(angle[:, None] * self.spin_axis[None]), q)
        return quaternion_to_rotation_matrix(q), q, pose[:, :3], pose[:, 3]


@dataclass
class Deformed:
    """The raw (pre-activation) parameters that change with time, at one time."""

    means: torch.Tensor  # [N, 3] after the local deformation and the track
    quats: torch.Tensor  # [N, 4] w x y z, unnormalised
    log_scales: torch.Tensor  # [N, 3]
    local_means: torch.Tensor  # [N, 3] after the local deformation only (for rigidity)
    rotation: torch.Tensor  # [3, 3] the track's rotation (view directions of SH colours)


class Gaussians4D(Gaussians, Animated):
    """Canonical Gaussians + HexPlane deformation + similarity track, rendered at each camera's time."""

    regularizer_weights = Motion4DRegularizers
    is_dynamic = True

    def __init__(self, config: Gaussians4DConfig | None = None):
        c = config if config is not None else Gaussians4DConfig()
        super().__init__(c)
        self.deformation = HexPlaneField(c.plane_resolution, c.time_resolution, c.feature_dim, c.hidden)
        self.track = SimilarityTrack(c.track_keyframes) if c.track else None
        self.stage = "motion"
        self._neighbours: torch.Tensor | None = None  # [N, k] canonical k nearest neighbours (rigidity)

    # ---------------------------------------------------------------- stages and the deformation
    def set_stage(self, stage: str) -> None:
        """"static": canonical at every time, deformation untouched (densification may run); "motion": deform."""
        if stage not in STAGES:
            raise UserError(f"gaussians4d stage {stage!r} is not one of {', '.join(STAGES)}")
        self.stage = stage
        self._neighbours = None  # recomputed from the canonical means of this stage
        self._info = None

    def track_pose(self, times) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The global similarity at times [N]: (R [N, 3, 3], c [N, 3], s [N]); identity without a track."""
        device = self.params["means"].device
        times = torch.as_tensor(times, dtype=torch.float32, device=device).reshape(-1)
        n = times.shape[0]
        if self.track is None:
            return torch.eye(3, device=device).expand(n, 3, 3), torch.zeros(n, 3, device=device), torch.ones(n, device=device)
        R, _, c, log_s = self.track(times)
        return R, c, torch.exp(log_s)

    def _deform(self, time: torch.Tensor) -> Deformed:
        p = self.params
        dx, dq, ds = self.deformation(p["means"] / self.config.bound, time)
        local = p["means"] + dx
        quats, log_scales = p["quats"] + dq, p["scales"] + ds
        if self.track is None:
            return Deformed(local, quats, log_scales, local, torch.eye(3, device=local.device))
        R, q, c, log_s = self.track(time.reshape(1))
        means = torch.exp(log_s) * (local @ R[0].T) + c
        return Deformed(means, quat_multiply(q, quats), log_scales + log_s, local, R[0])

    @torch.no_grad()
    def deform_points(self, points: torch.Tensor, time: float) -> torch.Tensor:
        """Canonical points [N, 3] -> their place at `time` (the local offset, then the track); identity when static."""
        points = points.to(self.params["means"].device, torch.float32)
        if self.stage == "static":
            return points.clone()
        t = torch.tensor(float(time), device=points.device)
        moved = points + self.deformation(points / self.config.bound, t)[0]
        R, c, s = self.track_pose(t)
        return s[0] * (moved @ R[0].T) + c[0]

    @torch.no_grad()
    def splat_arrays_at(self, time: float):
        """The splats at `time` (raw parameters; SH coefficients stay canonical), for the per-frame PLY sequence."""
        if self.stage == "static":
            return self.splat_arrays()
        from dreamer.render.splat.ply import SplatArrays

        d = self._deform(torch.tensor(float(time), device=self.params["means"].device))
        canonical = self.splat_arrays()
        return SplatArrays(means=d.means.float().cpu().numpy(), sh=canonical.sh,
                           opacity_logits=canonical.opacity_logits, log_scales=d.log_scales.float().cpu().numpy(),
                           quats=d.quats.float().cpu().numpy())

    def deformation_state(self) -> dict[str, torch.Tensor]:
        """The field's and the track's weights (detached copies), keyed as in this module's state_dict."""
        state = {f"deformation.{k}": v.detach().clone() for k, v in self.deformation.state_dict().items()}
        if self.track is not None:
            state.update({f"track.{k}": v.detach().clone() for k, v in self.track.state_dict().items()})
        return state

    # ---------------------------------------------------------------- rendering
    def render(self, camera: Camera, background: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> RenderOutput:
        """Each camera at its own time: cameras sharing a time are rasterized together, outputs in camera order."""
        device = self.params["means"].device
        camera = camera.to(device)
        times = torch.remainder(camera.times.to(device), 1.0)
        if self.stage == "static":
            out = super().render(camera, background, generator=generator)
            out.extras["times"] = times
            return out
        B = len(camera)
        if background is None:
            bg = self.background_model(torch.zeros(B, 1, 1, 3, device=device), generator=generator)[:, 0, 0]
        else:
            bg = torch.as_tensor(background, dtype=torch.float32, device=device).reshape(-1, 3).expand(B, 3)
        unique, inverse = torch.unique(times, return_inverse=True)
        parts, order, local_means = [], [], []
        for k in range(len(unique)):
            idx = torch.nonzero(inverse == k).squeeze(1)
            d = self._deform(unique[k])
            parts.append(self._rasterize(d, camera[idx], bg[idx]))
            order.append(idx)
            local_means.append(d.local_means)
        back = torch.argsort(torch.cat(order))
        rgb, alpha, depth = (torch.cat([p[i] for p in parts])[back] for i in range(3))
        return RenderOutput(rgb=rgb, alpha=alpha, depth=depth,
                            extras={"num_gaussians": self.num_gaussians, "times": times,
                                    "local_means": torch.stack(local_means)})

    def _rasterize(self, d: Deformed, camera: Camera, bg: torch.Tensor):
        """The parent's rasterization of the deformed Gaussians: (rgb, alpha, depth)."""
        a = {"means": d.means, "scales": torch.exp(d.log_scales), "quats": d.quats,
             "opacities": torch.sigmoid(self.params["opacities"])}
        colours = self._colours(d, camera.position)
        if self._backend(d.means.device) == "gsplat":
            return self._render_gsplat(a, colours, camera, bg)[:3]
        from dreamer.render.splat import rasterize_gaussians

        out = rasterize_gaussians(a["means"], a["quats"], a["scales"], a["opacities"], colours, camera, background=bg)
        return out.rgb, out.alpha, out.depth

    def _colours(self, d: Deformed, camera_positions: torch.Tensor) -> torch.Tensor:
        """SH colours with view directions taken back into the canonical frame through the track's rotation."""
        if self.config.sh_degree == 0:
            return self.colours()
        from dreamer.render.splat.sh import sh_to_colour

        p = self.params
        sh = torch.cat([p["sh0"], p["shN"]], dim=1)
        dirs = torch.nn.functional.normalize(d.means[None] - camera_positions[:, None], dim=-1) @ d.rotation  # Rᵀ·dir
        return sh_to_colour(sh[None], dirs, self.config.sh_degree)

    # ---------------------------------------------------------------- training hooks
    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        """The parent's groups, then "deformation_planes", "deformation_mlp" and "deformation_track"."""
        c = self.config
        groups = super().parameter_groups(lr_scale)
        extra = [("deformation_planes", self.deformation.plane_parameters(), c.lr_planes),
                 ("deformation_mlp", self.deformation.mlp_parameters(), c.lr_mlp)]
        if self.track is not None:
            extra.append(("deformation_track", list(self.track.parameters()), c.lr_track))
        return groups + [{"params": params, "lr": lr * lr_scale, "name": name} for name, params, lr in extra]

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """The parent's means-lr schedule always; densification only in stage "static"."""
        if self.stage == "motion":
            self._info = None
        super().after_step(step, optimizer)

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        """opacity/sparsity (the parent's) + time_smoothness, plane_tv, rigidity (zero in stage "static")."""
        terms = super().regularization(out)
        if self.stage == "static" or "local_means" not in out.extras:
            zero = torch.zeros((), device=out.alpha.device)
            return {**terms, "time_smoothness": zero, "plane_tv": zero.clone(), "rigidity": zero.clone()}
        return {**terms, "time_smoothness": self.deformation.time_smoothness(), "plane_tv": self.deformation.plane_tv(),
                "rigidity": self._rigidity(out.extras["local_means"])}

    def _rigidity(self, local_means: torch.Tensor) -> torch.Tensor:
        """Mean over k-nearest canonical pairs and render times of (|x_i(t) − x_j(t)| − |x_i − x_j|)²."""
        means = self.params["means"]
        if self._neighbours is None or self._neighbours.shape[0] != means.shape[0]:
            self._neighbours = _nearest_neighbours(means.detach(), self.config.rigidity_neighbours)
        nbr = self._neighbours
        if nbr.shape[1] == 0:
            return torch.zeros((), device=means.device)
        rest = (means[:, None] - means[nbr]).norm(dim=-1)  # [N, k]
        moved = (local_means[:, :, None] - local_means[:, nbr]).norm(dim=-1)  # [T, N, k]
        return (moved - rest).square().mean()


def _nearest_neighbours(points: torch.Tensor, k: int) -> torch.Tensor:
    """[N, k'] indices of each point's k' = min(k, N − 1) nearest other points."""
    from scipy.spatial import cKDTree

    k = min(k, points.shape[0] - 1)
    if k < 1:
        return torch.zeros(points.shape[0], 0, dtype=torch.long, device=points.device)
    pts = points.cpu().numpy()
    _, idx = cKDTree(pts).query(pts, k=k + 1)
    return torch.from_numpy(idx[:, 1:]).long().to(points.device)
