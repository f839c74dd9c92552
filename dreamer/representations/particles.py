"""Several particles: N representations of one kind optimised side by side (VSD/ESD's `particles`).

ProlificDreamer's Algorithm 1 keeps n particles θ⁽¹⁾…θ⁽ⁿ⁾ and one shared particle model (the LoRA):
each iteration renders a particle from a random camera, updates that particle by the VSD gradient
and updates the LoRA on the render. `ParticleSet` is that set behind the ordinary representation
contract, so the trainer, checkpoints and the guidance rule need no special case:

- training renders hand the batch's cameras out round-robin — camera b of step s goes to particle
  (s·B + b) mod n — so every particle is rendered equally often and the batch cost is unchanged
  (with B = n every particle gets one camera per step);
- the optimizer sees every member's parameter groups, each tagged with `"particle": i`; a member
  that was not rendered in a step has no gradient and Adam leaves it alone;
- evaluation renders (previews, eval, export, turntable) show one particle, `shown` (default 0);
  `members` gives all of them (export writes each).
"""

from __future__ import annotations

import torch

from dreamer.cameras import Camera
from dreamer.errors import UserError
from dreamer.representations.base import Representation, RenderOutput


class _MemberOptimizer:
    """The trainer's optimizer seen through one member's parameter groups (for densification hooks)."""

    def __init__(self, optimizer: torch.optim.Optimizer, index: int) -> None:
        self.param_groups = [g for g in optimizer.param_groups if g.get("particle") == index]
        self.state = optimizer.state


class ParticleSet(Representation):
    """n representations of one kind trained together; renders round-robin while training."""

    def __init__(self, members: list[Representation]) -> None:
        super().__init__()
        if len(members) < 2:
            raise UserError(f"a particle set needs at least 2 particles, got {len(members)}")
        self.members = torch.nn.ModuleList(members)
        self.shown = 0  # the particle that evaluation renders and to_mesh show
        self._step = 0
        self._rendered: set[int] = set()  # members rendered since the last after_step

    def __len__(self) -> int:
        return len(self.members)

    def assignment(self, batch: int) -> torch.Tensor:
        """[batch] particle index of each camera in this step's training batch."""
        return (self._step * batch + torch.arange(batch)) % len(self.members)

    def render(self, camera: Camera, background: torch.Tensor | None = None) -> RenderOutput:
        if not self.training:
            return self.members[self.shown].render(camera, background)
        owner = self.assignment(len(camera))
        parts: list[tuple[torch.Tensor, RenderOutput]] = []
        for index in owner.unique().tolist():
            rows = (owner == index).nonzero().flatten()
            parts.append((rows, self.members[index].render(camera[rows.tolist()], background)))
            self._rendered.add(index)
        if len(parts) == 1:
            return parts[0][1]
        order = torch.cat([rows for rows, _ in parts]).argsort()

        def gather(name: str) -> torch.Tensor:
            return torch.cat([getattr(out, name) for _, out in parts])[order.to(parts[0][1].rgb.device)]

        return RenderOutput(rgb=gather("rgb"), alpha=gather("alpha"), depth=gather("depth"),
                            extras={"particles": [(rows, out) for rows, out in parts]})

    def parameter_groups(self, lr_scale: float = 1.0) -> list[dict]:
        groups = []
        for index, member in enumerate(self.members):
            for group in member.parameter_groups(lr_scale):
                groups.append({**group, "particle": index})
        return groups

    def regularization(self, out: RenderOutput) -> dict[str, torch.Tensor]:
        # every member is of one kind and the regularisers are functions of the render alone
        return self.members[0].regularization(out)

    def before_step(self, step: int) -> None:
        self._step = step
        for member in self.members:
            member.before_step(step)

    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        rendered, self._rendered = self._rendered, set()
        for index in sorted(rendered):
            self.members[index].after_step(step, _MemberOptimizer(optimizer, index))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Each member loads its own part (Gaussians resize their parameters to the checkpoint first)."""
        expected = {f"members.{i}." for i in range(len(self.members))}
        unknown = [k for k in state_dict if not any(k.startswith(p) for p in expected)]
        if strict and unknown:
            raise UserError(f"the checkpoint has {len(unknown)} keys for particles this run does not have "
                            f"(e.g. {unknown[0]}): was it made with another `particles` count?")
        for index, member in enumerate(self.members):
            prefix = f"members.{index}."
            member.load_state_dict({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)},
                                   strict=strict, assign=assign)

    # -- what evaluation and export see: the shown particle -------------------------------
    def to_mesh(self, resolution: int = 128, fill_unseen: bool = True):
        return self.members[self.shown].to_mesh(resolution, fill_unseen=fill_unseen)

    @property
    def fills_unseen(self) -> bool:  # type: ignore[override]
        return self.members[self.shown].fills_unseen

    def colour_at(self, points: torch.Tensor) -> torch.Tensor:
        return self.members[self.shown].colour_at(points)


def particle_members(representation: Representation) -> list[Representation]:
    """The particles of a representation: its members for a ParticleSet, else itself alone."""
    if isinstance(representation, ParticleSet):
        return list(representation.members)
    return [representation]
