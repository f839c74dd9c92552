"""3D Gaussian splats: means, scales, rotations, opacities and SH colours, rasterized per view.

Parameters are stored raw, as 3DGS and gsplat store them (log-scales, opacity logits,
unnormalised w x y z quaternions, SH coefficients), in a ParameterDict named the way gsplat's
densification strategies expect. Rendering uses `gsplat.rasterization` on CUDA and our
pure-PyTorch tile rasterizer (`dreamer.render.splat`) elsewhere; both give the same images.

Densification (clone / split / prune / opacity reset) is gsplat's `DefaultStrategy`, which is
plain PyTorch and runs on the CPU too. It wants one optimizer per parameter; the trainer has one
Adam with a parameter group per name, so each group is handed over behind a small view
(`_GroupOptimizer`) that the strategy edits in place. The number of Gaussians changes during a
run: `load_state_dict` resizes the parameters (keeping the same Parameter objects, so the
trainer's optimizer still points at them) before loading a checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.render import volume
from dreamer.render.splat.sh import SH_C0, sh_to_colour
from dreamer.representations.background import Background
from dreamer.representations.base import (AlphaRegularizers, ColourField, ColourTunable, RenderOutput, Representation,
                                          SplatSource, train_only)

INITS = ("ball", "shape", "points")
SPLAT_BACKGROUNDS = ("white", "black", "random")
BACKENDS = ("auto", "torch", "gsplat")
PARAMETERS = ("means", "scales", "quats", "opacities", "sh0", "shN")


@dataclass
class GaussiansConfig:
    """Initialisation, rendering, learning rates and densification of a Gaussian-splat asset."""

    num_gaussians: int = 4096  # Gaussians at initialisation
    init: Literal["ball", "shape", "points"] = "ball"  # ball: uniform in a ball; shape: on a library object; points: a PLY
    init_radius: float = 0.5  # ball: its radius (world units)
    init_shape: str = ""  # shape: a library prompt such as "a red chair" (its surface and colours)
    init_points: str = ""  # points: a PLY point cloud (x y z, optional red green blue) or a splats.ply
    init_opacity: float = 0.1  # opacity of every initial Gaussian
    init_scale: float = 0.0  # initial scale; 0 = mean distance to the 3 nearest neighbours (3DGS)
    sh_degree: int = 0  # spherical-harmonics degree of the colour (0 = view-independent)
    background: Literal["white", "black", "random"] = "white"  # what shows where no Gaussian covers
    lr_means: float = 1e-3  # Adam learning rates per parameter (DreamGaussian's)
    lr_scales: float = 5e-3
    lr_quats: float = 5e-3
    lr_opacities: float = 5e-2
    lr_sh0: float = 1e-2
    lr_shN: float = 5e-4
    lr_means_final: float = 0.0  # >0: the means' lr falls exponentially to this by lr_means_decay_steps (3DGS's
                                 # position schedule, which lets splats settle; DreamGaussian: 1e-3 -> 2e-5 over 500)
    lr_means_decay_steps: int = 500  # steps of that fall; the lr stays at lr_means_final after it
    densify: bool = True  # gsplat DefaultStrategy: clone / split / prune / opacity reset
    refine_start: int = 100  # first step that may densify
    refine_stop: int = 600  # no densification from this step on
    refine_every: int = 50  # steps between densifications
    grow_grad2d: float = 2e-4  # mean screen-space gradient (in [-1, 1] units) above which a Gaussian grows
    prune_opacity: float = 0.01  # Gaussians below this opacity are removed at each densification
    reset_every: int = 100000  # opacity reset period (longer than a run: off)
    max_gaussians: int = 32768  # growth stops at this count (memory and CPU time)
    backend: Literal["auto", "torch", "gsplat"] = "auto"  # auto: gsplat on CUDA, ours elsewhere
    mesh_sigma_cap: float = 0.15  # to_mesh: Gaussians are splatted into the grid up to this many world units

    mesh_smoothing: float = 0.1  # to_mesh: box-filter width (world units) of the density before meshing
                                 # (splats leave a rough, porous surface; see volume.density_to_mesh)
    mesh_lowpass: float | None = None  # to_mesh: the rasterizer's low-pass in world units, added to every splat
    # before gridding (gaussian_density); None = the training renders' own (the trainer fills it in from the
    # run's camera and resolution), 0 = none

    def __post_init__(self) -> None:
        for name, value, allowed in (("init", self.init, INITS), ("background", self.background, SPLAT_BACKGROUNDS),
                                     ("backend", self.backend, BACKENDS)):
            if value not in allowed:
                raise UserError(f"gaussians.{name} = {value!r} is not one of {', '.join(allowed)}")
        if not 0 <= int(self.sh_degree) <= 3:
            raise UserError(f"gaussians.sh_degree must be 0..3, got {self.sh_degree!r}")
        if int(self.num_gaussians) < 1 or int(self.max_gaussians) < int(self.num_gaussians):
            raise UserError("gaussians.num_gaussians must be >= 1 and <= gaussians.max_gaussians")
        if not 0 < self.init_opacity < 1:
            raise UserError(f"gaussians.init_opacity must be in (0, 1), got {self.init_opacity!r}")
        if self.init == "shape" and not self.init_shape:
            raise UserError("gaussians.init = 'shape' needs gaussians.init_shape, e.g. \"a red chair\"")
        if self.lr_means_final < 0 or int(self.lr_means_decay_steps) < 1:
            raise UserError("gaussians.lr_means_final must be >= 0 and gaussians.lr_means_decay_steps >= 1")
        if self.mesh_lowpass is not None and not self.mesh_lowpass >= 0:
            raise UserError(f"gaussians.mesh_lowpass must be >= 0 (or empty: the training renders'), got {self.mesh_lowpass!r}")
        if self.init == "points" and not self.init_points:
            raise UserError("gaussians.init = 'points' needs gaussians.init_points, a .ply file")


class _GroupOptimizer:
    """One parameter group of the trainer's optimizer, seen as an optimizer of its own."""

    def __init__(self, optimizer: torch.optim.Optimizer, group: dict) -> None:
        self.param_groups = [group]
        self.state = optimizer.state


class Gaussians(Representation, ColourField, ColourTunable, SplatSource):
    """N anisotropic Gaussians with SH colour; `render` composites them front to back."""

    regularizer_weights = AlphaRegularizers  # the NeRF's: opacity, sparsity
    fills_unseen = True

    def __init__(self, config: GaussiansConfig | None = None):
        super().__init__()
        from dreamer.representations.gaussian_init import initial_gaussians

        self.config = c = config if config is not None else GaussiansConfig()
        init = initial_gaussians(c)
        self.params = torch.nn.ParameterDict({
            "means": torch.nn.Parameter(init.means),  # [N, 3]
            "scales": torch.nn.Parameter(init.log_scales),  # [N, 3] log
            "quats": torch.nn.Parameter(init.quats),  # [N, 4] w x y z
            "opacities": torch.nn.Parameter(init.opacity_logits),  # [N] logit
            "sh0": torch.nn.Parameter(init.sh[:, :1, :].contiguous()),  # [N, 1, 3]
            "shN": torch.nn.Parameter(init.sh[:, 1:, :].contiguous()),  # [N, K-1, 3]
        })
        self.background_model = Background(c.background)
        self.strategy = None
        self.strategy_state: dict | None = None
        if c.densify:
            from gsplat.strategy import DefaultStrategy

            self.strategy = DefaultStrategy(prune_opa=c.prune_opacity, grow_grad2d=c.grow_grad2d,
                                            refine_start_iter=c.refine_start, refine_stop_iter=c.refine_stop,
                                            refine_every=c.refine_every, reset_every=c.reset_every)
            self.strategy_state = self.strategy.initialize_state(scene_scale=1.0)
        self._info: dict | None = None  # the last training render's screen-space data

    # ---------------------------------------------------------------- activated values
    @property
    def num_gaussians(self) -> int:
        return self.params["means"].shape[0]

    def activated(self) -> dict[str, torch.Tensor]:
        p = self.params
        return {"means": p["means"], "scales": torch.exp(p["scales"]), "quats": p["quats"],
                "opacities": torch.sigmoid(p["opacities"]), "sh": torch.cat([p["sh0"], p["shN"]], dim=1)}

    def colours(self, camera_positions: torch.Tensor | None = None) -> torch.Tensor:
        """Colours [N, 3], or [B, N, 3] seen from camera positions [B, 3] when the SH degree is > 0."""
        p = self.params
        if self.config.sh_degree == 0 or camera_positions is None:
            return (0.5 + SH_C0 * p["sh0"][:, 0, :]).clamp_min(0.0)
        sh = torch.cat([p["sh0"], p["shN"]], dim=1)  # [N, K, 3]
        dirs = torch.nn.functional.normalize(p["means"][None] - camera_positions[:, None], dim=-1)  # [B, N, 3]
        return sh_to_colour(sh[None], dirs, self.config.sh_degree)

    # ---------------------------------------------------------------- rendering
    def _backend(self, device: torch.device) -> str:
        want = self.config.backend
        if want == "torch" or (want == "auto" and device.type != "cuda"):
            return "torch"
        if device.type != "cuda":
            raise UserError("gaussians.backend = 'gsplat' needs a CUDA device: use backend=torch or auto")
        return "gsplat"

    def render(self, camera: Camera, background: torch.Tensor | None = None,
               generator: torch.Generator | None = None) -> RenderOutput:
        B, H, W = len(camera), camera.height, camera.width
        device = self.params["means"].device
        camera = camera.to(device)
        if background is None:
            bg = self.background_model(torch.zeros(B, 1, 1, 3, device=device), generator=generator)[:, 0, 0]  # [B, 3]
        else:
            bg = torch.as_tensor(background, dtype=torch.float32, device=device).reshape(-1, 3).expand(B, 3)
        a = self.activated()
        colours = self.colours(camera.position)
        if self._backend(device) == "gsplat":
            rgb, alpha, depth, info = self._render_gsplat(a, colours, camera, bg)
        else:
            from dreamer.render.splat import rasterize_gaussians

            out = rasterize_gaussians(a["means"], a["quats"], a["scales"], a["opacities"], colours, camera,
                                      background=bg)
            rgb, alpha, depth = out.rgb, out.alpha, out.depth
            info = dict(out.info)
            info["radii"] = info.get("radii_xy", info["radii"])  # gsplat >= 1.5: per-axis [B, N, 2]
        info.update(n_cameras=B, width=W, height=H, gaussian_ids=None)
        if torch.is_grad_enabled() and self.params["means"].requires_grad:
            self._info = info  # for densification after the optimizer step
        return RenderOutput(rgb=rgb, alpha=alpha, depth=depth, extras={"num_gaussians": self.num_gaussians})

    def _render_gsplat(self, a: dict, colours: torch.Tensor, camera: Camera, bg: torch.Tensor):
        from gsplat import rasterization

        from dreamer.render.splat.projection import camera_to_opencv

        viewmats, Ks = camera_to_opencv(camera)
        if colours.dim() == 2:
            colours = colours.expand(len(camera), -1, -1)
        image, alpha, info = rasterization(a["means"], torch.nn.functional.normalize(a["quats"], dim=-1), a["scales"],
                                           a["opacities"], colours, viewmats, Ks, camera.width, camera.height,
                                           backgrounds=bg, render_mode="RGB+ED", packed=False)
        return image[..., :3], alpha, image[..., 3:], info

    # ---------------------------------------------------------------- training hooks
    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        c = self.config
        lrs = {"means": c.lr_means, "scales": c.lr_scales, "quats": c.lr_quats, "opacities": c.lr_opacities,
               "sh0": c.lr_sh0, "shN": c.lr_shN}
        groups = [{"params": [self.params[name]], "lr": lrs[name] * lr_scale, "base_lr": lrs[name] * lr_scale,
                   "name": name} for name in PARAMETERS]
        bg = list(self.background_model.parameters())
        if bg:
            groups.append({"params": bg, "lr": 1e-3 * lr_scale, "name": "background"})
        return groups

    def colour_parameter_groups(self, lr: float) -> list[dict]:
        """`ColourTunable`: the SH colour coefficients; means, scales, rotations and opacities stay fixed."""
        colour = train_only(self, [self.params["sh0"], self.params["shN"]])
        return [{"params": colour, "lr": lr, "name": "colour"}]

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        """The NeRF's alpha regularisers (`AlphaRegularizers`: same names, same math), so presets can share weights."""
        return {"opacity": volume.opacity_entropy(out.alpha), "sparsity": volume.opacity_sparsity(out.alpha)}

    def means_lr_factor(self, step: int) -> float:
        """The means' lr at `step` as a share of lr_means: 1 -> lr_means_final / lr_means, log-linearly."""
        c = self.config
        if c.lr_means_final <= 0:
            return 1.0
        progress = min(1.0, max(0, step) / c.lr_means_decay_steps)
        return math.exp(progress * math.log(c.lr_means_final / c.lr_means))

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """Set the means' lr for the next step; densify with gsplat's DefaultStrategy from the last
        training render's gradients."""
        for group in optimizer.param_groups:
            if group.get("name") == "means" and "base_lr" in group:
                group["lr"] = group["base_lr"] * self.means_lr_factor(step + 1)
        info, self._info = self._info, None
        if self.strategy is None or info is None or info["means2d"].grad is None:
            return
        optimizers = {g["name"]: _GroupOptimizer(optimizer, g) for g in optimizer.param_groups
                      if g.get("name") in PARAMETERS}
        full = self.num_gaussians >= self.config.max_gaussians
        if full:  # prune and reset still run; growth does not
            grow, self.strategy.grow_grad2d = self.strategy.grow_grad2d, math.inf
        try:
            self.strategy.step_post_backward(self.params, optimizers, self.strategy_state, step, info)
        finally:
            if full:
                self.strategy.grow_grad2d = grow

    # ---------------------------------------------------------------- checkpoints
    def get_extra_state(self) -> dict:
        s = self.strategy_state or {}
        return {k: v for k, v in s.items() if isinstance(v, torch.Tensor)}

    def set_extra_state(self, state: dict) -> None:
        if self.strategy_state is not None:
            self.strategy_state.update(state)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Resize the parameters to the checkpoint's Gaussian count first (same Parameter objects)."""
        for name in PARAMETERS:
            saved = state_dict.get(f"params.{name}")
            if saved is not None and saved.shape != self.params[name].shape:
                self.params[name].data = torch.empty_like(saved, device=self.params[name].device)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ---------------------------------------------------------------- export
    @torch.no_grad()
    def colour_at(self, points: torch.Tensor) -> torch.Tensor:
        """Colour [P, 3] in [0, 1] at points [P, 3]: the opacity- and falloff-weighted mean of nearby Gaussians."""
        from dreamer.representations.gaussian_density import weighted_colour

        return weighted_colour(self, points)

    @torch.no_grad()
    def density_grid(self, resolution: int = 128, bound: float = 1.0) -> torch.Tensor:
        from dreamer.representations.gaussian_density import density_grid

        return density_grid(self, resolution, bound, lowpass=self.config.mesh_lowpass or 0.0)

    @torch.no_grad()
    def to_mesh(self, resolution: int = 128, fill_unseen: bool = True, fill_holes: bool = True,
                min_component_fraction: float = 0.01):
        """Marching cubes of the Gaussians' optical density (as the rasterizer draws them, `mesh_lowpass`), smoothed
        over `mesh_smoothing`, at the automatic (silhouette) iso-level; space no camera sees filled with
        `fill_unseen` (`render.solid`)."""
        import numpy as np
        import trimesh

        dens = self.density_grid(resolution)
        mesh = volume.density_to_mesh(dens, 1.0, smoothing=self.config.mesh_smoothing, fill_unseen=fill_unseen,
                                      fill_holes=fill_holes, min_component_fraction=min_component_fraction)
        if mesh is None:
            return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
        verts, faces = mesh
        colours = self.colour_at(torch.as_tensor(verts, dtype=torch.float32, device=dens.device))
        rgba = np.concatenate([(colours.clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8),
                               np.full((len(verts), 1), 255, dtype=np.uint8)], axis=1)
        return trimesh.Trimesh(verts, faces, vertex_colors=rgba, process=False)

    def splat_arrays(self):
        """The raw parameters for `splats.ply`."""
        from dreamer.render.splat.ply import SplatArrays

        p = {k: v.detach().float().cpu().numpy() for k, v in self.params.items()}
        import numpy as np

        return SplatArrays(means=p["means"], sh=np.concatenate([p["sh0"], p["shN"]], axis=1),
                           opacity_logits=p["opacities"], log_scales=p["scales"], quats=p["quats"])

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items()
                         if k in ("num_gaussians", "init", "sh_degree", "background")) + f", now={self.num_gaussians}"
