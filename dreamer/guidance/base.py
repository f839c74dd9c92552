"""The contract every guidance rule (SDS, VSD, ESD, ISM, TSM, ASD) fulfils.

Every rule's config derives from `GuidanceConfig`, which declares what the trainer reads of any
rule (no hasattr/getattr probes): `view_dependent_prompt`, `trainable_lr`, `particle_count`,
`uses_depth` / `uses_alpha` (whether the trainer passes the renders' depth / opacity to `forward`;
`render_inputs` builds those keywords), `takes_images` /
`takes_clips` (whether it runs with an image prior on renders, with a video prior on clips) and
`takes_view_sets` (whether it runs with a multi-view prior, whose batches are sets of
`Prior.views_per_sample` views sharing one t: `encode_and_draw` draws t per set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from dreamer.cameras import Camera
from dreamer.guidance import functional as F
from dreamer.priors.base import PromptEmbedding, Prior
from dreamer.priors.schedule import frame_noise


@dataclass
class GuidanceConfig:
    """What every rule's config offers the trainer; rules override the two properties when they
    train something of their own (VSD/ESD's LoRA) or optimise several particles."""

    view_dependent_prompt: bool = False  # encode "…, front/side/back/overhead view" prompt variants (when the prior has them)

    @property
    def trainable_lr(self) -> float | None:
        """Learning rate of the parameters the rule trains itself (`Guidance.trainable_parameters`); None: none."""
        return None

    @property
    def particle_count(self) -> int:
        """How many 3D particles the rule optimises side by side (1: one asset)."""
        return 1

    @property
    def takes_images(self) -> bool:
        """Whether the rule runs on single renders [B, H, W, 3] with an image prior."""
        return True

    @property
    def takes_clips(self) -> bool:
        """Whether the rule runs on clips [B, F, H, W, 3] with a video prior (its maths is elementwise in z)."""
        return True

    @property
    def takes_view_sets(self) -> bool:
        """Whether the rule runs with a multi-view prior (`Prior.views_per_sample` > 1) on sets of views."""
        return True

    @property
    def uses_depth(self) -> bool:
        """Whether `Guidance.forward` wants the renders' depth (`depth=`); the trainer passes it only then."""
        return False

    @property
    def uses_alpha(self) -> bool:
        """Whether `Guidance.forward` wants the renders' opacity (`alpha=`); the trainer passes it only then."""
        return False

    def render_inputs(self, depth: torch.Tensor, alpha: torch.Tensor) -> dict[str, torch.Tensor]:
        """The keywords of `Guidance.forward` that the rule declared it wants, from a render's depth and alpha
        (shaped as the rule's images: [B, H, W, 1], or [B, F, H, W, 1] for clips)."""
        inputs = {"depth": depth} if self.uses_depth else {}
        return inputs | ({"alpha": alpha} if self.uses_alpha else {})


@dataclass
class GuidanceOutput:
    loss: torch.Tensor  # scalar; backward() puts the rule's gradient on the images
    grad_norm: torch.Tensor  # scalar, ‖g‖ averaged over the batch (monitoring)
    t: torch.Tensor  # [B] integer timesteps used
    extras: dict[str, Any] = field(default_factory=dict)


def per_view(per_sample: torch.Tensor, views: int) -> torch.Tensor:
    """[N, ...] values drawn once per sample -> [N·V, ...], each repeated for the V views of its set."""
    return per_sample if views == 1 else per_sample.repeat_interleave(views, dim=0)


def channels_first(images: torch.Tensor) -> torch.Tensor:
    """Renders [B, H, W, 3] -> [B, 3, H, W]; clips [B, F, H, W, 3] -> [B, F, 3, H, W]."""
    if images.ndim == 5:
        return images.permute(0, 1, 4, 2, 3)
    return images.permute(0, 3, 1, 2)


class Guidance(torch.nn.Module):
    """Turns a prior's score on rendered images into a loss.

    Constructed with (config, prior, total_steps, generator); randomness (timesteps, noise) is drawn
    from the given torch.Generator and the rule's timestep schedule only.
    """

    def __init__(self, prior: Prior, total_steps: int, generator: torch.Generator):
        super().__init__()
        self.prior = prior
        self.total_steps = total_steps
        self.generator = generator

    def forward(self, images: torch.Tensor, embedding: PromptEmbedding, cameras: Camera,
                step: int, depth: torch.Tensor | None = None, alpha: torch.Tensor | None = None) -> GuidanceOutput:
        """images: [B, H, W, 3] renders in [0, 1] (channels last, carrying the graph).

        depth: [B, H, W, 1] the renders' expected depth (0 where empty, carrying the graph), or None.
        alpha: [B, H, W, 1] the renders' opacity, or None.
        The trainer passes each, as a keyword, only to rules whose config declares `uses_depth` / `uses_alpha`
        (ISM's depth steps; SDS's object colour); a rule that declares one must accept it, the others may omit
        the argument.
        """
        raise NotImplementedError

    # -- the steps every rule shares: encode and draw first, guard/clip/inject last

    schedule: "object"  # the rule's TimestepSchedule (set by subclasses)

    def encode_and_draw(self, images: torch.Tensor, step: int, pixel_hook=None):
        """(z [B, C, h, w] carrying the graph, t [B], ε like z): encode the renders, then draw t, then ε.

        Clips ([B, F, H, W, 3] renders, for a video prior) give z [B, F, C, h, w]; one t per clip.
        `pixel_hook` (optional) is registered on the renders' gradient as [B, 3, H, W] ([B, F, 3, H, W]
        for clips; TSM's per-pixel clip).
        """
        pixels = channels_first(images)
        if pixel_hook is not None and pixels.requires_grad:
            pixels.register_hook(pixel_hook)
        z = self.prior.encode_images(pixels)
        t = per_view(self.schedule.sample(step, self.samples(z.shape[0]), self.generator, device=z.device),
                     self.prior.views_per_sample)
        eps = frame_noise(z.shape, self.generator, self.prior.frame_noise_share).to(z.device, z.dtype)
        return z, t, eps

    def samples(self, batch: int) -> int:
        """How many samples a batch of `batch` renders holds: sets of the prior's `views_per_sample` views."""
        views = self.prior.views_per_sample
        if batch % views:
            raise ValueError(f"{batch} renders are not whole sets of the prior's {views} views")
        return batch // views

    @staticmethod
    def inject(z: torch.Tensor, g: torch.Tensor, t: torch.Tensor, grad_clip: float | None,
               extras: dict[str, Any]) -> GuidanceOutput:
        """NaN guard, optional elementwise clip, then the loss with ∂loss/∂z = g/B."""
        g, extras["nonfinite"] = F.nan_guard(g.detach())
        if grad_clip is not None:
            g = F.clip_gradient(g, grad_clip)
        return GuidanceOutput(loss=F.inject_gradient(z, g), grad_norm=g.flatten(1).norm(dim=1).mean(), t=t,
                              extras=extras)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters the rule trains itself (VSD/ESD LoRA); empty for SDS."""
        return []

    def checkpoint_state(self) -> dict[str, torch.Tensor]:
        """What a checkpoint keeps of the rule: its trainable parameters only (never the frozen prior
        or the frozen copy under a LoRA). Restore with load_state_dict(..., strict=False)."""
        trainable = {id(p) for p in self.trainable_parameters()}
        return {k: p.detach().clone() for k, p in self.named_parameters() if id(p) in trainable}
