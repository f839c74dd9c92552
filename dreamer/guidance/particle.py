"""VSD/ESD's particle model: a LoRA copy of the prior's network with a camera embedding.

`make_particle` picks the kind: priors with a denoising network (tiny, Stable Diffusion, SDXL,
IF) get `ParticleModel` below; a prior without one (the exact `reference` denoiser) gets
`ResidualParticle`: ε̂_particle = ε̂_prior + r_θ(x_t, t, c), a small convolutional residual whose
last layer starts at zero — the same "copy of the prior plus a trainable part, equal at the
start" with the trainable part outside the frozen model.

The copy gets peft LoRA adapters (rank r) on its attention projections (to_q, to_k, to_v,
to_out.0) and a small camera MLP, Linear(16 → D)–SiLU–Linear(D → D) of the flattened
camera-to-world matrix, whose output is added to the UNet's time embedding (through a forward
hook on `time_embedding`). LoRA's B matrices and the MLP's last layer start at zero, so the
particle model starts as an exact copy of the prior. Only the adapters and the MLP train.

`camera=None` gives the camera-free branch (a zero embedding); ESD needs it, which is why
training drops the camera with probability `camera_dropout`.

The text embedding is the caller's choice: VSD/ESD pass the plain (view-independent) prompt,
as threestudio's VSD does, since the camera already reaches the model through its embedding
(`VSDConfig.particle_view_dependent` passes "…, back view"-style text instead).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.priors.base import Prior

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


class CameraEmbedding(nn.Module):
    """[B, 4, 4] camera-to-world -> [B, D] added to the time embedding (zero at init)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, dim), nn.SiLU(), nn.Linear(dim, dim))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, c2w: torch.Tensor) -> torch.Tensor:
        return self.net(c2w.flatten(1).float())


class ParticleModel(nn.Module):
    """ε̂_lora(x_t, t, y, c): the prior's network plus LoRA and a camera embedding."""

    def __init__(self, prior: Prior, rank: int = 4) -> None:
        super().__init__()
        if rank < 1:
            raise UserError(f"LoRA rank must be >= 1, got {rank}")
        from peft import LoraConfig

        net = copy.deepcopy(prior.network()).float()  # the particle trains in fp32
        net.requires_grad_(False)
        net.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights=True, target_modules=LORA_TARGETS))
        self.net = net
        dim = _time_embedding_dim(net)
        self.camera_embedding = CameraEmbedding(dim).to(prior.alphas_cumprod.device)
        self._camera_offset: torch.Tensor | None = None
        net.time_embedding.register_forward_hook(self._add_camera)
        self._prior = [prior]  # a list: not a registered submodule (its weights are not ours to save)

    def _add_camera(self, module, inputs, output):
        return output if self._camera_offset is None else output + self._camera_offset.to(output.dtype)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def output(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
               camera: Camera | None) -> torch.Tensor:
        """The raw network output (the prior's prediction_type), float32, with grad to LoRA/MLP.

        camera None = the camera-free branch (no camera embedding, and no camera for a
        camera-conditioned prior).
        """
        prior = self._prior[0]
        self._camera_offset = None if camera is None else self.camera_embedding(camera.c2w.to(x_t.device))
        try:
            return prior.network_output(self.net, x_t.float(), t, embedding.float(), camera, dtype=torch.float32)
        finally:
            self._camera_offset = None

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                    camera: Camera | None) -> torch.Tensor:
        """ε̂_lora, float32."""
        prior = self._prior[0]
        return prior.output_to_epsilon(self.output(x_t, t, embedding, camera), x_t, t)


class ResidualParticle(nn.Module):
    """ε̂_prior(x_t, t, y, c) + r_θ(x_t, t, c) for priors without a network (see module doc)."""

    def __init__(self, prior: Prior, width: int = 32) -> None:
        super().__init__()
        channels = prior.latent_shape[0]
        self.conv_in = nn.Conv2d(channels, width, 3, padding=1)
        self.time = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.camera_embedding = CameraEmbedding(width)
        self.body = nn.Sequential(nn.SiLU(), nn.Conv2d(width, width, 3, padding=1), nn.SiLU())
        self.conv_out = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.to(prior.alphas_cumprod.device)
        self.width = width
        self._prior = [prior]

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.parameters())

    def output(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
               camera: Camera | None) -> torch.Tensor:
        """ε̂ (the reference prior predicts ε), float32, with grad to the residual only."""
        from diffusers.models.embeddings import get_timestep_embedding

        prior = self._prior[0]
        with torch.no_grad():
            base = prior.predict_noise(x_t, t, embedding, camera if prior.camera_conditioned else None).float()
        h = self.conv_in(x_t.float())
        emb = self.time(get_timestep_embedding(t.reshape(-1).float(), self.width).to(h.device))
        if camera is not None:
            emb = emb + self.camera_embedding(camera.c2w.to(h.device))
        return base + self.conv_out(self.body(h + emb[:, :, None, None]))

    def predict_eps(self, x_t: torch.Tensor, t: torch.Tensor, embedding: torch.Tensor,
                    camera: Camera | None) -> torch.Tensor:
        return self._prior[0].output_to_epsilon(self.output(x_t, t, embedding, camera), x_t, t)


def make_particle(prior: Prior, rank: int) -> nn.Module:
    """A LoRA particle model for network priors, a residual one otherwise."""
    try:
        prior.network()
    except UserError:
        return ResidualParticle(prior)
    return ParticleModel(prior, rank)


def _time_embedding_dim(net: nn.Module) -> int:
    emb = getattr(net, "time_embedding", None)
    linear = getattr(emb, "linear_2", None)
    if linear is None:
        raise UserError("VSD/ESD need a diffusers UNet with a `time_embedding` (UNet2DConditionModel)")
    return int(linear.out_features)
