"""`splats.ply`: Gaussians in the layout of the 3D Gaussian splatting reference code.

Binary little-endian PLY, one `vertex` element per Gaussian, float32 properties in this order:
x y z, nx ny nz (zeros), f_dc_0..2 (degree-0 SH), f_rest_0.. (higher SH, channel-major: all of
red's coefficients, then green's, then blue's), opacity (logit), scale_0..2 (log), rot_0..3
(quaternion w x y z). Splat viewers and 3DGS tools read exactly these names, so the activations
are stored raw, as they do.

The format lives here, beside the rasterizer, rather than in `dreamer.export`: the Gaussians
representation reads it (`init: points`) and must not import the export layer; the run's
outputs (`dreamer.trainer.outputs`) write it beside the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamer.errors import UserError
from dreamer.io import atomic_save


@dataclass
class SplatArrays:
    """Raw (pre-activation) Gaussian parameters as numpy arrays."""

    means: np.ndarray  # [N, 3]
    sh: np.ndarray  # [N, K, 3] SH coefficients, K = (degree + 1)²
    opacity_logits: np.ndarray  # [N]
    log_scales: np.ndarray  # [N, 3]
    quats: np.ndarray  # [N, 4] w x y z

    def __len__(self) -> int:
        return self.means.shape[0]


def property_names(num_sh: int) -> list[str]:
    rest = [f"f_rest_{i}" for i in range(3 * (num_sh - 1))]
    return (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", *rest, "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"])


def write_splats_ply(splats: SplatArrays, path: Path | str) -> Path:
    n, k = splats.sh.shape[0], splats.sh.shape[1]
    names = property_names(k)
    columns = [splats.means, np.zeros((n, 3)), splats.sh[:, 0, :],
               splats.sh[:, 1:, :].transpose(0, 2, 1).reshape(n, -1),  # channel-major f_rest
               splats.opacity_logits.reshape(n, 1), splats.log_scales, splats.quats]
    table = np.concatenate([np.asarray(c, dtype=np.float32).reshape(n, -1) for c in columns], axis=1)
    assert table.shape[1] == len(names), (table.shape, len(names))
    header = "\n".join(["ply", "format binary_little_endian 1.0", f"element vertex {n}",
                        *[f"property float {name}" for name in names], "end_header"]) + "\n"
    data = np.ascontiguousarray(table, dtype="<f4").tobytes()

    def writer(tmp: Path) -> None:
        tmp.write_bytes(header.encode("ascii") + data)

    path = Path(path)
    atomic_save(path, writer)
    return path


def read_splats_ply(path: Path | str) -> SplatArrays:
    """Read a 3DGS-layout PLY (ours or another tool's); one-line UserError when it is not one."""
    raw = Path(path).read_bytes()
    end = raw.find(b"end_header\n")
    if not raw.startswith(b"ply") or end < 0:
        raise UserError(f"{path} is not a PLY file")
    lines = raw[:end].decode("ascii", errors="replace").splitlines()
    if "format binary_little_endian 1.0" not in lines:
        raise UserError(f"{path}: only binary little-endian splat PLY files are supported")
    count, names, dtypes = 0, [], []
    types = {"float": "<f4", "float32": "<f4", "double": "<f8", "uchar": "u1", "int": "<i4", "uint": "<u4"}
    in_vertex = False
    for line in lines:
        parts = line.split()
        if parts[:2] == ["element", "vertex"]:
            count, in_vertex = int(parts[2]), True
        elif parts[:1] == ["element"]:
            in_vertex = False
        elif parts[:1] == ["property"] and in_vertex:
            if parts[1] not in types:
                raise UserError(f"{path}: unsupported property type {parts[1]!r}")
            dtypes.append((parts[2], types[parts[1]]))
            names.append(parts[2])
    missing = [p for p in ("x", "y", "z", "f_dc_0", "opacity", "scale_0", "rot_0") if p not in names]
    if missing:
        raise UserError(f"{path} is not a Gaussian-splat PLY (missing {', '.join(missing)})")
    table = np.frombuffer(raw, dtype=np.dtype(dtypes), count=count, offset=end + len(b"end_header\n"))
    col = lambda *keys: np.stack([table[k].astype(np.float32) for k in keys], axis=1)  # noqa: E731
    rest = sorted((n for n in names if n.startswith("f_rest_")), key=lambda n: int(n.split("_")[-1]))
    k = 1 + len(rest) // 3
    sh = np.zeros((count, k, 3), dtype=np.float32)
    sh[:, 0, :] = col("f_dc_0", "f_dc_1", "f_dc_2")
    if rest:
        sh[:, 1:, :] = col(*rest).reshape(count, 3, k - 1).transpose(0, 2, 1)
    return SplatArrays(means=col("x", "y", "z"), sh=sh, opacity_logits=table["opacity"].astype(np.float32),
                       log_scales=col("scale_0", "scale_1", "scale_2"),
                       quats=col("rot_0", "rot_1", "rot_2", "rot_3"))
