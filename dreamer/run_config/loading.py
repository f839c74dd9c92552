"""How presets, override mappings and 'a.b=value' strings combine into a validated RunConfig, and how
one is saved."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dreamer import registry
from dreamer.config import load_yaml, merge, nested_update, parse_override, resolve_preset
from dreamer.errors import UserError
from dreamer.run_config.regularizers import known_regularizers, regularizers_for
from dreamer.run_config.schema import RunConfig
from dreamer.run_config.sections import Component

_COMPONENT_KEYS = tuple(registry.TABLES)
# the 4D motion section's components: key -> the registry table it names
_MOTION_COMPONENTS = {"image_prior": "prior", "image_guidance": "guidance"}


def build_run_config(data: dict) -> RunConfig:
    """RunConfig from a plain mapping (a merged preset); validates every key and type."""
    data = copy.deepcopy(data)
    sections = {key: _component(data.pop(key, None), key, getattr(RunConfig(), key).name, key) for key in _COMPONENT_KEYS}
    motion = data.get("motion")
    motion_sections = {}
    if isinstance(motion, dict):
        defaults = RunConfig().motion
        for key, kind in _MOTION_COMPONENTS.items():
            motion_sections[key] = _component(motion.pop(key, None), kind, getattr(defaults, key).name, f"motion.{key}")
    weights = data.pop("regularizers", None)
    config = merge(RunConfig(), data)
    for key, section in sections.items():
        setattr(config, key, section)
    for key, kind in _MOTION_COMPONENTS.items():
        default = getattr(config.motion, key)
        setattr(config.motion, key, motion_sections.get(key) or _component(None, kind, default.name, f"motion.{key}"))
    config.regularizers = regularizers_for(config.representation.name, weights)
    if config.refine.regularizers:  # checked now, even when refine.steps = 0
        refine_name = config.refine.representation.get("name", "mesh")
        if isinstance(refine_name, str):
            regularizers_for(refine_name, config.refine.regularizers, prefix="refine.regularizers")
    return config


def _component(raw: Any, kind: str, default_name: str, where: str) -> Component:
    """A Component of registry table `kind` from a name or a mapping {name, options...} (None: the default)."""
    if raw is None:
        raw = {}
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise UserError(f"config section '{where}' must be a name or a mapping, got {raw!r}")
    raw = dict(raw)
    name = raw.pop("name", default_name)
    if not isinstance(name, str):
        raise UserError(f"config key '{where}.name' must be a string, got {name!r}")
    return Component(name, merge(registry.default_config(kind, name), raw, prefix=where))


def load_run_config(preset: str | None = "default", overrides: dict | None = None,
                    dotted: list[str] | None = None) -> RunConfig:
    """Preset (name or path) ← overrides mapping ← 'a.b=value' strings, in that order.

    Changing a component's name (e.g. guidance=vsd) drops the preset's options for the old one, and
    changing the rule drops the preset's colour stage unless the overrides set `colour` too;
    changing the representation keeps only the preset's regularizer weights the new one has
    (representation=gaussians keeps a NeRF preset's sparsity; representation=mesh drops it).
    """
    data: dict = load_yaml(resolve_preset(preset)) if preset else {}
    preset_weights = data.pop("regularizers", None)
    preset_representation = _section_name(data, "representation")
    preset_guidance, preset_colour = _section_name(data, "guidance"), copy.deepcopy(data.get("colour"))
    for key, value in (overrides or {}).items():
        _apply(data, key.split("."), value)
    for text in dotted or []:
        path, value = parse_override(text)
        _apply(data, path, value)
    representation = _section_name(data, "representation")
    if _section_name(data, "guidance") != preset_guidance and data.get("colour") == preset_colour:
        data.pop("colour", None)  # the preset's colour stage re-scales its rule's CFG: another rule has none
    if isinstance(preset_weights, dict) and isinstance(representation, str) and representation != preset_representation:
        known = known_regularizers(representation)  # the preset's weights for another representation
        preset_weights = {k: v for k, v in preset_weights.items() if k in known}
    given = data.pop("regularizers", None)
    if isinstance(preset_weights, dict) and isinstance(given, (dict, type(None))):
        given = {**preset_weights, **(given or {})}  # the overrides win, name by name
    elif given is None:
        given = preset_weights  # None, or not a mapping (build_run_config says so)
    if given is not None:
        data["regularizers"] = given
    return build_run_config(data)


def _section_name(data: dict, key: str) -> Any:
    """The component name a (partly merged) config mapping chooses for section `key`."""
    section = data.get(key)
    if isinstance(section, str):
        return section
    if isinstance(section, dict) and "name" in section:
        return section["name"]
    return getattr(RunConfig(), key).name


def _apply(data: dict, path: list[str], value: Any) -> None:
    head = path[0]
    if head in _COMPONENT_KEYS and _apply_component(data, path, value):
        return
    if head == "motion" and len(path) > 1 and path[1] in _MOTION_COMPONENTS:
        motion = data.setdefault("motion", {})
        if isinstance(motion, dict) and _apply_component(motion, path[1:], value):
            return
    nested_update(data, path, value)


def _apply_component(data: dict, path: list[str], value: Any) -> bool:
    """Choose a component (`path` = [key] or [key, "name"]) in `data`; True when done. Choosing another one drops
    the old one's options; an option path (`[key, option]`) is left to nested_update (False)."""
    head = path[0]
    section = data.get(head)
    if isinstance(section, str):
        section = {"name": section}
        data[head] = section
    if len(path) == 1 or path[1:] == ["name"]:
        if isinstance(value, dict):
            data[head] = value
            return True
        current = (section or {}).get("name") if isinstance(section, dict) else None
        if current != value:
            data[head] = {"name": value}  # another component: the old options don't apply
        return True
    return False


def save_run_config(config: RunConfig, path: Path) -> None:
    import yaml

    from dreamer.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
