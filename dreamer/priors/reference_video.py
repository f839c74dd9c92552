"""The `reference-video` prior: the exact denoiser of a finite set of animated-library clips.

For a prompt naming an animated library object ("a red cube bouncing") the clip distribution is
the mixture of reference clips y_i: the moving object rendered from camera v of a fixed
golden-spiral orbit (`reference_orbit.reference_orbit`) at the F frame times `frame_times(F, p)` of a
loop, for `num_phases` start times p = j / num_phases. The posterior mean is the image reference
prior's formula over whole clips (one softmax per clip, squared distances summed over frames):

    x̂0(x_t) = Σ_i softmax_i(−‖x_t − α_t y_i‖² / (2σ_t²) + log w_i) · y_i,   ε̂ = (x_t − α_t x̂0) / σ_t

with log w_i = −angle(query camera, camera_i)² / (2τ²)  (the query clip's first-frame camera; as the
image reference prior) − mean_f d(q_f, τ_if)² / (2τ_t²)  (d: circular distance between the query's
frame times q_f and the reference clip's frame times; for loop clips `frame_times(F, offset)` it is
the distance between the two start phases). So the query clip's times choose the phase. What this prior
shares with `reference` (sets, embeddings, α/σ, ε̂ from x̂0) is `exact_prior.ExactMixturePrior`.

Clips share frames: every clip is F rows of a frame bank (each view at each distinct time), so
the set costs views × distinct times renders and that much memory — 48 × 16 = 768 frames at the
defaults, not 48 × 16 × 8 — and `exact_mixture.exact_clip_denoise` works on the bank through index gathers.
Measured on one thread of a shared CPU at the defaults (32 px, 8 frames, 16 phases, 48 views): ~1.5 s
to render one prompt's bank, ~6 s for the generic set (0.03 s from the cache), ~5 ms per
`predict_noise` call for B=1, F=8. (More threads than free cores make sphere tracing far slower.)

Unconditional branch: the generic set — `uncond_shapes` × `uncond_motions` (colours from
`uncond_colours` taking turns), `uncond_views` views each. A negative prompt that is a library prompt ("a blue sphere
spinning") uses that prompt's set instead (the generic set is then the `empty` embedding). Any
other negative prompt, motion-averse ones ("static, motionless") included, is not a library
prompt and gets the generic set. Banks are cached on disk with `reference_cache` (keys from
`dreamer.shapes.fingerprint`), so a second run does not render.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors.exact_mixture import exact_clip_denoise
from dreamer.priors.exact_prior import ExactMixturePrior
from dreamer.priors.reference_config import ReferencePriorConfig
from dreamer.priors.reference_orbit import camera_directions, camera_log_weights, reference_orbit
from dreamer.priors.video import VideoPrior
from dreamer.shapes.fingerprint import cache_key
from dreamer.shapes.motions import MOTIONS, MotionSpec, canonical_motion

__all__ = [
    "ReferenceVideoPriorConfig",
    "ReferenceVideoPrior",
    "ClipBank",
    "clip_layout",
    "render_motion_frames",
]

FORMAT = "reference-video-v1"  # bump when the bank layout or the way frames are rendered changes
_RENDER_CHUNK = 128  # cameras per render_motion call (bounds memory)


@dataclass
class ReferenceVideoPriorConfig(ReferencePriorConfig):
    """Settings of the `reference-video` prior; the inherited fields mean what they mean for `reference`."""

    error_prefix: ClassVar[str] = "reference-video prior"

    image_size: int = 32  # side of the square frames the prior denoises, in pixels
    num_views: int = 48  # reference cameras per prompt, on the reference prior's golden spiral
    num_frames: int = 8  # F, frames per clip (the clip covers one loop: times p + k / F)
    num_phases: int = 16  # reference clip start times p = j / num_phases (a multiple of F shares frames)
    time_aware: bool = True  # weight reference clips by how close their frame times are to the query's
    phase_temperature: float = 0.005  # τ_t, in loops: clip weight × exp(−mean_f d(q_f, τ_f)² / (2τ_t²)); well below
    # the phase spacing (1/16), so the clip's times choose the phase at every t (why not softer: docs/benchmarks.md,
    # "4D tuning history")
    uncond_views: int = 3  # generic set: views per (shape, motion)
    uncond_shapes: tuple[str, ...] = ("cube", "sphere", "chair", "tree")  # generic set: library objects
    uncond_motions: tuple[str, ...] = ("still", *MOTIONS)  # generic set: motions ("still" = none)

    def __post_init__(self) -> None:
        for name in ("uncond_shapes", "uncond_motions"):
            value = getattr(self, name)
            setattr(self, name, (value,) if isinstance(value, str) else tuple(value))
        super().__post_init__()
        if self.exact_views:
            raise UserError("reference-video prior: exact_views is not supported (clips come from its fixed orbit)")
        if self.random_background:
            raise UserError("reference-video prior: background 'random' is not supported (its clips are rendered "
                            "over one fixed colour); use white, black, grey or an RGB triple")
        for name in ("num_frames", "num_phases"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise UserError(f"reference-video prior: {name} must be a positive integer, got {value!r}")
        if not (self.phase_temperature > 0):
            raise UserError(f"reference-video prior: phase_temperature must be > 0 loops, got {self.phase_temperature!r}")
        from dreamer.shapes import OBJECTS

        unknown = [s for s in self.uncond_shapes if s not in OBJECTS]
        if not self.uncond_shapes or unknown:
            raise UserError(f"reference-video prior: uncond_shapes must name library objects ({', '.join(OBJECTS)}); "
                            f"got {list(self.uncond_shapes)}")
        motions = [m if m == "still" else canonical_motion(m) for m in self.uncond_motions]
        if not motions or None in motions:
            raise UserError(f"reference-video prior: uncond_motions must name motions (still, {', '.join(MOTIONS)}); "
                            f"got {list(self.uncond_motions)}")
        self.uncond_motions = tuple(motions)


@dataclass
class ClipBank:
    """One registered set of reference clips, stored as a bank of frames that clips index into."""

    label: str  # e.g. "a red cube bouncing", "generic"
    frames: torch.Tensor  # [M, 3, S, S] RGB in [0, 1] (CPU, float32)
    clip_frames: torch.Tensor  # [N, F] long: the bank rows of each clip's frames
    clip_times: torch.Tensor  # [N, F] float64: each clip frame's time in [0, 1)
    clip_directions: torch.Tensor  # [N, 3] unit camera direction of each clip (its camera is fixed)
    path: Path | None = None  # cache file it was loaded from / written to


# ----------------------------------------------------------------------------------------------
# Pure functions


def clip_layout(num_views: int, num_frames: int, num_phases: int) -> dict[str, torch.Tensor]:
    """Which frames to render and how clips index them, for one moving object seen from `num_views` cameras.

    Clip (v, j) is view v at the loop times (j / P + k / F) mod 1, k < F. Times are kept as integers
    over P·F so shared times are found exactly. Returns frame_view [M], frame_time [M] (float64),
    clip_view [N], clip_frames [N, F] and clip_times [N, F] (float64), rows view-major.
    """
    P, Fr = int(num_phases), int(num_frames)
    j, k = torch.arange(P)[:, None], torch.arange(Fr)[None, :]
    u = (j * Fr + k * P) % (P * Fr)  # [P, F]
    distinct, inverse = torch.unique(u, return_inverse=True)
    T = len(distinct)
    views = torch.arange(num_views)
    return {
        "frame_view": views.repeat_interleave(T),
        "frame_time": (distinct.double() / (P * Fr)).repeat(num_views),
        "clip_view": views.repeat_interleave(P),
        "clip_frames": (views[:, None, None] * T + inverse[None]).reshape(num_views * P, Fr),
        "clip_times": (u.double() / (P * Fr)).expand(num_views, P, Fr).reshape(num_views * P, Fr),
    }


def circular_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Distance between loop times (broadcast), in [0, 0.5]."""
    d = torch.remainder(a - b, 1.0)
    return torch.minimum(d, 1.0 - d)


def render_motion_frames(mspec: MotionSpec, cameras: Camera, config: ReferenceVideoPriorConfig) -> torch.Tensor:
    """Ground-truth renders of a moving object, each camera at its own time: [M, 3, S, S] in [0, 1], CPU."""
    from dreamer.shapes.animated import render_motion

    size = config.image_size
    if mspec.motion == "still":  # every time looks the same: one render pass
        cameras = cameras.with_time(0.0)
    chunks = []
    with torch.no_grad():
        for start in range(0, len(cameras), _RENDER_CHUNK):
            cams = cameras[start:start + _RENDER_CHUNK].with_resolution(size, size)
            out = render_motion(mspec, cams, background=config.background_rgb(), supersample=config.supersample)
            chunks.append(out.rgb.detach().to("cpu", torch.float32).permute(0, 3, 1, 2))
    return torch.cat(chunks).clamp(0.0, 1.0).contiguous()


# ----------------------------------------------------------------------------------------------


@dataclass
class _Group:
    """One moving object seen from some cameras: a block of a bank."""

    mspec: MotionSpec
    cameras: Camera  # its views (no time)


class ReferenceVideoPrior(ExactMixturePrior, VideoPrior):
    """Exact denoiser of animated shape-library clips; deterministic, no weights, cached renders."""

    config_class = ReferenceVideoPriorConfig
    sample_dims = 2  # a batch of clips [B, F, 3, S, S]
    fixed_frames = True  # its reference clips have num_frames frames

    def __init__(self, config: ReferenceVideoPriorConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__(config, device)
        c = self.config
        self.num_frames = int(c.num_frames)
        self.camera_conditioned = bool(c.camera_aware or c.time_aware)

    # -- reference sets --------------------------------------------------------------------------

    def index_for_motion(self, mspec: MotionSpec) -> int:
        """The reference set of a moving library object (rendered or loaded on first use)."""
        label = mspec.prompt
        key = self._key("motion", mspec=dataclasses.asdict(mspec), num_views=self.config.num_views)
        if key not in self._by_key:
            groups = [_Group(mspec, reference_orbit(self.config.num_views, self.config))]
            self._by_key[key] = self._add(self._bank(label, groups, key))
        return self._by_key[key]

    def _index_for_prompt(self, text: str) -> int:
        from dreamer.shapes.prompt import parse_motion_prompt

        return self.index_for_motion(parse_motion_prompt(text))  # UserError when outside the library

    def _build_generic(self) -> ClipBank:
        return self._bank("generic", self._generic_groups())

    def _generic_groups(self) -> list[_Group]:
        """`uncond_shapes` × `uncond_motions`, `uncond_views` views each on one golden spiral; the colours
        take turns over the (shape, motion) pairs (one colour per pair keeps the render calls few)."""
        from dreamer.shapes import ObjectSpec

        c = self.config
        try:  # canonical names ("grey" -> "gray"); UserError names the vocabulary
            colours = [ObjectSpec(shape=c.uncond_shapes[0], colour=name).colour for name in c.uncond_colours]
        except UserError as exc:
            raise UserError(f"reference-video prior: bad uncond_colours {list(c.uncond_colours)}: {exc}") from None
        orbit = reference_orbit(c.uncond_views, c)
        pairs = [(shape, motion) for shape in c.uncond_shapes for motion in c.uncond_motions]
        return [_Group(MotionSpec(ObjectSpec(shape=shape, colour=colours[k % len(colours)]), motion), orbit)
                for k, (shape, motion) in enumerate(pairs)]

    def _key(self, kind: str, **extra) -> str:
        c = self.config
        return cache_key(self._render_payload(kind, format=FORMAT, num_frames=c.num_frames,
                                              num_phases=c.num_phases, **extra))

    def _bank(self, label: str, groups: list[_Group], key: str | None = None) -> ClipBank:
        """Lay out the groups' clips, then load their frames from the cache or render and save them."""
        c = self.config
        if key is None:
            key = self._key("generic", shapes=list(c.uncond_shapes), motions=list(c.uncond_motions),
                            colours=[g.mspec.spec.colour for g in groups], views=c.uncond_views)
        cams, clip_frames, clip_times, clip_first = [], [], [], []
        offset = 0
        for group in groups:
            lay = clip_layout(len(group.cameras), c.num_frames, c.num_phases)
            view_cams = group.cameras[lay["frame_view"]]
            cams.append(view_cams.with_time(lay["frame_time"].float()))
            clip_frames.append(lay["clip_frames"] + offset)
            clip_first.append(lay["clip_frames"][:, 0] + offset)  # a clip keeps one camera
            clip_times.append(lay["clip_times"])
            offset += len(lay["frame_view"])
        cameras = Camera.cat(cams)

        def render() -> tuple[torch.Tensor, None]:
            return torch.cat([render_motion_frames(g.mspec, cams[i], c) for i, g in enumerate(groups)]), None

        frames, directions, _, path = self._cached_render(label, key, cameras, render,
                                                          {"label": label, "format": FORMAT})
        return ClipBank(label, frames, torch.cat(clip_frames), torch.cat(clip_times),
                        directions[torch.cat(clip_first)], path)

    # -- the Prior contract on clips ---------------------------------------------------------------

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,F,3,H,W] in [0,1] -> [B,F,3,S,S] in [−1,1], differentiable."""
        self.check_clip(rgb)
        return super().encode_images(rgb)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.check_clip(z)
        return super().decode(z)

    def _check_sample(self, x_t: torch.Tensor) -> None:
        self.check_clip(x_t)
        if tuple(x_t.shape[2:]) != self.latent_shape or x_t.shape[1] != self.num_frames:
            raise UserError(f"the reference-video prior denoises clips of {self.num_frames} frames of "
                            f"{self.latent_shape}; got {tuple(x_t.shape)} (set prior.num_frames / prior.image_size)")

    def _pack(self, bank: ClipBank, device: torch.device) -> tuple:
        """(frames [M, D] in [−1, 1], ‖frames‖² [M], clip_frames [N, F], clip_times [N, F], clip directions [N, 3])."""
        frames = (bank.frames.reshape(len(bank.frames), -1).double() * 2.0 - 1.0).to(device)
        return (frames, (frames * frames).sum(dim=-1), bank.clip_frames.to(device),
                bank.clip_times.to(device), bank.clip_directions.to(device))

    def _camera_query(self, camera: Camera | None, batch: int,
                      device) -> tuple[torch.Tensor, torch.Tensor | None] | None:
        """Per query clip: its first frame's camera direction [B, 3] and its frame times [B, F] (None
        without times); None without a camera or when neither weighting is on. `camera` holds B·F
        cameras clip by clip, or (B/k)·F (tiled k times, e.g. CFG)."""
        c, frames = self.config, self.num_frames
        if camera is None or not (c.camera_aware or c.time_aware):
            return None
        if len(camera) % frames or batch % (len(camera) // frames):
            raise ValueError(f"{len(camera)} cameras for {batch} clips of {frames} frames (expected B·F, clip by clip)")
        tiles = batch // (len(camera) // frames)
        dirs = camera_directions(camera[::frames]).repeat(tiles, 1).to(device)
        times = None if camera.time is None else camera.time.reshape(-1, frames).double().repeat(tiles, 1).to(device)
        return dirs, times

    def _denoise_set(self, index: int, rows: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor,
                     sigma: torch.Tensor, camera: Camera | None, query) -> torch.Tensor:
        bank, sqnorm, clip_frames, clip_times, clip_dirs = self._packed_set(index, x.device)
        log_w = None
        if query is not None:
            c, (dirs, times) = self.config, query
            if c.camera_aware:
                log_w = camera_log_weights(dirs[rows], clip_dirs, c.camera_temperature)
            if c.time_aware and times is not None:
                d = circular_distance(times[rows][:, None, :], clip_times[None])  # [b, N, F]
                w = -(d ** 2).mean(dim=-1) / (2.0 * float(c.phase_temperature) ** 2)
                log_w = w if log_w is None else log_w + w
        return exact_clip_denoise(x[rows], alpha[rows], sigma[rows], bank, clip_frames, log_w, sqnorm)
