"""The amortised generator: a prompt's text vector -> three feature planes -> the NeRF that draws them.

A small triplane generator in the manner of ATT3D / LATTE3D: a mapping MLP writes coarse planes,
shared upsampling convolutions refine them, and one decoder MLP (density, colour), shared by every
prompt, reads them. Rendering is the project's own NeRF (`dreamer.representations.nerf`) with its
trainable grid replaced by the planes of the prompt at hand, so a generated asset renders, meshes and
exports exactly as a per-prompt NeRF does; `snapshot` turns one prompt's planes into such a plain NeRF.

Where ScaleDreamer's Hyper-iNGP writes the decoder's weights from the text over a shared hash grid,
this writes the planes and shares the decoder: planes carry the shape, which is what changes most
between prompts, and a pure-PyTorch triplane is cheap on a CPU where a hash grid is not
(dreamer/representations/grid_encoding.py).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dreamer.amortized.config import GeneratorConfig
from dreamer.cameras import Camera
from dreamer.representations.grid_encoding import sample_triplane
from dreamer.representations.nerf import NeRF, NeRFConfig


class PlanesEncoding(nn.Module):
    """The NeRF's encoding when planes come from outside: `planes` [3, C, R, R] is set before each
    render (it carries the generator's graph); no parameters of its own."""

    def __init__(self, features: int):
        super().__init__()
        self.out_dim = 3 * features
        self.planes: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [S, 3] in [−1, 1]³ -> [S, 3C]
        if self.planes is None:
            raise RuntimeError("PlanesEncoding: set .planes before rendering")
        return sample_triplane(self.planes, x)


class TriplaneGenerator(nn.Module):
    """Text vectors [N, D] -> planes [N, 3, plane_features, R, R] (xy, xz, yz)."""

    def __init__(self, text_dim: int, config: GeneratorConfig):
        super().__init__()
        c = self.config = config.validate()
        s, w = c.seed_resolution, c.mapping_width
        self.mapping = nn.Sequential(nn.Linear(text_dim, w), nn.SiLU(), nn.Linear(w, w), nn.SiLU())
        self.to_seed = nn.Linear(w, 3 * c.channels * s * s)
        self.plane_embedding = nn.Parameter(torch.zeros(3, c.channels, s, s))  # tells the shared convs which plane
        layers: list[nn.Module] = []
        for _ in range(int(math.log2(c.plane_resolution // s))):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c.channels, c.channels, 3, padding=1), nn.SiLU()]
        self.upsample = nn.Sequential(*layers)
        self.to_planes = nn.Conv2d(c.channels, c.plane_features, 3, padding=1)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        c, n = self.config, text.shape[0]
        s = c.seed_resolution
        seed = self.to_seed(self.mapping(text)).view(n, 3, c.channels, s, s) + self.plane_embedding
        planes = self.to_planes(self.upsample(seed.view(n * 3, c.channels, s, s)))
        return planes.view(n, 3, c.plane_features, c.plane_resolution, c.plane_resolution)


def nerf_config(config: GeneratorConfig, occupancy: bool) -> NeRFConfig:
    """The NeRF settings a generated asset renders with (white background, as the per-prompt presets)."""
    return NeRFConfig(grid="triplane", grid_resolution=config.plane_resolution, grid_features=config.plane_features,
                      mlp_hidden=config.mlp_hidden, mlp_layers=1, num_samples=config.num_samples,
                      occupancy=occupancy, background="white")


class AmortizedNeRF(nn.Module):
    """The generator and the shared NeRF decoder. `forward(text)` gives planes (what DDP wraps);
    `render(planes, camera, …)` draws one prompt's planes."""

    def __init__(self, text_dim: int, config: GeneratorConfig):
        super().__init__()
        self.config = config
        self.text_dim = text_dim
        self.generator = TriplaneGenerator(text_dim, config)
        # occupancy off: which cells are empty differs from prompt to prompt
        self.renderer = NeRF(nerf_config(config, occupancy=False))
        self.renderer.encoding = PlanesEncoding(config.plane_features)  # the grid it built is not used

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.generator(text)

    def render(self, planes: torch.Tensor, camera: Camera, background: torch.Tensor | None = None,
               generator: torch.Generator | None = None):
        """One prompt's planes [3, C, R, R] rendered from `camera` (a `RenderOutput`)."""
        self.renderer.encoding.planes = planes
        try:
            return self.renderer.render(camera, background=background, generator=generator)
        finally:
            self.renderer.encoding.planes = None

    @torch.no_grad()
    def snapshot(self, planes: torch.Tensor) -> NeRF:
        """A plain NeRF (float32, trainable grid) holding one prompt's planes [3, C, R, R] and the
        shared decoder: the run folder's representation, which `dreamer export` and eval read back."""
        nerf = NeRF(nerf_config(self.config, occupancy=True))
        nerf.encoding.planes.copy_(planes.float())
        nerf.mlp.load_state_dict({k: v.float() for k, v in self.renderer.mlp.state_dict().items()})
        nerf.update_occupancy(torch.Generator().manual_seed(0))  # renders skip empty space, as a trained NeRF's do
        return nerf.eval()
