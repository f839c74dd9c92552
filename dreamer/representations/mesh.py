"""A mesh representation: a DMTet-style SDF on a tetrahedral grid with a colour field.

Parameters: a signed distance per grid vertex, a bounded offset per grid vertex (the grid deforms
by at most half a cell, tanh-limited, so tetrahedra do not invert) and a colour field (a feature
grid + small MLP over 3D points, like the NeRF's albedo). Every render extracts the surface by
marching tetrahedra (`tetra.marching`), rasterizes it with the pure-PyTorch rasterizer
(`dreamer.render.mesh`) and colours each covered pixel by the field at its 3D surface point.
Gradients reach the SDF and the offsets through the surface vertices: inside the outline through
the diffuse shading (normals) and the colour field's position input, at the outline through
the analytic antialiasing.

Initialisation (`init`): a sphere; a shape-library object ("shape", tests and demos); or a
coloured triangle mesh ("mesh": a .ply/.obj/.glb file, e.g. an earlier run's result) — it gives the
SDF and its vertex colours are distilled into the colour field. The last is the second stage of the
Magic3D / DreamGaussian pipelines (`refine` in the run config writes the first stage's surface to
`<run>/refine/coarse.ply` and starts from it).

Regularisers (`MeshRegularizers`, weights in the run config's `regularizers`): "sdf_sign" — binary cross-entropy
between each cut edge's sigmoid(SDF) and the other end's sign (DMTet, Magic3D: discourages sign
flips, i.e. floaters and thin sheets); "laplacian" — mean squared distance of each surface
vertex to the mean of its neighbours (smooth surfaces).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.render.mesh import antialias, interpolate, rasterize
from dreamer.render.rays import camera_rays
from dreamer.representations.background import BACKGROUNDS, Background
from dreamer.representations.base import ColourField, ColourTunable, RenderOutput, Representation, train_only
from dreamer.representations.grid_encoding import make_encoding
from dreamer.representations.tetra import sdf_init
from dreamer.representations.tetra.grid import tet_grid
from dreamer.representations.tetra.marching import marching_tetrahedra

INITS = ("sphere", "shape", "mesh")


@dataclass
class MeshConfig:
    """Settings of the DMTet mesh representation."""

    grid_resolution: int = 32  # cubes per side of the tetrahedral grid (6 tetrahedra each)
    bound: float = 1.0  # the grid covers [−bound, bound]³
    init: Literal["sphere", "shape", "mesh"] = "sphere"
    init_radius: float = 0.5  # init = sphere
    init_shape: str = ""  # init = shape: a shape-library prompt, e.g. "a red chair"
    init_mesh: str = ""  # init = mesh: a closed mesh file with vertex colours (.ply, .obj, .glb)
    init_colour_steps: int = 200  # init = shape/mesh: Adam steps distilling the colour into the field
    deform: bool = True  # learn per-vertex offsets (at most half a cell)
    colour_grid: Literal["triplane", "dense", "hash"] = "triplane"
    colour_grid_resolution: int = 64
    colour_features: int = 8
    mlp_hidden: int = 32
    shading: Literal["albedo", "diffuse"] = "diffuse"  # diffuse: Lambert, light at the camera
    ambient: float = 0.3  # diffuse shading: ambient light fraction
    antialias: bool = True  # blend the outline (gives the silhouette a gradient)
    background: Literal["learned", "white", "black", "random"] = "white"
    lr_sdf: float = 1e-3
    lr_deform: float = 1e-3
    lr_grid: float = 1e-2
    lr_mlp: float = 1e-3
    lr_background: float = 1e-3

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise UserError(f"mesh.init = {self.init!r} is not one of {', '.join(INITS)}")
        if self.background not in BACKGROUNDS:
            raise UserError(f"mesh.background = {self.background!r} is not one of {', '.join(BACKGROUNDS)}")
        if self.shading not in ("albedo", "diffuse"):
            raise UserError(f"mesh.shading = {self.shading!r} is not one of albedo, diffuse")
        if not 4 <= int(self.grid_resolution) <= 256:
            raise UserError(f"mesh.grid_resolution must lie in 4…256, got {self.grid_resolution}")
        if self.init == "shape" and not self.init_shape:
            raise UserError("mesh.init = 'shape' needs mesh.init_shape, a prompt such as \"a red chair\"")
        if self.init == "mesh" and not self.init_mesh:
            raise UserError("mesh.init = 'mesh' needs mesh.init_mesh, a mesh file with vertex colours")
        if self.bound <= 0 or self.init_radius <= 0 or not 0 <= self.ambient <= 1:
            raise UserError("mesh.bound and mesh.init_radius must be positive and mesh.ambient in [0, 1]")


@dataclass
class MeshRegularizers:
    """Weights (0 = off) of the mesh's regularizers."""

    sdf_sign: float = 0.0  # BCE between a cut edge's sigmoid(SDF) and the other end's sign (fewer floaters, sheets)
    laplacian: float = 0.0  # mean squared distance of a surface vertex to its neighbours' mean (smoothness)


class MeshRepresentation(Representation, ColourField, ColourTunable):
    """A DMTet surface with a colour field, rendered by rasterization."""

    regularizer_weights = MeshRegularizers

    @classmethod
    def restore_config(cls, config: MeshConfig) -> MeshConfig:
        """A checkpoint holds every parameter: skip rebuilding the start from a mesh file (seconds of
        SDF and colour fitting, and the file may be gone)."""
        if config.init == "mesh":
            return replace(config, init="sphere")
        return config

    def __init__(self, config: MeshConfig | None = None):
        super().__init__()
        self.config = c = config if config is not None else MeshConfig()
        grid = tet_grid(int(c.grid_resolution), c.bound)
        self.register_buffer("grid_vertices", grid.vertices, persistent=False)
        self.register_buffer("tets", grid.tets, persistent=False)
        self.register_buffer("edges", grid.edges, persistent=False)
        self.register_buffer("tet_edges", grid.tet_edges, persistent=False)
        self.cell = grid.cell
        self.sdf = torch.nn.Parameter(torch.zeros(len(grid.vertices)))
        self.deformation = torch.nn.Parameter(torch.zeros(len(grid.vertices), 3), requires_grad=c.deform)
        self.encoding = make_encoding(c.colour_grid, c.colour_grid_resolution, c.colour_features)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(self.encoding.out_dim, c.mlp_hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(c.mlp_hidden, 3))
        self.background_model = Background(c.background)
        self._initialise()

    # ---------------------------------------------------------------- fields
    def colour_at(self, points: torch.Tensor) -> torch.Tensor:
        """Albedo [N, 3] in [0, 1] at world points [N, 3] (also the export colour contract)."""
        x = (points / self.config.bound).clamp(-1, 1)
        return torch.sigmoid(self.mlp(self.encoding(x)))

    def grid(self):
        from dreamer.representations.tetra.grid import TetGrid

        return TetGrid(self.grid_vertices, self.tets, self.edges, self.tet_edges, self.cell)

    def surface(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(vertices [M, 3] with gradients, faces [F, 3], cut grid edges [M, 2]) of the current SDF."""
        offsets = torch.tanh(self.deformation) * (0.5 * self.cell) if self.config.deform else 0.0
        return marching_tetrahedra(self.grid_vertices + offsets, self.sdf, self.grid())

    # ---------------------------------------------------------------- initialisation
    @torch.no_grad()
    def _initialise(self) -> None:
        c = self.config
        points = self.grid_vertices
        if c.init == "sphere":
            self.sdf.copy_(sdf_init.sphere_sdf(points, c.init_radius))
            return
        if c.init == "shape":
            from dreamer.shapes import parse_prompt
            from dreamer.shapes.spec import sdf_and_colour

            spec = parse_prompt(c.init_shape)
            self.sdf.copy_(sdf_init.shape_sdf(points, c.init_shape))
            colour_fn = lambda p: sdf_and_colour(spec, p)[1]  # noqa: E731
        else:
            mesh = sdf_init.load_mesh(c.init_mesh)
            self.sdf.copy_(sdf_init.mesh_sdf(points, mesh))
            colour_fn = sdf_init.vertex_colour_fn(mesh)
        with torch.enable_grad():
            self._distil_colour(colour_fn)

    def _distil_colour(self, colour_fn) -> None:
        """Fit the colour field to `colour_fn` near the initial surface (Adam, `init_colour_steps`)."""
        vertices, faces, _ = self.surface()
        if len(faces) == 0 or self.config.init_colour_steps == 0:
            return
        generator = torch.Generator().manual_seed(0)
        tri = vertices.detach()[faces]  # [F, 3, 3]
        face = torch.randint(len(faces), (4096,), generator=generator)
        w = torch.rand(len(face), 3, generator=generator)
        w = w / w.sum(-1, keepdim=True)
        points = (w[:, :, None] * tri[face]).sum(1)
        points = points + torch.randn(points.shape, generator=generator) * (0.5 * self.cell)
        with torch.no_grad():
            target = colour_fn(points).float().clamp(0, 1)
        opt = torch.optim.Adam([{"params": self.encoding.parameters(), "lr": 1e-2},
                                {"params": self.mlp.parameters(), "lr": 1e-2}])
        for _ in range(self.config.init_colour_steps):
            opt.zero_grad()
            F.mse_loss(self.colour_at(points), target).backward()
            opt.step()

    # ---------------------------------------------------------------- rendering
    def render(self, camera: Camera, background: torch.Tensor | None = None) -> RenderOutput:
        c = self.config
        vertices, faces, cut_edges = self.surface()
        _, dirs = camera_rays(camera)
        bg = self.background_model(dirs) if background is None else background.to(dirs).expand_as(dirs)
        if len(faces) == 0:  # the surface left the grid: an empty render (the background)
            zeros = dirs[..., :1] * 0
            return RenderOutput(rgb=bg, alpha=zeros, depth=zeros,
                                extras={"regularizers": self._regularizers(vertices, faces, cut_edges)})
        frags = rasterize(vertices, faces, camera)
        covered = frags.mask[..., 0] > 0
        position = interpolate(vertices, faces, frags)  # [B, H, W, 3]
        colour = torch.zeros_like(position)
        colour[covered] = self.colour_at(position[covered])
        if c.shading == "diffuse":
            normal = F.normalize(interpolate(_vertex_normals(vertices, faces), faces, frags), dim=-1, eps=1e-9)
            light = F.normalize(camera.position.to(position)[:, None, None, :] - position, dim=-1)
            lambert = (normal * light).sum(-1, keepdim=True).abs()  # both sides lit: the winding may flip in thin parts
            colour = colour * (c.ambient + (1 - c.ambient) * lambert)
        rgba = torch.cat([colour * frags.mask + bg * (1 - frags.mask), frags.mask], dim=-1)
        if c.antialias:
            rgba = antialias(rgba, frags, vertices, faces, camera)
        return RenderOutput(rgb=rgba[..., :3], alpha=rgba[..., 3:], depth=frags.depth,
                            extras={"regularizers": self._regularizers(vertices, faces, cut_edges)})

    def _regularizers(self, vertices, faces, cut_edges) -> dict[str, torch.Tensor]:
        zero = self.sdf.sum() * 0
        if len(faces) == 0:
            return {"sdf_sign": zero, "laplacian": zero}
        s = self.sdf[cut_edges]  # [M, 2], opposite signs
        sign = (s > 0).float()
        sdf_sign = (F.binary_cross_entropy_with_logits(s[:, 0], sign[:, 1])
                    + F.binary_cross_entropy_with_logits(s[:, 1], sign[:, 0])) / 2
        return {"sdf_sign": sdf_sign, "laplacian": _laplacian(vertices, faces)}

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        return dict(out.extras.get("regularizers", {}))

    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        c = self.config
        groups = [{"params": [self.sdf], "lr": c.lr_sdf * lr_scale, "name": "sdf"},
                  {"params": list(self.encoding.parameters()), "lr": c.lr_grid * lr_scale, "name": "grid"},
                  {"params": list(self.mlp.parameters()), "lr": c.lr_mlp * lr_scale, "name": "mlp"}]
        if c.deform:
            groups.append({"params": [self.deformation], "lr": c.lr_deform * lr_scale, "name": "deform"})
        bg = list(self.background_model.parameters())
        if bg:
            groups.append({"params": bg, "lr": c.lr_background * lr_scale, "name": "background"})
        return groups

    def colour_parameter_groups(self, lr: float) -> list[dict]:
        """`ColourTunable`: the colour field (its grid and MLP); the SDF and the vertex offsets stay fixed."""
        colour = train_only(self, [*self.encoding.parameters(), *self.mlp.parameters()])
        return [{"params": colour, "lr": lr, "name": "colour"}]

    # ---------------------------------------------------------------- export
    @torch.no_grad()
    def to_mesh(self, resolution: int = 128, fill_unseen: bool = True):
        """The extracted surface itself (`resolution` and `fill_unseen` are unused: the grid sets the
        surface), vertex colours from the field."""
        import trimesh

        vertices, faces, _ = self.surface()
        verts = vertices.cpu().numpy().astype(np.float64)
        if len(faces) == 0:
            return trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
        albedo = self.colour_at(vertices).clamp(0, 1).cpu().numpy()
        rgba = np.concatenate([(albedo * 255).round().astype(np.uint8), np.full((len(verts), 1), 255, np.uint8)], 1)
        return trimesh.Trimesh(verts, faces.cpu().numpy(), vertex_colors=rgba, process=False)

    def extra_repr(self) -> str:
        c = self.config
        return f"grid_resolution={c.grid_resolution}, init={c.init}, shading={c.shading}"


def _vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """[M, 3] area-weighted sums of the adjacent face normals (unnormalised)."""
    p = vertices[faces]
    face_normal = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=-1)
    return torch.zeros_like(vertices).index_add(0, faces.reshape(-1), face_normal.repeat_interleave(3, dim=0))


def _laplacian(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Mean ‖v − mean of v's neighbours‖² over surface vertices (uniform weights)."""
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = torch.cat([edges, edges.flip(1)])  # both directions
    total = torch.zeros_like(vertices).index_add(0, edges[:, 0], vertices[edges[:, 1]])
    count = torch.zeros(len(vertices), device=vertices.device).index_add(
        0, edges[:, 0], torch.ones(len(edges), device=vertices.device))
    used = count > 0
    return (vertices[used] - total[used] / count[used, None]).pow(2).sum(-1).mean()
