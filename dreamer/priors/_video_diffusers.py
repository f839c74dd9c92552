"""What the two diffusers video priors (AnimateDiff, zeroscope) share: Stable Diffusion's parts, on clips.

Both are a CLIP text encoder, an SD-style VAE and a UNet that takes latent clips. Everything but the
UNet is Stable Diffusion's (`StableDiffusionPrior`: loading, freezing, dtypes incl. the VAE's own,
text encoding with view variants, VAE mapping), so `LatentVideoPrior` subclasses it and adds the
frame axis: clips [B, F, 3, H, W] are encoded frame by frame to latents [B, F, 4, h, w] (× the VAE's
scaling factor), and the UNet sees diffusers' video layout [B, C, F, h, w]. `network()` is the
VideoPrior refusal (VSD/ESD do not run on clips).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from dreamer.errors import UserError
from dreamer.priors.stable_diffusion import StableDiffusionConfig, StableDiffusionPrior
from dreamer.priors.video import VideoPrior


def check_num_frames(family: str, num_frames: Any) -> None:
    """A one-line error unless `num_frames` is a positive integer."""
    if isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames < 1:
        raise UserError(f"{family} prior: num_frames must be a positive integer, got {num_frames!r}")


class LatentVideoPrior(VideoPrior, StableDiffusionPrior):
    """Stable Diffusion's text encoder and VAE around a video UNet taking [B, C, F, h, w].

    Subclasses set `config_class`, load their parts in `_load_parts` and set `text_per_frame`: True when
    the UNet wants the text embedding once per frame ([B·F, L, D], UNetMotionModel), False when it
    repeats it itself (UNet3DConditionModel).
    """

    text_per_frame: ClassVar[bool] = False
    # the subclass's settings (SD's fields + num_frames); StableDiffusionPrior.__init__ builds it when none is given
    # and loads the parts through the subclass's `_load_parts` (the video UNet instead of SD's 2D one)
    config_class: ClassVar[type[StableDiffusionConfig]]

    @classmethod
    def _load_parts(cls, config: StableDiffusionConfig, dtype: torch.dtype) -> dict[str, Any]:
        """tokenizer, text_encoder, vae, unet (the video UNet) and scheduler, from the config's weights."""
        raise NotImplementedError

    @classmethod
    def from_components(cls, tokenizer, text_encoder, vae, unet, scheduler, image_size: int | None = None,
                        device: str | torch.device = "cpu", dtype: str | torch.dtype = "auto",
                        config: StableDiffusionConfig | None = None) -> "LatentVideoPrior":
        """From constructed parts (`unet`: the subclass's video UNet); config None = `config_class(image_size=None)`."""
        return super().from_components(tokenizer, text_encoder, vae, unet, scheduler, image_size, device, dtype,
                                       config or cls.config_class(image_size=None))

    def _assemble(self, *, config, **parts) -> None:
        self.num_frames = int(config.num_frames)
        super()._assemble(config=config, **parts)

    def encode_images(self, rgb: torch.Tensor) -> torch.Tensor:
        """[B,F,3,H,W] in [0,1] -> latents [B,F,4,h,w] × scaling_factor, frame by frame, differentiable."""
        self.check_clip(rgb)
        B, Fr = rgb.shape[:2]
        return super().encode_images(rgb.flatten(0, 1)).unflatten(0, (B, Fr))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latents [B,F,4,h,w] -> [B,F,3,image_size,image_size] in [0,1]."""
        self.check_clip(z)
        B, Fr = z.shape[:2]
        return super().decode(z.flatten(0, 1)).unflatten(0, (B, Fr))

    def _model_output(self, net: torch.nn.Module, x_t: torch.Tensor, t: torch.Tensor,
                      embedding: torch.Tensor) -> torch.Tensor:
        """The UNet on x_t [B,F,C,h,w] (as diffusers' [B,C,F,h,w]); the output back as [B,F,C,h,w]."""
        self.check_clip(x_t)
        frames = x_t.shape[1]
        if self.text_per_frame:
            embedding = embedding.repeat_interleave(frames, dim=0)
        out = net(x_t.transpose(1, 2), t, encoder_hidden_states=embedding, return_dict=False)[0]
        return out.transpose(1, 2)
