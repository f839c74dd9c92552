"""Textured Wavefront OBJ: model.obj + model.mtl + model_albedo.png, referenced by relative name
so the three files can move together."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dreamer.export.textured import TexturedMesh
from dreamer.io import atomic_save, atomic_write_text

MATERIAL = "albedo"


def write_textured_obj(mesh: TexturedMesh, folder: Path | str, stem: str = "model") -> dict[str, Path]:
    """Write the texture, then the MTL, then the OBJ (so an OBJ never names a missing file);
    returns {"obj", "mtl", "texture"} -> path."""
    import imageio.v3 as iio

    folder = Path(folder)
    paths = {"obj": folder / f"{stem}.obj", "mtl": folder / f"{stem}.mtl",
             "texture": folder / f"{stem}_{MATERIAL}.png"}
    atomic_save(paths["texture"], lambda tmp: iio.imwrite(tmp, mesh.texture, extension=".png"))
    atomic_write_text(paths["mtl"], _mtl(paths["texture"].name))
    atomic_write_text(paths["obj"], _obj(mesh, paths["mtl"].name))
    return paths


def _mtl(texture_name: str) -> str:
    # Kd 1 so the texture shows as is; no specular (Ks 0), opaque, diffuse-only illumination.
    return (f"# dreamer\nnewmtl {MATERIAL}\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nNs 0\nd 1\nillum 1\n"
            f"map_Kd {texture_name}\n")


def _obj(mesh: TexturedMesh, mtl_name: str) -> str:
    buf = io.StringIO()
    buf.write(f"# dreamer\nmtllib {mtl_name}\no model\n")
    np.savetxt(buf, mesh.vertices, fmt="v %.6f %.6f %.6f")
    np.savetxt(buf, mesh.uv, fmt="vt %.6f %.6f")
    np.savetxt(buf, mesh.normals, fmt="vn %.5f %.5f %.5f")
    buf.write(f"usemtl {MATERIAL}\n")
    # one index per vertex serves position, UV and normal alike (vertices are split at seams)
    idx = np.repeat(mesh.faces + 1, 3, axis=1)  # [F, 9]
    np.savetxt(buf, idx, fmt="f %d/%d/%d %d/%d/%d %d/%d/%d")
    return buf.getvalue()
