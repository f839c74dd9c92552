"""Animated binary glTF: a looping clip of T frames as morph targets, or as node TRS keys.

Written by hand (JSON chunk + BIN chunk) rather than through trimesh, whose exporter has no
animations. Both files loop: the animation has T + 1 keys at k / fps, the last equal to the first,
so a viewer that repeats the clip (three.js' AnimationMixer, model-viewer's autoplay) plays frame
T-1 -> frame 0 as smoothly as any other step.

- `write_animated_glb`: the canonical surface (vertex colours) plus one morph target per frame
  (POSITION and NORMAL displacements frame_k − base); the `weights` channel is one-hot k at key k
  with LINEAR interpolation, so between keys the surface blends two neighbouring frames.
- `write_trs_glb`: the canonical surface on a node whose translation / rotation (xyzw) / scale
  follow T similarity matrices (rigid motion: a fraction of the size, and exact between keys).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import trimesh

from dreamer.errors import UserError
from dreamer.export.gltf_tree import ARRAY_BUFFER, ELEMENT_ARRAY_BUFFER
from dreamer.io import atomic_save

FLOAT, UNSIGNED_BYTE, UNSIGNED_SHORT, UNSIGNED_INT = 5126, 5121, 5123, 5125
GREY = (0.7, 0.7, 0.7)  # colour of a mesh that carries none


class _GlbBuilder:
    """Accessors and buffer views packed into one binary buffer (each view 4-byte aligned)."""

    def __init__(self) -> None:
        self.blob = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def add(self, array: np.ndarray, kind: str, target: int | None = None, normalized: bool = False,
            bounds: bool = False) -> int:
        """Append `array` ([N] SCALAR or [N, C] VECC) as an accessor; returns its index."""
        component = {np.float32: FLOAT, np.uint8: UNSIGNED_BYTE, np.uint16: UNSIGNED_SHORT,
                     np.uint32: UNSIGNED_INT}[array.dtype.type]
        data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        view = {"buffer": 0, "byteOffset": len(self.blob), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.blob.extend(data)
        self.views.append(view)
        accessor = {"bufferView": len(self.views) - 1, "componentType": component, "count": int(array.shape[0]),
                    "type": kind}
        if normalized:
            accessor["normalized"] = True
        if bounds:  # float min/max, read back exactly as the validator reads the data
            flat = array.reshape(array.shape[0], -1)
            accessor["min"] = [float(v) for v in flat.min(axis=0)]
            accessor["max"] = [float(v) for v in flat.max(axis=0)]
        self.accessors.append(accessor)
        return len(self.accessors) - 1

    def glb(self, tree: dict) -> bytes:
        """The GLB container: header, JSON chunk (space-padded), BIN chunk (zero-padded)."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        tree = {**tree, "accessors": self.accessors, "bufferViews": self.views,
                "buffers": [{"byteLength": len(self.blob)}]}
        text = json.dumps(tree, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 4)
        total = 12 + 8 + len(text) + 8 + len(self.blob)
        return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<I4s", len(text), b"JSON") + text
                + struct.pack("<I4s", len(self.blob), b"BIN\0") + bytes(self.blob))


def _surface(mesh: trimesh.Trimesh, colour) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(positions [V, 3] float32, normals [V, 3] float32, colours [V, 4] uint8, indices [3F])."""
    if len(mesh.faces) == 0:
        raise UserError("the mesh is empty (nothing above the iso-level): train longer or check the run")
    positions = np.asarray(mesh.vertices, dtype=np.float32)
    if colour is not None:
        rgb = np.broadcast_to(np.asarray(colour, dtype=np.float64), positions.shape)
        colours = np.concatenate([np.clip(np.round(rgb * 255), 0, 255), np.full((len(rgb), 1), 255)], 1)
    elif mesh.visual.kind == "vertex":
        colours = mesh.visual.vertex_colors
    else:
        colours = np.concatenate([np.round(np.array(GREY) * 255), [255]])[None].repeat(len(positions), 0)
    colours = np.ascontiguousarray(colours, dtype=np.uint8)
    faces = np.asarray(mesh.faces)
    indices = faces.reshape(-1).astype(np.uint16 if len(positions) < 65535 else np.uint32)
    return positions, _unit_normals(positions, faces), colours, indices


def _unit_normals(positions: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted vertex normals, unit length in float32 (+Z for a vertex with no area)."""
    mesh = trimesh.Trimesh(positions.astype(np.float64), faces, process=False)
    normals = np.asarray(mesh.vertex_normals, dtype=np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    return normals.astype(np.float32)


def _primitive(builder: _GlbBuilder, mesh: trimesh.Trimesh, colour) -> tuple[dict, np.ndarray, np.ndarray]:
    """The triangle primitive of `mesh` (attributes, indices, material 0); also its positions and normals."""
    positions, normals, colours, indices = _surface(mesh, colour)
    attributes = {"POSITION": builder.add(positions, "VEC3", ARRAY_BUFFER, bounds=True),
                  "NORMAL": builder.add(normals, "VEC3", ARRAY_BUFFER),
                  "COLOR_0": builder.add(colours, "VEC4", ARRAY_BUFFER, normalized=True)}
    primitive = {"attributes": attributes, "indices": builder.add(indices, "SCALAR", ELEMENT_ARRAY_BUFFER),
                 "material": 0, "mode": 4}
    return primitive, positions, normals


def _tree(mesh: trimesh.Trimesh, primitive: dict, node: dict, animation: dict, extra_mesh: dict | None = None) -> dict:
    # metallic 0, roughness 1: the vertex colours are an albedo with no specular part (the glTF
    # default material is fully metallic, which renders them dark).
    material = {"name": "albedo", "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": 1.0},
                "doubleSided": not mesh.is_watertight}
    return {"asset": {"version": "2.0", "generator": "dreamer"}, "scene": 0, "scenes": [{"nodes": [0]}],
            "nodes": [{"mesh": 0, "name": "model", **node}], "meshes": [{"primitives": [primitive], **(extra_mesh or {})}],
            "materials": [material], "animations": [animation]}


def _key_times(builder: _GlbBuilder, frames: int, fps: float) -> int:
    """T + 1 key times k / fps (k = 0..T): the last key closes the loop."""
    times = (np.arange(frames + 1, dtype=np.float64) / fps).astype(np.float32)
    return builder.add(times, "SCALAR", bounds=True)


def _check_fps(fps: float) -> float:
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
        raise UserError(f"the animation frame rate must be a positive number, got {fps!r}")
    return float(fps)


def write_animated_glb(mesh: trimesh.Trimesh, frames: list[np.ndarray] | np.ndarray, path: Path | str,
                       fps: float, colour=None) -> Path:
    """A looping morph-target animation: `mesh` (the canonical surface) and frames [T, V, 3] (where
    each vertex is at frame k). `colour`: an RGB in [0, 1] (one, or [V, 3]) instead of the mesh's
    vertex colours. Returns `path`."""
    fps = _check_fps(fps)
    targets = np.asarray(frames, dtype=np.float64)
    vertex_count = len(mesh.vertices)
    if targets.ndim != 3 or targets.shape[0] < 1 or targets.shape[1:] != (vertex_count, 3):
        raise UserError(f"animation frames must be [T, {vertex_count}, 3] (one position per mesh vertex), "
                        f"got {list(targets.shape)}")
    if not np.isfinite(targets).all():
        raise UserError("animation frames contain NaN or infinite positions")
    builder = _GlbBuilder()
    primitive, positions, normals = _primitive(builder, mesh, colour)
    faces = np.asarray(mesh.faces)
    primitive["targets"] = []
    for frame in targets:
        moved = frame.astype(np.float32)
        primitive["targets"].append({
            "POSITION": builder.add((moved.astype(np.float64) - positions).astype(np.float32), "VEC3", ARRAY_BUFFER,
                                    bounds=True),
            "NORMAL": builder.add(_unit_normals(moved, faces) - normals, "VEC3", ARRAY_BUFFER)})
    count = len(targets)
    weights = np.eye(count, dtype=np.float32)[np.arange(count + 1) % count]  # [T + 1, T] one-hot, looped
    sampler = {"input": _key_times(builder, count, fps), "interpolation": "LINEAR",
               "output": builder.add(weights.reshape(-1), "SCALAR")}
    animation = {"name": "motion", "samplers": [sampler],
                 "channels": [{"sampler": 0, "target": {"node": 0, "path": "weights"}}]}
    extra = {"weights": [0.0] * count, "extras": {"targetNames": [f"frame_{k:03d}" for k in range(count)]}}
    data = builder.glb(_tree(mesh, primitive, {}, animation, extra))
    return _save(path, data)


def decompose_similarity(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 4x4 translation·rotation·scale matrix -> (translation [3], quaternion xyzw [4], scale [3]).
    A reflection is carried by a negative x scale; shear is not representable (UserError)."""
    m = np.asarray(matrix, dtype=np.float64)
    linear = m[:3, :3]
    scale = np.linalg.norm(linear, axis=0)
    if np.any(scale < 1e-12):
        raise UserError("a motion matrix has a zero scale: it cannot be written as node TRS")
    rotation = linear / scale
    if np.linalg.det(rotation) < 0:
        scale[0], rotation[:, 0] = -scale[0], -rotation[:, 0]
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-4) or not np.allclose(m[3], [0, 0, 0, 1]):
        raise UserError("a motion matrix is not translation·rotation·scale (shear or projection): use morph targets")
    return m[:3, 3].copy(), _quaternion_xyzw(rotation), scale


def _quaternion_xyzw(r: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a rotation matrix (Shepperd's method, stable for every angle)."""
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + r[i, i] - r[j, j] - r[k, k])
        q = [0.0, 0.0, 0.0, (r[k, j] - r[j, k]) / s]
        q[i], q[j], q[k] = 0.25 * s, (r[j, i] + r[i, j]) / s, (r[k, i] + r[i, k]) / s
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def write_trs_glb(mesh: trimesh.Trimesh, matrices: np.ndarray, path: Path | str, fps: float, colour=None) -> Path:
    """A looping rigid (similarity) animation: `mesh` in canonical space on a node whose transform at
    frame k is matrices[k] ([T, 4, 4], canonical -> world). Returns `path`."""
    fps = _check_fps(fps)
    matrices = np.asarray(matrices, dtype=np.float64)
    if matrices.ndim != 3 or matrices.shape[0] < 1 or matrices.shape[1:] != (4, 4):
        raise UserError(f"motion matrices must be [T, 4, 4], got {list(matrices.shape)}")
    parts = [decompose_similarity(m) for m in matrices]
    translation, rotation, scale = (np.stack([p[i] for p in parts]) for i in range(3))
    for k in range(1, len(rotation)):  # same hemisphere as the previous key: slerp takes the short way
        if np.dot(rotation[k], rotation[k - 1]) < 0:
            rotation[k] = -rotation[k]
    builder = _GlbBuilder()
    primitive, _, _ = _primitive(builder, mesh, colour)
    times = _key_times(builder, len(matrices), fps)
    samplers, channels = [], []
    for name, values in (("translation", translation), ("rotation", rotation), ("scale", scale)):
        first = values[:1]
        if name == "rotation" and np.dot(values[0], values[-1]) < 0:
            first = -first  # the loop key is the first rotation in the last key's hemisphere: a full turn goes on
                            # forward to it instead of slerping back the long way round
        looped = np.concatenate([values, first]).astype(np.float32)  # the loop key repeats the first
        if name == "rotation":
            looped /= np.linalg.norm(looped, axis=1, keepdims=True)
        samplers.append({"input": times, "interpolation": "LINEAR",
                         "output": builder.add(looped, "VEC4" if name == "rotation" else "VEC3")})
        channels.append({"sampler": len(samplers) - 1, "target": {"node": 0, "path": name}})
    node = {"translation": translation[0].tolist(), "rotation": rotation[0].tolist(), "scale": scale[0].tolist()}
    data = builder.glb(_tree(mesh, primitive, node, {"name": "motion", "samplers": samplers, "channels": channels}))
    return _save(path, data)


def _save(path: Path | str, data: bytes) -> Path:
    path = Path(path)
    atomic_save(path, lambda tmp: tmp.write_bytes(data))
    return path
