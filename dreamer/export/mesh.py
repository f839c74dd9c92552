"""Mesh files: model.glb always, model.obj / model.ply on request, each written atomically."""

from __future__ import annotations

from pathlib import Path

import trimesh

from dreamer.errors import UserError
from dreamer.export.gltf_tree import set_buffer_view_targets
from dreamer.io import atomic_save

FORMATS = ("glb", "obj", "ply")


def write_mesh(mesh: trimesh.Trimesh, path: Path | str) -> Path:
    """Write `mesh` (vertex colours kept) in the format named by the suffix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UserError(f"unknown mesh format '{fmt}': choose one of {', '.join(FORMATS)}")
    if len(mesh.faces) == 0:
        raise UserError("the mesh is empty (nothing above the iso-level): train longer or check the run")

    def writer(tmp: Path) -> None:
        if fmt == "obj":
            # OBJ has no standard vertex-colour field; trimesh writes "v x y z r g b", which
            # MeshLab, Blender and trimesh read back.
            data = trimesh.exchange.obj.export_obj(mesh, include_color=True, include_texture=False)
            tmp.write_text(data)
        elif fmt == "glb":
            mesh.export(tmp, file_type=fmt, tree_postprocessor=set_buffer_view_targets)
        else:
            mesh.export(tmp, file_type=fmt)

    atomic_save(path, writer)
    return path


def write_meshes(mesh: trimesh.Trimesh, folder: Path | str, formats: list[str], stem: str = "model") -> dict[str, Path]:
    """model.glb plus the other requested formats; returns format -> path."""
    folder = Path(folder)
    wanted = ["glb"] + [f for f in formats if f != "glb"]
    return {fmt: write_mesh(mesh, folder / f"{stem}.{fmt}") for fmt in dict.fromkeys(wanted)}
