"""A 4D splat asset on disk: canonical splats, the deformation field's weights, one PLY per frame.

`splats.ply` and every `frames/frame_NNN.ply` use the 3DGS layout of `dreamer.render.splat.ply`,
so any splat viewer opens each frame (a player steps through the folder); the canonical splats
plus `deformation.safetensors` are the compact form, for tools that run the field themselves.
The safetensors header's metadata says what the tensors are (names, shapes, frame count, and
whatever the caller adds: the field's kind and sizes).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dreamer.errors import UserError
from dreamer.io import atomic_save
from dreamer.render.splat.ply import SplatArrays, write_splats_ply

FORMAT = "dreamer-deformation/1"  # the metadata's "format" entry


def frame_name(index: int, frames: int) -> str:
    """frame_000.ply, ... (at least three digits, more when there are over 1000 frames)."""
    return f"frame_{index:0{max(3, len(str(frames - 1)))}d}.ply"


def write_deformation(state: dict[str, torch.Tensor], path: Path | str, metadata: dict | None = None) -> Path:
    """The deformation field's tensors as safetensors; metadata (JSON values) in its header."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().to("cpu").contiguous().clone() for name, t in state.items()}
    info = {"format": FORMAT, "tensors": json.dumps({n: list(t.shape) for n, t in tensors.items()}),
            **{key: value if isinstance(value, str) else json.dumps(value) for key, value in (metadata or {}).items()}}
    path = Path(path)
    atomic_save(path, lambda tmp: save_file(tensors, str(tmp), metadata=info))
    return path


def read_deformation(path: Path | str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a `write_deformation` file."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}, dict(f.metadata() or {})


def write_splat_sequence(canonical: SplatArrays, frames: list[SplatArrays], deformation: dict[str, torch.Tensor],
                         folder: Path | str, metadata: dict | None = None) -> dict[str, Path]:
    """splats.ply, deformation.safetensors and frames/frame_NNN.ply under `folder`; returns
    {"splats", "deformation", "frames" (the folder)}. Frame files left by a longer earlier export
    are removed, so the folder holds exactly this sequence."""
    if not frames:
        raise UserError("a splat sequence needs at least one frame")
    for k, frame in enumerate(frames):
        if len(frame) != len(canonical):
            raise UserError(f"splat frame {k} has {len(frame)} Gaussians, the canonical splats {len(canonical)}")
    folder = Path(folder)
    frame_folder = folder / "frames"
    frame_folder.mkdir(parents=True, exist_ok=True)
    names = [frame_name(k, len(frames)) for k in range(len(frames))]
    for name, frame in zip(names, frames):
        write_splats_ply(frame, frame_folder / name)
    for stale in frame_folder.glob("frame_*.ply"):
        if stale.name not in names:
            stale.unlink()
    info = {"frames": len(frames), "gaussians": len(canonical), **(metadata or {})}
    return {"splats": write_splats_ply(canonical, folder / "splats.ply"),
            "deformation": write_deformation(deformation, folder / "deformation.safetensors", info),
            "frames": frame_folder}
