"""The contract every diffusion prior fulfils — everything a guidance rule needs, nothing else.

Images come in channels-first, [B, 3, H, W] in [0, 1]. `encode_images` resizes to the prior's
`image_size`, maps to its input space (VAE latents × scale, or pixels in [−1, 1]) and stays
differentiable. `predict_noise` always returns ε, converting v-prediction inside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors import schedule


@dataclass
class PromptEmbedding:
    """A prompt encoded once per run.

    `cond` / `uncond` are tensors with a leading batch dimension of 1 (text tokens for text
    priors, an index into the prior's reference sets for the reference prior). `views` holds
    view-dependent variants ("front", "side", "back", "overhead") when the prior uses them.
    """

    prompt: str
    negative_prompt: str
    cond: torch.Tensor  # [1, ...]
    uncond: torch.Tensor  # [1, ...] the negative prompt (or the empty prompt)
    views: dict[str, torch.Tensor] = field(default_factory=dict)  # label -> [1, ...]
    empty: torch.Tensor | None = None  # [1, ...] the empty prompt (ISM's inversion); None = uncond

    def conditional(self, cameras: Camera | None, batch: int) -> torch.Tensor:
        """[B, ...] conditional embeddings, view-dependent when variants exist.

        For clips, `cameras` holds B·F cameras (clip by clip): each clip takes its first frame's view."""
        if self.views and cameras is not None:
            if len(cameras) % batch:
                raise ValueError(f"{len(cameras)} cameras for a batch of {batch}: a clip batch has B·F cameras")
            stride = len(cameras) // batch
            return torch.cat([self.views[label] for label in cameras[::stride].view_label], dim=0)
        return self.cond.expand(batch, *self.cond.shape[1:])

    def unconditional(self, batch: int) -> torch.Tensor:
        return self.uncond.expand(batch, *self.uncond.shape[1:])

    def empty_prompt(self, batch: int) -> torch.Tensor:
        e = self.uncond if self.empty is None else self.empty
        return e.expand(batch, *e.shape[1:])


class Prior(torch.nn.Module):
    """A frozen text-conditioned diffusion model.

    Attributes set by subclasses:
      alphas_cumprod: [T] float tensor (ᾱ_t) on the prior's device
      num_train_timesteps: T
      image_size: side of the square image the prior takes, in pixels
      latent_shape: (C, h, w) of `encode_images`' output
      camera_conditioned: True when `predict_noise` uses `camera`
      needs_camera: True when `predict_noise` refuses `camera=None` (a prior that renders its estimate)
      views_per_sample: V, how many views the prior denoises jointly as one sample (multi-view priors:
        a batch is B/V sets of V views, set-major; guidance rules draw t once per set)
      frame_noise_share: ρ, the share of noise variance a clip's frames have in common in the noise the
        prior was trained on (video priors; 0 = independent frames). Whoever draws noise for the prior
        draws it so: `schedule.frame_noise(shape, generator, prior.frame_noise_share)`
    """

    alphas_cumprod: torch.Tensor
    num_train_timesteps: int
    image_size: int
    latent_shape: tuple[int, int, int]
    camera_conditioned: bool = False
    needs_camera: bool = False
    views_per_sample: int = 1
    frame_noise_share: float = 0.0
    embedded: ClassVar[bool] = False  # True for priors that ship with dreamer (no download, CPU-sized); they know
                                      # only the shape library's vocabulary
    exact: ClassVar[bool] = False  # True for exact denoisers over the library's own renders (an oracle: nothing to
                                   # denoise towards outside the library, so an unknown prompt is an error)
    is_video: ClassVar[bool] = False  # True for video priors (dreamer.priors.video): tensors carry a frame axis

    def mean_object_colour(self) -> torch.Tensor | None:
        """The mean RGB [3] in [0, 1] of the objects the prior learnt, where it is known (the embedded priors: their
        training palette), or None. An unconditional estimate leans to this colour, and CFG extrapolates away from
        it (SDS's `uncond_debias`)."""
        return None

    def text_vector(self, embedding: PromptEmbedding) -> torch.Tensor:
        """[D] one vector for a prompt, the mean of its conditional token features: what an amortised
        generator (dreamer.amortized) is conditioned on. A prior whose conditioning is not text features
        (the reference prior's is an index into its reference sets) refuses in one line."""
        cond = embedding.cond
        if not cond.is_floating_point() or cond.ndim != 3:
            raise UserError(f"prior {type(self).__name__} has no text features to condition a generator on: "
                            "use a text prior such as tiny")
        return cond[0].float().mean(dim=0)

    @classmethod
    def declared_views(cls, config) -> int:
        """`views_per_sample` of the prior `config` builds, known before loading it (run validation)."""
        return cls.views_per_sample

    def encode_prompt(self, prompt: str, negative_prompt: str = "", view_dependent: bool = False) -> PromptEmbedding:
        raise NotImplementedError

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] in [0,1] -> z [B, *latent_shape], differentiable."""
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, *latent_shape] -> [B,3,H,W] in [0,1]."""
        raise NotImplementedError

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                      camera: Camera | None = None) -> torch.Tensor:
        """ε̂ [B, *latent_shape] for noisy inputs x_t, integer timesteps t [B] and embeddings [B, ...].

        Called without grad by guidance rules. `camera=None` means camera-free (for
        camera-conditioned priors: the dropped-camera branch).
        """
        raise NotImplementedError

    # -- the network itself, for rules that fine-tune a copy of it (VSD/ESD's LoRA particle) --

    prediction_type: str = "epsilon"  # what `network_output` predicts: "epsilon", "v_prediction" or "sample"

    def network(self) -> torch.nn.Module:
        """The denoising network (a diffusers UNet) that `network_output` runs."""
        raise UserError(f"the {type(self).__name__} has no denoising network to fine-tune: VSD and ESD need a "
                        f"network prior (tiny, sd15, sd21, sd21-base, deepfloyd-if)")

    def network_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                       camera: Camera | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """`net`'s raw float32 output (per `prediction_type`) on this prior's inputs; keeps the graph.

        `net` is `network()` or a copy of it (LoRA) whose weights are in `dtype` (None: the prior's).
        predict_noise = output_to_epsilon(network_output(network())).
        """
        raise UserError(f"the {type(self).__name__} has no denoising network to fine-tune")

    def output_to_epsilon(self, output: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """A raw network output (per `prediction_type`) as ε̂, in float32 (see `schedule.eps_from_output`)."""
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod, schedule.timesteps(t, device=x_t.device), x_t.ndim)
        return schedule.eps_from_output(output.float(), x_t.float(), alpha, sigma, self.prediction_type)

    def training_target(self, z: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What `network_output` should predict for x_t = α z + σ ε: ε, v = α ε − σ z, or z."""
        alpha, sigma = schedule.alphas_sigmas(self.alphas_cumprod, schedule.timesteps(t, device=z.device), z.ndim)
        return schedule.training_target(z, eps, alpha, sigma, self.prediction_type)
