"""What each preset in configs/ runs: its rule, representation and prior, and what it needs.

`dreamer presets` prints this table; the web UI and the API read the same `PresetInfo`s.
"""

from __future__ import annotations

from dataclasses import dataclass

from dreamer import registry
from dreamer.config import list_presets, load_yaml, resolve_preset
from dreamer.run_config import RunConfig


@dataclass(frozen=True)
class PresetInfo:
    name: str
    guidance: str  # the rule's name
    representation: str
    prior: str  # the (image or video) prior; 4D presets also name their image prior in `image_prior`
    image_prior: str | None  # 4D: the prior that scores single frames; None for 3D presets
    # a prior whose weights come from a model hub (not shipped with dreamer); those are full-size diffusers
    # models, practical only on a GPU, so the same flag says both
    needs_download: bool

    @property
    def needs(self) -> str:
        return "downloaded weights, GPU" if self.needs_download else "nothing (runs on a CPU)"


def _name(data: dict, key: str, default: str) -> str:
    section = data.get(key)
    if isinstance(section, dict):
        return str(section.get("name", default))
    return str(section) if isinstance(section, str) else default


def preset_info(name: str) -> PresetInfo:
    data = load_yaml(resolve_preset(name))
    defaults = RunConfig()
    guidance = _name(data, "guidance", defaults.guidance.name)
    representation = _name(data, "representation", defaults.representation.name)
    prior = _name(data, "prior", defaults.prior.name)
    motion = data.get("motion") if isinstance(data.get("motion"), dict) else None
    image_prior = _name(motion, "image_prior", "reference") if motion is not None else None
    priors = [prior] + ([image_prior] if image_prior else [])
    download = any(not registry.component_class("prior", p).embedded for p in priors)
    return PresetInfo(name, guidance, representation, prior, image_prior, download)


def preset_table() -> list[PresetInfo]:
    return [preset_info(name) for name in list_presets()]


def format_preset_table(infos: list[PresetInfo]) -> str:
    rows = [("preset", "rule", "representation", "prior", "needs")]
    for i in infos:
        prior = i.prior if i.image_prior is None else f"{i.prior} + {i.image_prior} (frames)"
        rows.append((i.name, i.guidance, i.representation, prior, i.needs))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)
