"""The contract every representation (NeRF, Gaussians, mesh) fulfils.

Besides the methods of `Representation`, a representation declares what else it offers, so that
the trainer and the exporters never probe with hasattr/getattr:

- `regularizer_weights` (class attribute): the dataclass of its regularizer weights, one float
  field per name that `regularization` returns. The run config's `regularizers` section is
  checked against it (an unknown name is an error, with a suggestion).
- `ColourField` (protocol): `colour_at(points)`, albedo at 3D points; exports bake it into textures.
- `ColourTunable` (protocol): `colour_parameter_groups(lr)`, what sets colour alone (the colour stage).
- `SplatSource` (protocol): `splat_arrays()`, raw Gaussian parameters; exports write `splats.ply`.
- `restore_config(config)` (class method): the config to rebuild it with before loading a
  checkpoint (lets a representation skip a costly initialisation that the checkpoint replaces).
- `is_dynamic` (class attribute): True for 4D representations, which render each camera at its
  `Camera.time` and fulfil `Animated`; static ones ignore time.
- `fills_unseen` (class attribute): True when `to_mesh(..., fill_unseen=True)` fills space no
  camera sees (`render.solid`, the density fields); the others ignore `fill_unseen`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import torch

from dreamer.cameras import Camera

if TYPE_CHECKING:
    from dreamer.render.splat.ply import SplatArrays


@dataclass
class RenderOutput:
    rgb: torch.Tensor  # [B, H, W, 3] in [0, 1], composited over the background
    alpha: torch.Tensor  # [B, H, W, 1] accumulated opacity in [0, 1]
    depth: torch.Tensor  # [B, H, W, 1] expected depth along the ray (0 where empty)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. "weights", "regularizers"


@dataclass
class NoRegularizers:
    """A representation without regularizers: the `regularizers` section must stay empty."""


@dataclass
class AlphaRegularizers:
    """Weights (0 = off) of the regularizers of a rendered alpha, shared by the NeRF and the Gaussians
    (same names, same math) so that presets can carry one set of weights across both."""

    opacity: float = 0.0  # mean binary entropy of alpha: pushes pixels to fully empty or fully opaque
    sparsity: float = 0.0  # mean sqrt(alpha² + 0.01) (DreamFusion): penalises total opacity, keeps empty space empty


class Representation(torch.nn.Module):
    """A 3D asset with parameters that a guidance loss can optimise.

    Subclasses implement `render`, `parameter_groups` and `to_mesh`. `before_step(step)` and
    `after_step(step, optimizer)` are optional hooks (occupancy-grid updates, densification).
    `background` is an RGB tensor broadcastable to [B, H, W, 3] or None for the
    representation's own background model.
    """

    # The dataclass of this representation's regularizer weights (see the module docstring).
    regularizer_weights: ClassVar[type] = NoRegularizers
    # 4D: renders at each camera's time and fulfils `Animated` (static representations ignore time).
    is_dynamic: ClassVar[bool] = False
    # Whether `to_mesh` fills space no camera sees when asked (`fill_unseen`, the `export.fill_unseen` option).
    fills_unseen: ClassVar[bool] = False

    def render(self, camera: Camera, background: torch.Tensor | None = None) -> RenderOutput:
        raise NotImplementedError

    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        """Optimizer parameter groups (each a dict with "params", "lr", "name")."""
        raise NotImplementedError

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        """Scalar regularisers computed from a render, named by the fields of `regularizer_weights`
        (the trainer weights them)."""
        return {}

    def before_step(self, step: int) -> None:
        pass

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        pass

    def to_mesh(self, resolution: int = 128, fill_unseen: bool = True):  # -> trimesh.Trimesh with vertex colours
        raise NotImplementedError

    @classmethod
    def restore_config(cls, config: Any) -> Any:
        """The config to build this representation with when a checkpoint will overwrite every
        parameter (default: `config` unchanged)."""
        return config


@runtime_checkable
class ColourField(Protocol):
    """A representation with a colour field (NeRF, mesh, Gaussians)."""

    def colour_at(self, points: torch.Tensor) -> torch.Tensor:
        """Albedo [N, 3] in [0, 1] at world points [N, 3]."""
        ...


@runtime_checkable
class ColourTunable(Protocol):
    """A representation whose colour can train while its shape stays fixed (the colour stage, `colour.share`)."""

    def colour_parameter_groups(self, lr: float) -> list[dict]:
        """Optimizer groups of what sets colour only, at learning rate `lr`. Freezes the rest for good
        (requires_grad off), so that no gradient reaches the shape."""
        ...


def train_only(module: torch.nn.Module, params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    """Turn gradients off for every parameter of `module` except `params` (returned): `ColourTunable`'s freeze."""
    for p in module.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    return params


@runtime_checkable
class SplatSource(Protocol):
    """A representation made of Gaussian splats (exports also write them as `splats.ply`)."""

    def splat_arrays(self) -> "SplatArrays":
        """The raw (pre-activation) parameters, as numpy arrays."""
        ...


@runtime_checkable
class Animated(Protocol):
    """A 4D representation: a canonical asset moved by a deformation field over a looping time in [0, 1).

    `to_mesh` gives the canonical surface; `deform_points` moves points of it to any time (the
    animated glTF's morph targets); `set_stage("static")` renders the canonical asset at every time
    and keeps the deformation fixed, `set_stage("motion")` turns the deformation on.
    """

    def deform_points(self, points: torch.Tensor, time: float) -> torch.Tensor:
        """Canonical points [N, 3] -> where the deformation puts them at `time` [N, 3]."""
        ...

    def splat_arrays_at(self, time: float) -> "SplatArrays":
        """The deformed splats at `time` (raw parameters, as `splat_arrays`), for the per-frame PLY sequence."""
        ...

    def deformation_state(self) -> dict[str, torch.Tensor]:
        """The deformation field's weights (written beside the canonical splats)."""
        ...

    def set_stage(self, stage: str) -> None:
        """"static" (canonical only, deformation frozen) or "motion"."""
        ...
