"""A UV-mapped mesh with one albedo texture, and its GLB file (PBR baseColorTexture)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from dreamer.export.gltf_tree import set_buffer_view_targets
from dreamer.io import atomic_save


@dataclass
class TexturedMesh:
    vertices: np.ndarray  # [V, 3] float64, split along UV seams
    faces: np.ndarray  # [F, 3] int64
    uv: np.ndarray  # [V, 2] float64 in [0, 1], origin bottom-left
    normals: np.ndarray  # [V, 3] unit vertex normals (smooth across seams)
    texture: np.ndarray  # [S, S, 3] uint8 albedo, row 0 = top
    double_sided: bool = False  # open surfaces show their back faces; closed ones need not

    def to_trimesh(self) -> trimesh.Trimesh:
        """A trimesh with TextureVisuals and a PBR material: albedo texture, metallic 0,
        roughness 1 (a diffuse look: the albedo field has no specular part)."""
        from PIL import Image

        material = trimesh.visual.material.PBRMaterial(
            name="albedo", baseColorTexture=Image.fromarray(self.texture),
            baseColorFactor=[255, 255, 255, 255], metallicFactor=0.0, roughnessFactor=1.0,
            doubleSided=self.double_sided)
        visual = trimesh.visual.TextureVisuals(uv=self.uv, material=material)
        return trimesh.Trimesh(self.vertices, self.faces, vertex_normals=self.normals, visual=visual,
                               process=False)


def write_textured_glb(mesh: TexturedMesh, path: Path | str) -> Path:
    """Binary glTF with positions, normals, UVs and the texture embedded as PNG."""
    path = Path(path)
    data = mesh.to_trimesh().export(file_type="glb", include_normals=True,
                                    tree_postprocessor=set_buffer_view_targets)
    atomic_save(path, lambda tmp: tmp.write_bytes(data))
    return path
