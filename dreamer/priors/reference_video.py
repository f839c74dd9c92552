"""The `reference-video` prior: the exact denoiser of a finite set of animated-library clips.

For a prompt naming an animated library object ("a red cube bouncing") the clip distribution is
the mixture of reference clips y_i: the moving object rendered from camera v of a fixed
golden-spiral orbit (`reference.reference_orbit`) at the F frame times `frame_times(F, p)` of a
loop, for `num_phases` start times p = j / num_phases. The posterior mean is the image reference
prior's formula over whole clips (one softmax per clip, squared distances summed over frames):

    x̂0(x_t) = Σ_i softmax_i(−‖x_t − α_t y_i‖² / (2σ_t²) + log w_i) · y_i,   ε̂ = (x_t − α_t x̂0) / σ_t

with log w_i = −angle(query camera, camera_i)² / (2τ²)  (the query clip's first-frame camera; as the
image reference prior) − mean_f d(q_f, τ_if)² / (2τ_t²)  (d: circular distance between the query's
frame times q_f and the reference clip's frame times; for loop clips `frame_times(F, offset)` it is
the distance between the two start phases). So the query clip's times choose the phase.

Clips share frames: every clip is F rows of a frame bank (each view at each distinct time), so
the set costs views × distinct times renders and that much memory — 48 × 16 = 768 frames at the
defaults, not 48 × 16 × 8 — and `exact_clip_denoise` works on the bank through index gathers.
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
from typing import Callable, ClassVar

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors import reference_cache, schedule
from dreamer.priors.base import PromptEmbedding
from dreamer.priors.pixel_space import decode_pixels, encode_pixels
from dreamer.priors.reference import (
    ReferencePriorConfig,
    camera_directions,
    camera_log_weights,
    reference_orbit,
    set_index_embedding,
)
from dreamer.priors.schedule import make_alphas_cumprod
from dreamer.priors.video import VideoPrior
from dreamer.shapes.fingerprint import cache_key, shape_library_fingerprint
from dreamer.shapes.motions import MOTIONS, MotionSpec, canonical_motion

__all__ = [
    "ReferenceVideoPriorConfig",
    "ReferenceVideoPrior",
    "ClipBank",
    "clip_layout",
    "exact_clip_denoise",
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


def exact_clip_denoise(x: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, frames: torch.Tensor,
                       clip_frames: torch.Tensor, log_weights: torch.Tensor | None = None,
                       frames_sqnorm: torch.Tensor | None = None) -> torch.Tensor:
    """Posterior mean of a Gaussian-noised (weighted) mixture of clips whose frames live in a bank.

    x [B, F, D] noisy clips, alpha / sigma [B], frames [M, D] the bank, clip_frames [N, F] long (clip n
    is frames[clip_frames[n]]), log_weights [B, N] or None, frames_sqnorm [M] = ‖frames‖² (optional).
    Equal to `reference.exact_denoise` over the N flattened clips, without building them: the
    logit of clip n sums per-frame dot products gathered from x_f · frames, and x̂0's frame f
    scatters the clip weights back onto the bank. Returns x̂0 [B, F, D] in float64.
    """
    x, frames = x.double(), frames.double()
    alpha, sigma = alpha.double(), sigma.double()
    B, Fr, _ = x.shape
    N = clip_frames.shape[0]
    if frames_sqnorm is None:
        frames_sqnorm = (frames * frames).sum(dim=-1)
    index = clip_frames.T.to(x.device)[None].expand(B, Fr, N)  # [B, F, N]
    dots = torch.einsum("bfd,md->bfm", x, frames).gather(2, index).sum(dim=1)  # [B, N] Σ_f x_f · y_nf
    sqnorm = frames_sqnorm.double()[clip_frames.to(x.device)].sum(dim=1)  # [N] ‖y_n‖²
    # −‖x − a y‖²/(2σ²) = (a x·y − a²‖y‖²/2)/σ² − ‖x‖²/(2σ²); the last term is constant over n.
    logits = (alpha[:, None] * dots - 0.5 * alpha[:, None] ** 2 * sqnorm[None]) / sigma[:, None] ** 2
    if log_weights is not None:
        logits = logits + log_weights.double()
    weights = torch.softmax(logits, dim=-1)  # [B, N]
    on_bank = torch.zeros(B, Fr, frames.shape[0], dtype=torch.float64, device=x.device)
    on_bank.scatter_add_(2, index, weights[:, None, :].expand(B, Fr, N))
    return on_bank @ frames


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


class ReferenceVideoPrior(VideoPrior):
    """Exact denoiser of animated shape-library clips; deterministic, no weights, cached renders."""

    embedded = True  # ships with dreamer: no download, runs on a CPU
    exact = True  # an exact denoiser over the library: an oracle

    fixed_frames = True  # its reference clips have num_frames frames

    def __init__(self, config: ReferenceVideoPriorConfig | None = None, device: str | torch.device = "cpu") -> None:
        super().__init__()
        self.config = config if config is not None else ReferenceVideoPriorConfig()
        c = self.config
        self.image_size = int(c.image_size)
        self.latent_shape = (3, self.image_size, self.image_size)
        self.num_frames = int(c.num_frames)
        self.num_train_timesteps = 1000
        self.camera_conditioned = bool(c.camera_aware or c.time_aware)
        self.register_buffer("alphas_cumprod", make_alphas_cumprod(self.num_train_timesteps, c.beta_schedule),
                             persistent=False)
        self._sets: list[ClipBank | None] = []
        self._by_key: dict[str, int] = {}
        self._packed: dict[tuple[int, str], tuple] = {}
        self._generic: int | None = None
        self.to(device)

    # -- reference sets --------------------------------------------------------------------------

    @property
    def num_sets(self) -> int:
        return len(self._sets)

    def reference_set(self, index: int) -> ClipBank:
        index = int(index)
        if self._sets[index] is None:  # the generic set, reserved by generic_index
            self._sets[index] = self._bank("generic", self._generic_groups())
        return self._sets[index]

    def index_for_motion(self, mspec: MotionSpec) -> int:
        """The reference set of a moving library object (rendered or loaded on first use)."""
        label = mspec.prompt
        key = self._key("motion", mspec=dataclasses.asdict(mspec), num_views=self.config.num_views)
        if key not in self._by_key:
            groups = [_Group(mspec, reference_orbit(self.config.num_views, self.config))]
            self._sets.append(self._bank(label, groups, key))
            self._by_key[key] = len(self._sets) - 1
        return self._by_key[key]

    def generic_index(self) -> int:
        """The generic set's index, reserved now and built on first use (SDS at scale 1 never needs it)."""
        if self._generic is None:
            self._sets.append(None)
            self._generic = len(self._sets) - 1
        return self._generic

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
        return cache_key({
            "version": reference_cache.CACHE_VERSION, "format": FORMAT, "library": shape_library_fingerprint(),
            "kind": kind, "image_size": c.image_size, "elevation": list(c.elevation), "distance": c.distance,
            "fovy": c.fovy, "background": list(c.background_rgb()), "supersample": c.supersample,
            "num_frames": c.num_frames, "num_phases": c.num_phases, **extra,
        })

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
        path = reference_cache.cache_path(c.resolved_cache_dir(), label, key)
        cached = reference_cache.load_references(path, key, len(cameras), self.image_size)
        if cached is not None:
            frames, directions = cached["images"], cached["directions"]
        else:
            frames = torch.cat([render_motion_frames(g.mspec, cams[i], c) for i, g in enumerate(groups)])
            directions = camera_directions(cameras)
            try:
                reference_cache.save_references(path, key, frames, directions, {"label": label, "format": FORMAT})
            except OSError as exc:  # unwritable cache: keep going in memory
                reference_cache.log.warning("could not write reference cache %s (%s)", path, exc)
                path = None
        return ClipBank(label, frames, torch.cat(clip_frames), torch.cat(clip_times),
                        directions[torch.cat(clip_first)], path)

    # -- the Prior contract on clips ---------------------------------------------------------------

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        """Embeddings are set indices. `view_dependent` is ignored: this prior takes the camera."""
        from dreamer.shapes.prompt import parse_motion_prompt

        cond = self.index_for_motion(parse_motion_prompt(prompt))  # UserError when outside the library
        return set_index_embedding(prompt, negative_prompt, cond, self.generic_index(),
                                   lambda text: self.index_for_motion(parse_motion_prompt(text)),
                                   self.alphas_cumprod.device)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,F,3,H,W] in [0,1] -> [B,F,3,S,S] in [−1,1], differentiable."""
        self.check_clip(rgb)
        B, Fr = rgb.shape[:2]
        return encode_pixels(rgb.flatten(0, 1), self.image_size).unflatten(0, (B, Fr))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        self.check_clip(z)
        return decode_pixels(z)

    def _packed_set(self, index: int, device: torch.device) -> tuple:
        key = (index, str(device))
        if key not in self._packed:
            bank = self.reference_set(index)
            frames = (bank.frames.reshape(len(bank.frames), -1).double() * 2.0 - 1.0).to(device)
            self._packed[key] = (frames, (frames * frames).sum(dim=-1), bank.clip_frames.to(device),
                                 bank.clip_times.to(device), bank.clip_directions.to(device))
        return self._packed[key]

    def _queries(self, camera: Camera, batch: int, frames: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per query clip: its first frame's camera direction [B, 3] and its frame times [B, F] (None
        without times). `camera` holds B·F cameras clip by clip, or (B/k)·F (tiled k times, e.g. CFG)."""
        if len(camera) % frames or batch % (len(camera) // frames):
            raise ValueError(f"{len(camera)} cameras for {batch} clips of {frames} frames (expected B·F, clip by clip)")
        tiles = batch // (len(camera) // frames)
        dirs = camera_directions(camera[::frames]).repeat(tiles, 1)
        times = None if camera.time is None else camera.time.reshape(-1, frames).double().repeat(tiles, 1)
        return dirs, times

    def _log_weights(self, camera: Camera | None, batch: int, frames: int, device) -> Callable:
        """A function of a packed set giving the rows' clip log-weights [b, N] (or None)."""
        c = self.config
        if camera is None or not (c.camera_aware or c.time_aware):
            return lambda rows, packed: None
        dirs, times = self._queries(camera, batch, frames)
        dirs = dirs.to(device)
        times = None if times is None else times.to(device)

        def log_w(rows: torch.Tensor, packed: tuple) -> torch.Tensor | None:
            _, _, _, clip_times, clip_dirs = packed
            out = None
            if c.camera_aware:
                out = camera_log_weights(dirs[rows], clip_dirs, c.camera_temperature)
            if c.time_aware and times is not None:
                d = circular_distance(times[rows][:, None, :], clip_times[None])  # [b, N, F]
                w = -(d ** 2).mean(dim=-1) / (2.0 * float(c.phase_temperature) ** 2)
                out = w if out is None else out + w
            return out

        return log_w

    @torch.no_grad()
    def predict_x0(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                   camera: Camera | None = None) -> torch.Tensor:
        """The exact posterior mean x̂0 [B, F, 3, S, S] (float64 inside, x_t's dtype out)."""
        self.check_clip(x_t)
        batch, frames = x_t.shape[:2]
        if tuple(x_t.shape[2:]) != self.latent_shape or frames != self.num_frames:
            raise UserError(f"the reference-video prior denoises clips of {self.num_frames} frames of "
                            f"{self.latent_shape}; got {tuple(x_t.shape)} (set prior.num_frames / prior.image_size)")
        emb = torch.as_tensor(embedding).reshape(batch, -1)[:, 0].long().cpu()
        if int(emb.min()) < 0 or int(emb.max()) >= len(self._sets):
            raise IndexError(f"embedding {emb.tolist()} out of range: {len(self._sets)} reference sets registered")
        device = x_t.device
        t = schedule.timesteps(t, batch, device, self.num_train_timesteps)
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod.double(), t, ndim=1)
        log_w = self._log_weights(camera, batch, frames, device)
        x = x_t.reshape(batch, frames, -1).double()
        out = torch.empty_like(x)
        for index in emb.unique().tolist():
            rows = (emb == index).nonzero().squeeze(-1).to(device)
            packed = self._packed_set(index, device)
            bank, sqnorm, clip_frames = packed[:3]
            out[rows] = exact_clip_denoise(x[rows], alpha[rows], sigma[rows], bank, clip_frames,
                                           log_w(rows, packed), sqnorm)
        return out.reshape(x_t.shape).to(x_t.dtype)

    @torch.no_grad()
    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ = (x_t − α_t x̂0) / σ_t for clips [B, F, 3, S, S]; `camera` holds the B·F clip cameras."""
        batch = x_t.shape[0]
        t = schedule.timesteps(t, batch, x_t.device, self.num_train_timesteps)
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod.double(), t, ndim=x_t.ndim)
        x0 = self.predict_x0(x_t, t, embedding, camera).double()
        return schedule.eps_from_x0(x_t.double(), x0, alpha, sigma).to(x_t.dtype)
