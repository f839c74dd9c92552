"""A NeRF: a feature grid + small MLP giving density and albedo in [−bound, bound]³.

Rendering (pure PyTorch, CPU or CUDA): rays from the camera are clipped to the box, N stratified
samples per ray (jittered in training, midpoints in eval), optionally filtered by a coarse
occupancy grid so that only samples in occupied cells run the MLP, then alpha-composited
(`dreamer.render.volume`). With the occupancy skip off, the render is exactly the dense
stratified render. On CUDA, `backend="auto"` marches rays with nerfacc's `OccGridEstimator`
(imported lazily there, fed with this module's own occupancy grid, so checkpoints are the same
on every device).

Timings, defaults (triplane, occupancy skip on the initial blob), training mode, forward +
backward, best of 5 on 2 shared CPU cores (2 threads; 1 thread in brackets):
32×32 B=1 11–14 ms (20), B=4 32–38 ms (77); 64×64 B=1 37–43 ms (63), B=4 118–144 ms (208).
With the skip off (every sample runs the MLP) 64×64 B=1 takes ~150 ms (400). The encoding
comparison is in `grid_encoding.py` / `bench/encodings.py`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.render import volume
from dreamer.render.rays import camera_rays
from dreamer.representations.background import BACKGROUNDS, Background
from dreamer.representations.base import (AlphaRegularizers, ColourField, ColourTunable, RenderOutput,
                                          Representation, train_only)
from dreamer.representations.grid_encoding import make_encoding

__all__ = ["NeRF", "NeRFConfig"]

GRIDS = ("triplane", "dense", "hash")
DENSITY_ACTIVATIONS = ("softplus", "trunc_exp", "relu")
BACKENDS = ("auto", "torch", "nerfacc")
SHADINGS = ("albedo", "diffuse", "world")
WORLD_NORMAL_CELLS = 4.0  # world shading: central differences over ± 4 half-cells of the finest grid


@dataclass
class NeRFConfig:
    """Architecture, rendering and optimisation settings of a NeRF."""

    grid: Literal["triplane", "dense", "hash"] = "triplane"  # feature grid (bench/encodings.py)
    grid_resolution: int = 128  # plane / voxel resolution; for "hash" the finest level
    grid_features: int = 8  # channels per plane / voxel / hash level
    triplane_reduce: Literal["concat", "sum"] = "concat"  # how the 3 plane features combine
    hash_levels: int = 8  # hash grid: number of levels (coarsest resolution 16)
    hash_log2_table_size: int = 16  # hash grid: log2 of entries per level
    mlp_hidden: int = 32  # hidden width of the MLP from grid features to density + colour
    mlp_layers: int = 1  # number of hidden layers of that MLP
    num_samples: int = 64  # samples per ray inside the box (stratified)
    bound: float = 1.0  # the scene is the cube [−bound, bound]³; rays are clipped to it
    near: float = 0.0  # no samples closer than this to the camera
    density_activation: Literal["softplus", "trunc_exp", "relu"] = "softplus"  # σ = act(raw + blob)
    blob_density: float = 10.0  # init shape: raw density += blob_density·(1 − r/blob_radius)
    blob_radius: float = 0.5  # radius where the blob bias crosses zero (a soft ball at init)
    # diffuse: Lambert, light at the camera; world: half-Lambert from `light_direction`, fixed in the world, as the
    # embedded priors' training renders are lit (dreamer.shapes.raytrace), so the field keeps the albedo and a
    # white object shows the shading a white object has there instead of a flat white silhouette
    shading: Literal["albedo", "diffuse", "world"] = "albedo"
    ambient: float = 0.3  # diffuse and world shading: ambient light fraction
    light_direction: tuple[float, float, float] = (0.5, 1.0, 0.8)  # world shading: towards the light
    background: Literal["learned", "white", "black", "random"] = "learned"  # learned: MLP of ray direction
    lr_grid: float = 1e-2  # Adam learning rate of the feature grid
    lr_mlp: float = 1e-3  # Adam learning rate of the MLP
    lr_background: float = 1e-3  # Adam learning rate of the learned background
    occupancy: bool = True  # skip samples in empty cells of a coarse occupancy grid
    occupancy_resolution: int = 32  # cells per side of the occupancy grid
    occupancy_update_every: int = 16  # re-evaluate the grid every this many steps
    occupancy_decay: float = 0.95  # EMA: cell density = max(decay·old, new)
    occupancy_threshold: float = 0.005  # a cell is empty if a sample step there has alpha below this
    backend: Literal["auto", "torch", "nerfacc"] = "auto"  # auto: nerfacc on CUDA if installed
    # to_mesh: box-filter width (world units) before meshing: 3 cells at the default 128³ grid. It was
    # 0.08 (7 cells) before the unseen-space fill existed; that wide a filter dissolves a thin face sheet
    # below the iso-level, the shell opens and stays hollow (exact-prior cube: volume IoU 0.31 → 0.89).
    mesh_smoothing: float = 0.03
    chunk: int = 262144  # points per field evaluation (occupancy updates, meshes)

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("grid", self.grid, GRIDS), ("density_activation", self.density_activation, DENSITY_ACTIVATIONS),
            ("background", self.background, BACKGROUNDS), ("backend", self.backend, BACKENDS),
            ("shading", self.shading, SHADINGS), ("triplane_reduce", self.triplane_reduce, ("concat", "sum")),
        ):
            if value not in allowed:
                raise UserError(f"nerf.{name} = {value!r} is not one of {', '.join(allowed)}")
        for name in ("grid_resolution", "grid_features", "mlp_hidden", "mlp_layers", "num_samples",
                     "occupancy_resolution", "occupancy_update_every", "chunk"):
            if int(getattr(self, name)) < 1:
                raise UserError(f"nerf.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.bound <= 0 or self.blob_radius <= 0:
            raise UserError("nerf.bound and nerf.blob_radius must be positive")


def _nerfacc_available() -> tuple[bool, str]:
    """Import nerfacc and load its CUDA ops (nerfacc JIT-compiles them on first use, which takes
    minutes once and needs nvcc); (False, reason) if either fails."""
    try:
        from nerfacc.cuda._backend import _C
    except Exception as err:  # ImportError, or a failed JIT build
        return False, f"{type(err).__name__}: {err}"
    if _C is None:
        return False, "nerfacc found no CUDA toolkit to build its ops"
    return True, ""


class _TruncExp(torch.autograd.Function):
    """exp(x) with the gradient computed from exp(clamp(x, max=15)) (avoids inf gradients)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.exp(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.exp(x.clamp(max=15))


class NeRF(Representation, ColourField, ColourTunable):
    """Density + albedo field on a feature grid, volume-rendered from `Camera`s."""

    regularizer_weights = AlphaRegularizers  # opacity, sparsity (shared with the Gaussians)
    fills_unseen = True

    def __init__(self, config: NeRFConfig | None = None):
        super().__init__()
        self.config = config = config if config is not None else NeRFConfig()
        self.encoding = make_encoding(config.grid, config.grid_resolution, config.grid_features,
                                      config.triplane_reduce, config.hash_levels,
                                      config.hash_log2_table_size)
        layers: list[torch.nn.Module] = []
        width = self.encoding.out_dim
        for _ in range(config.mlp_layers):
            layers += [torch.nn.Linear(width, config.mlp_hidden), torch.nn.ReLU()]
            width = config.mlp_hidden
        layers.append(torch.nn.Linear(width, 4))  # raw density, raw rgb
        self.mlp = torch.nn.Sequential(*layers)
        self.background_model = Background(config.background)
        r = config.occupancy_resolution
        # EMA of the density in each cell, and the derived mask of cells worth sampling.
        self.register_buffer("occupancy_density", torch.zeros(r, r, r))  # [R, R, R] x, y, z
        self.register_buffer("occupancy_mask", torch.ones(r, r, r, dtype=torch.bool))
        self.register_buffer("occupancy_updates", torch.zeros((), dtype=torch.long))
        self._nerfacc = None  # (estimator, nerfacc module) once the CUDA path is first used
        self._nerfacc_ok: bool | None = None  # whether nerfacc's CUDA ops load (checked once)

    # ---------------------------------------------------------------- the field
    def _density_bias(self, x: torch.Tensor) -> torch.Tensor:  # [S, 3] -> [S]
        c = self.config
        return c.blob_density * (1.0 - x.norm(dim=-1) / c.blob_radius)

    def _activate(self, raw: torch.Tensor) -> torch.Tensor:
        act = self.config.density_activation
        if act == "softplus":
            return F.softplus(raw)
        if act == "trunc_exp":
            return _TruncExp.apply(raw)
        return F.relu(raw)

    def density(self, x: torch.Tensor) -> torch.Tensor:
        """Density σ [S] ≥ 0 at world points x [S, 3]."""
        return self.query(x)[0]

    def query(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Density σ [S] and albedo [S, 3] in [0, 1] at world points x [S, 3]."""
        h = self.encoding(x / self.config.bound)  # [S, F]
        raw = self.mlp(h)  # [S, 4]
        sigma = self._activate(raw[:, 0] + self._density_bias(x))
        return sigma, torch.sigmoid(raw[:, 1:])

    @torch.no_grad()
    def colour_at(self, points: torch.Tensor) -> torch.Tensor:
        """Albedo [N, 3] in [0, 1] at world points [N, 3], chunked: the colour exports bake
        (the `ColourField` capability of `dreamer.representations.base`)."""
        return self._chunked(lambda p: self.query(p)[1], points)

    def _shaded_query(self, x: torch.Tensor, light: torch.Tensor | None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """σ [S] and colour [S, 3]; with diffuse shading, `light` [S, 3] unit light directions."""
        sigma, albedo = self.query(x)
        if self.config.shading != "diffuse" or light is None:  # "world" shades per pixel (_world_shade)
            return sigma, albedo
        normal = self.normals(x)
        lambert = (normal * light).sum(-1, keepdim=True).clamp_min(0)  # [S, 1]
        a = self.config.ambient
        return sigma, albedo * (a + (1 - a) * lambert)

    def _world_shade(self, o: torch.Tensor, d: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        """[R, 1] half-Lambert factor a + (1 − a)(0.5 + 0.5 n·l) of each ray, lit from `light_direction`.

        Deferred: one normal per pixel, at the ray's expected surface point, not one per sample (per sample it
        costs six more field queries for each of the 64 samples of a ray; a tuning run that shaded per sample
        was several times slower, docs/benchmarks.md). The normal is a constant of the step (no gradient): shading teaches the field its albedo, and
        the shape is left to the alpha it renders."""
        shade = torch.ones_like(depth)
        hit = alpha[:, 0] > 0.05  # rays that see the object; the rest keep their (background-free) colour
        if bool(hit.any()):
            with torch.no_grad():
                # wider differences than the field's own cell: a field fitted by SDS is grainy at that scale, and
                # its normals shaded a white table speckled (tuning run)
                normal = self.normals(o[hit] + d[hit] * depth[hit], cells=WORLD_NORMAL_CELLS)  # [H, 3]
                light = F.normalize(normal.new_tensor(self.config.light_direction), dim=0)
                wrap = 0.5 + 0.5 * (normal @ light)[:, None]
                a = self.config.ambient
                shade = shade.index_put((hit.nonzero()[:, 0],), a + (1 - a) * wrap)
        return shade

    def normals(self, x: torch.Tensor, cells: float = 1.0) -> torch.Tensor:
        """Unit normals −∇σ/|∇σ| [S, 3] by central differences (± `cells` half finest-grid cells)."""
        eps = cells * self.config.bound / self.config.grid_resolution
        offsets = torch.eye(3, device=x.device, dtype=x.dtype) * eps  # [3, 3]
        pts = torch.cat([x[:, None] + offsets, x[:, None] - offsets], dim=1)  # [S, 6, 3]
        d = self.density(pts.reshape(-1, 3)).view(-1, 6)
        grad = (d[:, :3] - d[:, 3:]) / (2 * eps)  # [S, 3]
        return -F.normalize(grad, dim=-1, eps=1e-9)

    def _chunked(self, fn, x: torch.Tensor):
        """fn over x [S, 3] in chunks of `config.chunk`; outputs (or tuples of them) concatenated."""
        outs = [fn(x[i:i + self.config.chunk]) for i in range(0, len(x), self.config.chunk)]
        if not outs:
            return fn(x)
        if isinstance(outs[0], tuple):
            return [torch.cat(parts) for parts in zip(*outs)]
        return torch.cat(outs)

    # ---------------------------------------------------------------- occupancy
    def _cell_step(self) -> float:
        """Typical sample spacing: the box side over the number of samples."""
        return 2.0 * self.config.bound / self.config.num_samples

    @torch.no_grad()
    def update_occupancy(self, generator: torch.Generator | None = None) -> None:
        """Evaluate the density at a random point of every cell; EMA-max into the grid."""
        c = self.config
        r = c.occupancy_resolution
        device = self.occupancy_density.device
        idx = torch.arange(r, device=device, dtype=torch.float32)
        cells = torch.stack(torch.meshgrid(idx, idx, idx, indexing="ij"), dim=-1).view(-1, 3)
        jitter = torch.rand(cells.shape, generator=generator,
                            device=generator.device if generator is not None else device)
        x = ((cells + jitter.to(device)) / r * 2 - 1) * c.bound  # [R³, 3]
        sigma = self._chunked(self.density, x).view(r, r, r)
        decayed = self.occupancy_density * c.occupancy_decay
        self.occupancy_density.copy_(torch.maximum(decayed, sigma))
        # A cell is occupied if one step of its density has alpha ≥ threshold; dilated by one
        # cell because the interpolated field inside a cell depends on its neighbours.
        sigma_min = -math.log(1.0 - c.occupancy_threshold) / self._cell_step()
        occ = (self.occupancy_density > sigma_min).float()[None, None]
        occ = F.max_pool3d(occ, kernel_size=3, stride=1, padding=1)[0, 0] > 0
        self.occupancy_mask.copy_(occ)
        self.occupancy_updates += 1

    def _skip_active(self) -> bool:
        return self.config.occupancy and int(self.occupancy_updates) > 0

    def occupied(self, x: torch.Tensor) -> torch.Tensor:
        """Whether points x [..., 3] lie in occupied cells ([...] bool)."""
        r, b = self.config.occupancy_resolution, self.config.bound
        i = ((x + b) / (2 * b) * r).long().clamp(0, r - 1)  # [..., 3]
        flat = (i[..., 0] * r + i[..., 1]) * r + i[..., 2]
        return self.occupancy_mask.view(-1)[flat]

    def before_step(self, step: int) -> None:
        if self.config.occupancy and step % self.config.occupancy_update_every == 0:
            self.update_occupancy()

    # ---------------------------------------------------------------- rendering
    def _backend(self, device: torch.device) -> str:
        """"torch" or "nerfacc" for renders on `device` (decided once per model)."""
        want = self.config.backend
        if want == "torch" or (want == "auto" and device.type != "cuda"):
            return "torch"
        if device.type != "cuda":
            raise UserError("nerf.backend = 'nerfacc' needs a CUDA device; use 'auto' or 'torch'")
        if self._nerfacc_ok is None:
            self._nerfacc_ok, why = _nerfacc_available()
            if not self._nerfacc_ok:
                if want == "nerfacc":
                    raise UserError(f"nerf.backend = 'nerfacc' is unavailable ({why}); "
                                    "pip install nerfacc with a CUDA toolkit, or use backend=torch")
                warnings.warn(f"nerfacc unavailable ({why}); using the pure-PyTorch renderer on CUDA")
        return "nerfacc" if self._nerfacc_ok else "torch"

    def render(self, camera: Camera, background: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> RenderOutput:
        """Render B images [B, H, W, ·]. Jitter and a "random" background use `generator`
        (or the global RNG, so `torch.manual_seed` makes training renders reproducible)."""
        B, H, W = len(camera), camera.height, camera.width
        camera = camera.to(self.occupancy_density.device)
        origins, dirs = camera_rays(camera)  # [B, H, W, 3]
        o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)  # [R, 3]
        light = None
        if self.config.shading == "diffuse":  # headlight: towards the camera of each pixel
            light = F.normalize(origins, dim=-1).reshape(-1, 3)
        if self._backend(o.device) == "nerfacc":
            rgb, alpha, depth, n = self._march_nerfacc(o, d, light)
        else:
            rgb, alpha, depth, n = self._march_torch(o, d, light, generator)
        if self.config.shading == "world":
            rgb = rgb * self._world_shade(o, d, depth, alpha)
        if background is None:
            bg = self.background_model(dirs, generator=generator)  # [B, H, W, 3]
        else:
            bg = torch.as_tensor(background, dtype=rgb.dtype, device=rgb.device).expand(B, H, W, 3)
        rgb = volume.over_background(rgb.view(B, H, W, 3), alpha.view(B, H, W, 1), bg)
        alpha = alpha.view(B, H, W, 1)
        extras = {"weights_sum": alpha, "opacity": alpha, "background": bg,
                  "num_samples": n}
        return RenderOutput(rgb=rgb, alpha=alpha, depth=depth.view(B, H, W, 1), extras=extras)

    def _march_torch(self, o, d, light, generator):
        """Dense stratified samples; with the skip on, only occupied ones run the field."""
        c = self.config
        R = o.shape[0]
        t_near, t_far, hit = volume.ray_aabb(o, d, c.bound, c.near)  # [R]
        rays = hit.nonzero().squeeze(1)  # [Rh] rays that cross the box
        t, deltas = volume.stratified_samples(t_near[rays], t_far[rays], c.num_samples,
                                              jitter=self.training, generator=generator)  # [Rh, N]
        x = o[rays, None] + d[rays, None] * t[..., None]  # [Rh, N, 3]
        lights = None if light is None else light[rays, None].expand_as(x)
        if self._skip_active():
            occ = self.occupied(x)  # [Rh, N] bool
            active = occ.any(dim=1)  # rays with at least one sample in an occupied cell
            rays, t, deltas, x, occ = rays[active], t[active], deltas[active], x[active], occ[active]
            if lights is not None:
                lights = lights[active]
            # flat indices of the samples in occupied cells (index ops: cheap backward)
            keep = occ.view(-1).nonzero().squeeze(1)  # [S]
            xs = x.view(-1, 3).index_select(0, keep)  # [S, 3]
            ls = None if lights is None else lights.reshape(-1, 3).index_select(0, keep)
            sig_k, rgb_k = self._shaded_query(xs, ls)
            sigma = x.new_zeros(t.numel()).index_put((keep,), sig_k).view(t.shape)  # [Rh, N]
            rgbs = x.new_zeros(t.numel(), 3).index_put((keep,), rgb_k).view(x.shape)  # [Rh, N, 3]
            n = int(keep.numel())
        else:
            sig, col = self._shaded_query(x.reshape(-1, 3),
                                          None if lights is None else lights.reshape(-1, 3))
            sigma, rgbs = sig.view(t.shape), col.view(x.shape)
            n = x.shape[0] * x.shape[1]
        comp = volume.composite(sigma, rgbs, t, deltas)
        rgb = o.new_zeros(R, 3).index_put((rays,), comp.rgb)  # [R, 3]
        alpha = o.new_zeros(R, 1).index_put((rays,), comp.alpha)  # [R, 1]
        depth = o.new_zeros(R, 1).index_put((rays,), comp.depth)  # [R, 1]
        return rgb, alpha, depth, n

    def _estimator(self):
        """nerfacc's OccGridEstimator on this device, its mask synced from our buffers."""
        if self._nerfacc is None:
            import nerfacc  # lazily: CUDA path only

            b = self.config.bound
            est = nerfacc.OccGridEstimator(roi_aabb=[-b, -b, -b, b, b, b],
                                           resolution=self.config.occupancy_resolution, levels=1)
            self._nerfacc = (est, nerfacc)
        est, nerfacc = self._nerfacc
        est = est.to(self.occupancy_density.device)
        self._nerfacc = (est, nerfacc)
        skip = self._skip_active()
        est.occs.copy_(self.occupancy_density.view(-1))
        est.binaries.copy_(self.occupancy_mask[None] if skip else torch.ones_like(est.binaries))
        return est, nerfacc

    def _march_nerfacc(self, o, d, light):
        """CUDA: nerfacc marches rays through the occupancy grid (packed samples)."""
        c = self.config
        est, nerfacc = self._estimator()
        R = o.shape[0]
        ray_idx, t_starts, t_ends = est.sampling(
            o, d, near_plane=c.near, render_step_size=self._cell_step(),
            stratified=self.training, early_stop_eps=0.0, alpha_thre=0.0)

        def rgb_sigma_fn(ts, te, ri):
            x = o[ri] + d[ri] * ((ts + te) * 0.5)[:, None]  # [S, 3]
            sigma, rgb = self._shaded_query(x, None if light is None else light[ri])
            return rgb, sigma

        rgb, alpha, depth, _ = nerfacc.rendering(t_starts, t_ends, ray_idx, n_rays=R,
                                                 rgb_sigma_fn=rgb_sigma_fn,
                                                 render_bkgd=torch.zeros(3, device=o.device))
        depth = depth / alpha.clamp_min(1e-6)  # nerfacc's depth is Σ w t
        return rgb, alpha, depth, int(t_starts.shape[0])

    # ---------------------------------------------------------------- training hooks
    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        c = self.config
        groups = [
            {"params": list(self.encoding.parameters()), "lr": c.lr_grid * lr_scale, "name": "grid"},
            {"params": list(self.mlp.parameters()), "lr": c.lr_mlp * lr_scale, "name": "mlp"},
        ]
        bg = list(self.background_model.parameters())
        if bg:
            groups.append({"params": bg, "lr": c.lr_background * lr_scale, "name": "background"})
        return groups

    def colour_parameter_groups(self, lr: float) -> list[dict]:
        """`ColourTunable`: the MLP's output layer, its three colour rows only. Density and colour share the
        grid and the hidden layer, so only the output layer's colour rows can move without the shape moving:
        a gradient hook zeroes the density row's share (Adam's moments for it stay zero, so it never steps)."""
        head = self.mlp[-1]
        train_only(self, [head.weight, head.bias])
        colour_rows = torch.ones(head.out_features, 1, device=head.weight.device)
        colour_rows[0] = 0.0  # row 0 is raw density (`query`)
        head.weight.register_hook(lambda grad: grad * colour_rows)
        head.bias.register_hook(lambda grad: grad * colour_rows[:, 0])
        return [{"params": [head.weight, head.bias], "lr": lr, "name": "colour"}]

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        """`AlphaRegularizers`: "opacity", the mean binary entropy of alpha (pushes pixels to fully
        empty or opaque); "sparsity", mean sqrt(alpha² + 0.01) (DreamFusion; penalises total opacity)."""
        return {"opacity": volume.opacity_entropy(out.alpha),
                "sparsity": volume.opacity_sparsity(out.alpha)}

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items()
                         if k in ("grid", "grid_resolution", "num_samples", "background"))

    # ---------------------------------------------------------------- export
    @torch.no_grad()
    def density_grid(self, resolution: int = 128) -> torch.Tensor:
        """Density [R, R, R] at the centres of an R³ grid over the box (indexed x, y, z)."""
        b = self.config.bound
        device = self.occupancy_density.device
        ax = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution * 2 * b - b
        pts = torch.stack(torch.meshgrid(ax, ax, ax, indexing="ij"), dim=-1).view(-1, 3)
        return self._chunked(self.density, pts).view(resolution, resolution, resolution)

    @torch.no_grad()
    def to_mesh(self, resolution: int = 128, fill_unseen: bool = True, fill_holes: bool = True,
                min_component_fraction: float = 0.01):
        """Marching cubes of the density at an automatic iso-level (the level whose silhouette
        matches the rendered alpha > 0.5 one, `volume.silhouette_iso_level`), space no camera sees
        filled with `fill_unseen` (`render.solid`), enclosed cavities filled and tiny floaters
        dropped, after a light smoothing of the density (`config.mesh_smoothing`, see
        `volume.density_to_mesh`); vertex colours RGBA uint8 from the albedo field. An empty mesh
        if nothing renders opaque."""
        import trimesh

        dens = self.density_grid(resolution)  # [R, R, R]
        mesh = volume.density_to_mesh(dens, self.config.bound, smoothing=self.config.mesh_smoothing,
                                      fill_unseen=fill_unseen, fill_holes=fill_holes,
                                      min_component_fraction=min_component_fraction)
        if mesh is None:
            return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
        verts, faces = mesh
        pts = torch.as_tensor(verts, device=dens.device)
        albedo = self._chunked(lambda p: self.query(p)[1], pts)  # [V, 3]
        rgba = np.concatenate([(albedo.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8),
                               np.full((len(verts), 1), 255, dtype=np.uint8)], axis=1)
        return trimesh.Trimesh(verts, faces, vertex_colors=rgba, process=False)
