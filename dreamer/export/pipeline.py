"""The mesh export pipeline: (mesh, colour function) -> model.glb (+ obj/mtl/png, ply).

decimate to the face cap -> colour at the new vertices -> xatlas UV unwrap -> bake the colour
into a texture -> write. Each stage is timed. Without a colour function the mesh's own vertex
colours stand in for one; without texture (or without any colour) the files carry vertex colours.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh

from dreamer.errors import UserError
from dreamer.export.bake import bake_texture
from dreamer.export.colour import ColourFn, has_vertex_colours, to_rgba8, vertex_colour_fn
from dreamer.export.decimate import decimate
from dreamer.export.mesh import write_mesh
from dreamer.export.obj import write_textured_obj
from dreamer.export.options import MeshExportOptions
from dreamer.export.textured import TexturedMesh, write_textured_glb
from dreamer.export.unwrap import unwrap


@dataclass
class MeshExport:
    """What an export wrote, and what it took."""

    paths: dict[str, Path]  # glb / obj / mtl / texture / ply -> path, glb first
    faces_in: int  # faces of the mesh given
    faces: int  # faces written (after decimation)
    vertices: int  # vertices written in the GLB (split along UV seams when textured)
    textured: bool  # whether the GLB/OBJ carry a baked texture
    charts: int | None = None  # UV charts (textured only)
    coverage: float | None = None  # fraction of texels inside charts (textured only)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds


def export_mesh(mesh: trimesh.Trimesh, colour_fn: ColourFn | None, folder: Path | str,
                options: MeshExportOptions | None = None, stem: str = "model") -> MeshExport:
    """Write `options.wanted()` formats of `mesh` into `folder` as `stem`.*."""
    options = (options or MeshExportOptions()).validate()
    if len(mesh.faces) == 0:
        raise UserError("the mesh is empty (nothing above the iso-level): train longer or check the run")
    if colour_fn is None and has_vertex_colours(mesh):
        colour_fn = vertex_colour_fn(mesh)
    seconds: dict[str, float] = {}

    with _timed(seconds, "decimate"):
        vertices, faces = decimate(mesh.vertices, mesh.faces, options.max_faces)
        simple = trimesh.Trimesh(vertices, faces, process=False)
    with _timed(seconds, "colour"):
        if colour_fn is not None:
            simple.visual.vertex_colors = to_rgba8(colour_fn(vertices))
    textured = None
    result = MeshExport(paths={}, faces_in=len(mesh.faces), faces=len(faces), vertices=len(vertices),
                        textured=False, seconds=seconds)
    if options.texture and colour_fn is not None:
        with _timed(seconds, "unwrap"):
            uv_mesh = unwrap(vertices, faces, options.texture_size, options.padding)
        with _timed(seconds, "bake"):
            baked = bake_texture(uv_mesh, colour_fn, options.texture_size, options.padding)
        textured = TexturedMesh(vertices=uv_mesh.vertices, faces=uv_mesh.faces, uv=uv_mesh.uv,
                                normals=np.asarray(simple.vertex_normals)[uv_mesh.source],
                                texture=baked.image, double_sided=not simple.is_watertight)
        result.textured, result.charts, result.coverage = True, uv_mesh.charts, baked.coverage
        result.vertices = len(uv_mesh.vertices)

    folder = Path(folder)
    with _timed(seconds, "write"):
        for fmt in options.wanted():
            if fmt == "glb" and textured is not None:
                result.paths["glb"] = write_textured_glb(textured, folder / f"{stem}.glb")
            elif fmt == "obj" and textured is not None:
                result.paths.update(write_textured_obj(textured, folder, stem))
            else:  # vertex colours: PLY always, GLB/OBJ without texture
                result.paths[fmt] = write_mesh(simple, folder / f"{stem}.{fmt}")
    return result


@contextmanager
def _timed(seconds: dict[str, float], stage: str):
    start = time.perf_counter()
    yield
    seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
