"""Pure math shared by every guidance rule — written once, no state.

Notation (METHODS.md): ᾱ_t = alphas_cumprod[t], α_t = √ᾱ_t, σ_t = √(1 − ᾱ_t), x_t = α_t z + σ_t ε.

Gradient convention (stated once, here): `inject_gradient(z, g)` returns a loss whose gradient
with respect to z is g / B, B the batch size. Every rule builds its loss with it, so "divide by
B or not" has exactly one answer in this project: divide.

Shapes: z, ε, g are [B, C, h, w] (the prior's input space); t is [B] long. Per-sample scalars
are returned as [B, 1, 1, 1] so they broadcast against z.
"""

from __future__ import annotations

from typing import Literal

import torch

from dreamer.cameras import Camera
from dreamer.priors.base import Prior, PromptEmbedding
# The schedule math lives in dreamer.priors.schedule; add_noise / alphas_sigmas are re-exported for the rules.
from dreamer.priors.schedule import add_noise, alphas_sigmas, timesteps, x0_from_eps  # noqa: F401

WeightKind = Literal["sds", "uniform", "fantasia", "sigma_over_alpha"]
CFGConvention = Literal["standard", "plus_one"]

WEIGHT_KINDS: tuple[str, ...] = ("sds", "uniform", "fantasia", "sigma_over_alpha")
CFG_CONVENTIONS: tuple[str, ...] = ("standard", "plus_one")


def weight(t: torch.Tensor | int, alphas_cumprod: torch.Tensor, kind: WeightKind = "sds",
           ndim: int = 4) -> torch.Tensor:
    """Timestep weight w(t), [B, 1, 1, 1].

    "sds": 1 − ᾱ_t = σ_t² (DreamFusion default); "uniform": 1; "fantasia": α_t·σ_t²;
    "sigma_over_alpha": σ_t/α_t (ISM/TSM).
    """
    a, s = alphas_sigmas(alphas_cumprod, t, ndim)
    if kind == "sds":
        return s * s
    if kind == "uniform":
        return torch.ones_like(a)
    if kind == "fantasia":
        return a * s * s
    if kind == "sigma_over_alpha":
        return s / a
    raise ValueError(f"unknown weighting {kind!r}; expected one of {WEIGHT_KINDS}")


def classifier_free_guidance(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, scale: float,
                             convention: CFGConvention = "standard") -> torch.Tensor:
    """"standard": ε_u + s(ε_c − ε_u). "plus_one": ε_c + s(ε_c − ε_u), i.e. standard at s + 1."""
    if convention == "standard":
        return eps_uncond + scale * (eps_cond - eps_uncond)
    if convention == "plus_one":
        return eps_cond + scale * (eps_cond - eps_uncond)
    raise ValueError(f"unknown CFG convention {convention!r}; expected one of {CFG_CONVENTIONS}")


def rescale_cfg(x_t: torch.Tensor, eps_cfg: torch.Tensor, eps_cond: torch.Tensor, t: torch.Tensor,
                alphas_cumprod: torch.Tensor, views: int, amount: float) -> torch.Tensor:
    """MVDream's CFG rescale as an ε̂: the CFG estimate x̂0 is scaled so that its std over each sample (all
    V views of a set together) matches the conditional x̂0's, then mixed with the unscaled one:
    x̂0' = amount·(std_cond / std_cfg)·x̂0_cfg + (1 − amount)·x̂0_cfg; returned as ε̂' = (x_t − α x̂0') / σ.

    A large CFG scale inflates x̂0 (saturated colours: pink read as red); amount 0 returns eps_cfg.
    """
    if amount == 0:
        return eps_cfg
    from dreamer.priors import schedule

    alpha, sigma = schedule.alphas_sigmas(alphas_cumprod, t, x_t.ndim)
    x0_cfg = schedule.x0_from_eps(x_t.float(), eps_cfg.float(), alpha, sigma)
    x0_cond = schedule.x0_from_eps(x_t.float(), eps_cond.float(), alpha, sigma)
    per_set = lambda x: x.reshape(x.shape[0] // views, -1).std(dim=1)  # noqa: E731
    factor = (per_set(x0_cond) + 1e-8) / (per_set(x0_cfg) + 1e-8)  # [B / V]
    factor = factor.repeat_interleave(views).reshape(-1, *([1] * (x_t.ndim - 1)))
    x0 = amount * factor * x0_cfg + (1 - amount) * x0_cfg
    return schedule.eps_from_x0(x_t.float(), x0, alpha, sigma).to(eps_cfg.dtype)


def chroma_cfg(eps_cfg: torch.Tensor, eps_cond: torch.Tensor, eps_uncond: torch.Tensor,
               chroma_scale: float | None) -> torch.Tensor:
    """CFG whose chroma (each pixel's deviation from its channel mean) is taken at `chroma_scale` instead of
    the full scale, while the grey part (the channel mean, which carries shape and shading) keeps the
    full CFG of eps_cfg: ε̂' = ε̂_cfg − chroma(ε̂_cfg) + chroma(ε̂_u + s_c(ε̂_c − ε̂_u)). None returns eps_cfg.

    Why: an unconditional estimate whose colours lean towards the training set's mean (warm, for the
    embedded priors) makes CFG push every colour away from that mean, so grey and white turn cyan-green and
    brown turns red; with s_c = 1 the colour is the conditional estimate's, which matches the prompt
    (docs/benchmarks.md, "issue27-colour"). The channel ops are per pixel and linear, so taking them on
    ε̂ equals taking them on x̂0. Only for pixel-space RGB priors (channels on dim 1).
    """
    if chroma_scale is None:
        return eps_cfg
    chroma = lambda x: x - x.mean(dim=1, keepdim=True)  # noqa: E731
    colour = eps_uncond + chroma_scale * (eps_cond - eps_uncond)
    return eps_cfg - chroma(eps_cfg) + chroma(colour)


def object_colour_cfg(eps_cfg: torch.Tensor, eps_cond: torch.Tensor, eps_uncond: torch.Tensor,
                      opacity: torch.Tensor, colour_scale: float | None) -> torch.Tensor:
    """CFG whose object colour (the opacity-weighted mean chroma of each view) is taken at `colour_scale`,
    while everything else keeps the full CFG of eps_cfg: the outline against the background, shading and
    the colour's variation across the object. With Δ = chroma(ε̂_u + s_c(ε̂_c − ε̂_u)) − chroma(ε̂_cfg)
    (chroma: each pixel's deviation from its channel mean) and m the render's opacity at the prior's size,
    ε̂' = ε̂_cfg + m·δ, δ = Σ m·Δ / Σ m over a view's pixels: one colour change for the object, which a
    pixel it half covers shows at half. For an opaque object (m ∈ {0, 1}) its mean colour becomes the
    target's; a faint one moves only as far as it is opaque (the least-squares δ = Σ m·Δ / Σ m² instead
    moved the whole image's colour when the object was a ghost, and faded the objects more: docs/benchmarks.md,
    "issue27-object-colour"). None returns eps_cfg.

    Why: `chroma_cfg` at scale 1 fixes the tint that a warm unconditional estimate gives grey and white
    objects under CFG, but it also takes the object's chroma contrast with a coloured background at scale 1,
    and objects fade. Here only one colour per view moves. Linear per view, so taking it on ε̂ equals
    taking it on x̂0. Shapes: ε̂ [..., 3, h, w] (pixel-space RGB priors; views or clip frames in front),
    opacity [..., 1, h, w] in [0, 1].
    """
    if colour_scale is None:
        return eps_cfg
    chroma = lambda x: x - x.mean(dim=-3, keepdim=True)  # noqa: E731
    colour = eps_uncond + colour_scale * (eps_cond - eps_uncond)
    m = opacity.to(eps_cfg.dtype)
    shift = (m * (chroma(colour) - chroma(eps_cfg))).sum((-2, -1), keepdim=True) / \
        m.sum((-2, -1), keepdim=True).clamp_min(1e-6)  # δ [..., 3, 1, 1], one per view
    return eps_cfg + m * shift


def resize_opacity(alpha: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Renders' opacity [..., H, W, 1] -> [..., 1, h, w] at the prior's size, resized as the prior resizes the
    renders (bilinear, antialiased when shrinking: priors.pixel_space.encode_pixels)."""
    lead = alpha.shape[:-3]
    a = alpha.detach().movedim(-1, -3).reshape(-1, 1, *alpha.shape[-3:-1])
    if tuple(a.shape[-2:]) != tuple(size):
        shrink = a.shape[-1] > size[-1] or a.shape[-2] > size[-2]
        a = torch.nn.functional.interpolate(a, size=size, mode="bilinear", align_corners=False, antialias=shrink)
    return a.reshape(*lead, 1, *size).clamp(0.0, 1.0)


def debias_unconditional(eps_cfg: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor, opacity: torch.Tensor,
                         mean_colour: torch.Tensor, scale: float, convention: CFGConvention, amount: float) -> torch.Tensor:
    """CFG as if the unconditional estimate's object did not lean to the prior's mean object colour: its x̂0 is moved
    by −amount·chroma(mean_colour) (in the prior's [−1, 1] pixels, ×2) where the render is opaque, m, before CFG
    extrapolates from it. x̂0 = (x_t − σ ε̂)/α, so that is ε̂_u + (α/σ)·m·2·amount·chroma(mean_colour), which enters
    ε̂_cfg with ε̂_u's coefficient: 1 − s ("standard"), −s ("plus_one"). amount 0 returns eps_cfg.

    Why: an unconditional branch learns the data's mean, and the embedded priors' palette is warm (five warm colours
    against one green, one blue and one purple), so CFG at 5 turns a grey or white object teal
    (docs/benchmarks.md, "issue27-object-colour"). Shapes: ε̂ [B, 3, h, w]; α, σ [B, 1, 1, 1]; opacity [B, 1, h, w];
    mean_colour [3] RGB in [0, 1].
    """
    if amount == 0:
        return eps_cfg
    weight = (1.0 - scale) if convention == "standard" else -scale
    bias = 2.0 * (mean_colour - mean_colour.mean()).to(eps_cfg).view(1, 3, 1, 1)
    return eps_cfg + weight * (alpha_t / sigma_t) * opacity.to(eps_cfg) * amount * bias


def inject_gradient(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Scalar loss with ∂loss/∂z = g / B (B = z.shape[0]); its value 0.5·‖g‖²/B monitors ‖g‖.

    Computed in float32 (z may be fp16); g carries no graph.
    """
    z = z.float()
    target = (z - g.float()).detach()
    return 0.5 * (z - target).pow(2).sum() / z.shape[0]


def nan_guard(g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace non-finite entries of g by 0; returns (clean g, 0-d long count of replaced entries)."""
    bad = ~torch.isfinite(g)
    return torch.where(bad, torch.zeros_like(g), g), bad.sum()


def clip_gradient(g: torch.Tensor, max_value: float) -> torch.Tensor:
    """Elementwise clamp of g to [−max_value, max_value]."""
    if max_value <= 0:
        raise ValueError(f"max_value must be positive, got {max_value}")
    return g.clamp(-max_value, max_value)


def pixelwise_clip(g: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per-pixel rescale (TSM): scale = min over channels of min(1, thr/|g|), channels on dim 1.

    Equivalently scale = min(1, thr / max_c |g|); each pixel's vector keeps its direction.

    Where the clip goes. Dreamer XL clips the gradient of the 1024 px image SDXL encodes, after the
    render has been upsampled to it. Let U be the upsample from r px to P px (k = P/r). The render's
    gradient is Uᵀ applied to the P px gradient: each render pixel sums the gradients of the P px
    pixels it feeds, with weights that add up to k² (nearest: its k×k block, weight 1 each;
    bilinear with align_corners False and an integer k: per axis, weights that add up to k, border
    pixels included, e.g. 0.25, 0.75, 0.75, 0.25 for k = 2). Hence
      - clipping at P px and then applying Uᵀ (ISM/TSM do this: `upsample_to`, then this clip) is
        the authors' operation exactly, for any gradient: the render's per-pixel bound is k²·thr;
      - clipping the render's gradient at k²·thr instead equals it only when the P px gradient is
        constant over each pixel's footprint (then Uᵀ g = k²·g); for any other gradient the two
        differ, because the clip is not linear (one large P px gradient in a block is cut to thr
        at P px, but to k²·thr at r px);
      - clipping the render at thr, without k², is k² times stricter than the authors (4× for a
        512 px render under SDXL's 1024 px).
    """
    peak = g.abs().amax(dim=-3, keepdim=True)  # [B, 1, h, w] ([B, F, 1, h, w] for clips: channels on dim −3)
    scale = (threshold / peak.clamp_min(torch.finfo(g.dtype).tiny)).clamp(max=1.0)
    return g * scale


def amplify_motion(eps: torch.Tensor, factor: float) -> torch.Tensor:
    """Motion amplification (Align Your Gaussians) of a prediction on clips [B, F, ...]: its mean over
    the frames plus `factor`·(each frame − the mean). factor 1 leaves it unchanged; > 1 exaggerates
    what differs between frames, i.e. the motion the prior asks for."""
    mean = eps.mean(dim=1, keepdim=True)
    return mean + factor * (eps - mean)


def upsample_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """[B, H, W, C] renders (channels last) bilinearly upsampled to [B, size, size, C] when H and W are
    both below `size`; returned unchanged otherwise. Keeps the graph.

    This is the resize every prior applies itself before encoding (bilinear, align_corners False;
    antialiasing changes nothing when enlarging), so a prior handed the result resizes nothing more
    and encodes the same values. ISM/TSM call it to put the per-pixel clip on the gradient of the
    image the prior sees, as Dreamer XL does (see `pixelwise_clip`).
    """
    height, width = images.shape[-3], images.shape[-2]
    if height >= size or width >= size:
        return images
    if images.ndim == 5:  # clips [B, F, H, W, C]: frame by frame
        return upsample_to(images.flatten(0, 1), size).unflatten(0, images.shape[:2])
    pixels = images.permute(0, 3, 1, 2)
    pixels = torch.nn.functional.interpolate(pixels, size=(size, size), mode="bilinear", align_corners=False)
    return pixels.permute(0, 2, 3, 1)


def depth_image(depth: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """[B, H, W, 1] expected depth (0 where empty) -> [B, H, W, 3] in [0, 1], keeping the graph.

    The disparity 1/depth, min-max normalised per image over the covered pixels (the nearest pixel 1,
    the farthest covered pixel 0), empty pixels 0, the same value in the three channels. This is the
    image LucidDreamer encodes on its depth steps (its renderer returns such a normalised disparity).
    """
    covered = depth > eps
    zeros = torch.zeros_like(depth)
    disparity = torch.where(covered, 1.0 / depth.clamp_min(eps), zeros)
    image_dims = (-3, -2, -1)  # per image; clips [B, F, H, W, 1] are normalised frame by frame
    far = torch.where(covered, disparity, torch.full_like(disparity, float("inf"))).amin(dim=image_dims, keepdim=True)
    far = torch.where(torch.isfinite(far), far, torch.zeros_like(far))  # an image with nothing covered
    near = disparity.amax(dim=image_dims, keepdim=True)
    normalised = torch.where(covered, (disparity - far) / (near - far).clamp_min(eps), zeros)
    return normalised.clamp(0.0, 1.0).expand(*normalised.shape[:-1], 3)


def ddim_step(x_a: torch.Tensor, eps: torch.Tensor, a: torch.Tensor | int, b: torch.Tensor | int,
              alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM move a → b with noise estimate ε (denoising for b < a, inversion for b > a).

    x̂0 = (x_a − σ_a ε)/α_a;  x_b = α_b x̂0 + σ_b ε. Computed in float32 (or better), returned in x_a's dtype.
    """
    batch, device = x_a.shape[0], x_a.device
    aa, sa = alphas_sigmas(alphas_cumprod, timesteps(a, batch, device), x_a.ndim)
    ab, sb = alphas_sigmas(alphas_cumprod, timesteps(b, batch, device), x_a.ndim)
    dtype = torch.promote_types(aa.dtype, x_a.dtype)
    x, e = x_a.to(dtype), eps.to(dtype)
    x0 = x0_from_eps(x, e, aa, sa)
    return (ab * x0 + sb * e).to(x_a.dtype)


def prior_dtype(prior: Prior) -> torch.dtype:
    """The dtype the prior's network runs in.

    `prior.model_dtype` or `prior.dtype` if set, else its first floating parameter's, else float32.
    """
    for name in ("model_dtype", "dtype"):
        dtype = getattr(prior, name, None)
        if isinstance(dtype, torch.dtype):
            return dtype
    for p in prior.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _repeat_cameras(cameras: Camera, n: int) -> Camera:
    """The batch of cameras repeated n times along the batch (matching torch.cat of n copies)."""
    return Camera.cat([cameras] * n)


def predict_eps(prior: Prior, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                cameras: Camera | None = None) -> torch.Tensor:
    """One prior call: x_t cast to the prior's dtype, ε̂ returned in x_t's dtype.

    `cameras` reaches the prior only when it is camera-conditioned. Call under torch.no_grad().
    """
    camera = cameras if prior.camera_conditioned else None
    eps = prior.predict_noise(x_t.to(prior_dtype(prior)), t, embedding, camera)
    return eps.to(x_t.dtype)


def predict_conditional(prior: Prior, x_t: torch.Tensor, t: torch.Tensor, embedding: PromptEmbedding,
                        cameras: Camera | None, view_dependent: bool = True) -> torch.Tensor:
    """ε̂_cond alone (what CFG at scale 1 equals): one prior call on the conditional batch."""
    cond = embedding.conditional(cameras if view_dependent else None, x_t.shape[0])
    return predict_eps(prior, x_t, t, cond, cameras if prior.camera_conditioned else None)


def predict_cfg(prior: Prior, x_t: torch.Tensor, t: torch.Tensor, embedding: PromptEmbedding,
                cameras: Camera | None, scale: float, convention: CFGConvention = "standard",
                view_dependent: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Classifier-free-guided ε̂ from ONE prior call on the batch [cond; uncond] (concat on dim 0).

    Cond embeddings are view-dependent when `view_dependent` and the embedding has variants
    (labels from `cameras`); uncond is the negative prompt. Cameras reach the prior (both
    halves) only when it is camera-conditioned. Returns (ε̂_cfg, ε̂_cond, ε̂_uncond), each
    [B, C, h, w] in x_t's dtype. Call under torch.no_grad().
    """
    batch = x_t.shape[0]
    cond = embedding.conditional(cameras if view_dependent else None, batch)
    uncond = embedding.unconditional(batch)
    x_in = torch.cat([x_t, x_t], dim=0)
    t_in = torch.cat([t, t], dim=0)
    emb_in = torch.cat([cond, uncond.to(cond.dtype)], dim=0)
    cams_in = _repeat_cameras(cameras, 2) if cameras is not None and prior.camera_conditioned else None
    eps_cond, eps_uncond = predict_eps(prior, x_in, t_in, emb_in, cams_in).chunk(2, dim=0)
    return classifier_free_guidance(eps_uncond, eps_cond, scale, convention), eps_cond, eps_uncond


def predict_many(prior: Prior, parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, Camera | None]]) -> list[torch.Tensor]:
    """Several prior calls as ONE batched call: parts = [(x, t [B], embeddings [B, ...], cameras), ...].

    Cameras must be all given or all None (they are concatenated in order). Returns each part's
    ε̂ in its x's dtype. Call under torch.no_grad().
    """
    xs = torch.cat([p[0] for p in parts])
    ts = torch.cat([p[1] for p in parts])
    embs = torch.cat([p[2].to(parts[0][2].dtype) for p in parts])
    cams = [p[3] for p in parts]
    camera = None
    if prior.camera_conditioned and cams[0] is not None:
        camera = Camera.cat(cams)
    eps = predict_eps(prior, xs, ts, embs, camera)
    return list(eps.split([p[0].shape[0] for p in parts]))


def check_timestep_range(rule: str, lo: float, hi: float) -> None:
    """One-line UserError unless 0 <= lo <= hi <= 1 (timestep fractions of a rule's config)."""
    from dreamer.errors import UserError

    if not 0.0 <= lo <= hi <= 1.0:
        raise UserError(f"{rule} needs 0 <= t_min <= t_max <= 1, got t_min={lo}, t_max={hi}")


def check_choice(rule: str, key: str, value: str, choices: tuple[str, ...]) -> None:
    """One-line UserError unless value is one of choices."""
    from dreamer.errors import UserError

    if value not in choices:
        raise UserError(f"{rule}.{key} must be one of {choices}, got {value!r}")
