"""A HexPlane / K-planes deformation field over a looping time: (x, y, z, t) -> (Δx, Δq, Δs).

Six feature planes (xy, xz, yz over space; xt, yt, zt over space × time) are sampled bilinearly
and multiplied together (K-planes' Hadamard product), then a small MLP maps the feature to three
heads: a position offset Δx (3), a quaternion offset Δq (4, added to the raw w x y z quaternion)
and a log-scale offset Δs (3). Every head starts at zero, so a fresh field is exactly the identity
and a 4D run can start from a static result unchanged.

Time loops: the time planes are sampled with a circular wrap (time 1 ≡ time 0) by appending their
first time row after the last before `grid_sample`, so a clip's last frame blends into its first.
Planes start smooth (each channel one constant: spatial ones drawn around 1 so the product is not
0, time ones exactly 1), so the smoothness regularisers are zero at initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SPATIAL_PAIRS = ((0, 1), (0, 2), (1, 2))  # xy, xz, yz
TIME_AXES = (0, 1, 2)  # xt, yt, zt


class HexPlaneField(torch.nn.Module):
    """Deformation offsets at canonical positions [N, 3] in [-1, 1]³ and times in [0, 1)."""

    def __init__(self, resolution: int = 32, time_resolution: int = 16, feature_dim: int = 16, hidden: int = 64):
        super().__init__()
        C, R, T = feature_dim, resolution, time_resolution
        # [3, C, R, R]: plane p's rows follow its second axis, columns its first (grid_sample's x, y).
        spatial = torch.empty(3, C, 1, 1).uniform_(0.5, 1.5).expand(3, C, R, R)
        self.spatial = torch.nn.Parameter(spatial.contiguous())
        self.temporal = torch.nn.Parameter(torch.ones(3, C, T, R))  # [3, C, T, R]: rows time, columns space
        self.mlp = torch.nn.Sequential(torch.nn.Linear(C, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU())
        self.head_dx, self.head_dq, self.head_ds = (torch.nn.Linear(hidden, n) for n in (3, 4, 3))
        for head in (self.head_dx, self.head_dq, self.head_ds):
            torch.nn.init.zeros_(head.weight)
            torch.nn.init.zeros_(head.bias)

    def plane_parameters(self) -> list[torch.nn.Parameter]:
        return [self.spatial, self.temporal]

    def mlp_parameters(self) -> list[torch.nn.Parameter]:
        return [*self.mlp.parameters(), *self.head_dx.parameters(), *self.head_dq.parameters(),
                *self.head_ds.parameters()]

    def features(self, positions: torch.Tensor, time: torch.Tensor | float) -> torch.Tensor:
        """[N, C]: the product of the six planes' bilinear samples."""
        N = positions.shape[0]
        t = torch.remainder(torch.as_tensor(time, dtype=positions.dtype, device=positions.device), 1.0)
        t = (2.0 * t - 1.0).expand(N)  # the wrapped time axis: row 0 at -1, its copy (time 1) at +1
        p = positions.clamp(-1.0, 1.0)
        grid = torch.stack([torch.stack([p[:, a], p[:, b]], dim=-1) for a, b in SPATIAL_PAIRS])  # [3, N, 2]
        feats = F.grid_sample(self.spatial, grid[:, None], mode="bilinear", align_corners=True)  # [3, C, 1, N]
        looped = torch.cat([self.temporal, self.temporal[:, :, :1]], dim=2)  # [3, C, T + 1, R]
        tgrid = torch.stack([torch.stack([p[:, a], t], dim=-1) for a in TIME_AXES])  # [3, N, 2]
        tfeats = F.grid_sample(looped, tgrid[:, None], mode="bilinear", align_corners=True)  # [3, C, 1, N]
        return torch.cat([feats, tfeats]).prod(dim=0)[:, 0].transpose(0, 1)  # [N, C]

    def forward(self, positions: torch.Tensor, time: torch.Tensor | float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Δx [N, 3], Δq [N, 4], Δs [N, 3]) at positions [N, 3] in [-1, 1]³ and one time in [0, 1)."""
        h = self.mlp(self.features(positions, time))
        return self.head_dx(h), self.head_dq(h), self.head_ds(h)

    def time_smoothness(self) -> torch.Tensor:
        """Mean squared second difference of the time planes along (looping) time."""
        p = self.temporal
        return (p.roll(1, dims=2) - 2.0 * p + p.roll(-1, dims=2)).square().mean()

    def plane_tv(self) -> torch.Tensor:
        """Mean squared first difference of the spatial planes along both of their axes."""
        p = self.spatial
        return 0.5 * ((p[:, :, 1:] - p[:, :, :-1]).square().mean() + (p[..., 1:] - p[..., :-1]).square().mean())
