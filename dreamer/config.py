"""Typed configs: dataclasses merged with YAML presets and `key=value` overrides.

A run config is a `RunConfig` dataclass. Its component sections (`guidance`, `representation`,
`prior`) hold the config dataclass of the component chosen by the section's `name`, looked up
in the explicit tables of `dreamer.registry`. Unknown keys and wrong types are `UserError`s
naming the key and the fix; nothing is evaluated (no arithmetic in YAML).
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from dreamer.errors import UserError
from dreamer.resources import configs_dir

CONFIG_DIR = configs_dir()


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp)).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check `value` against the annotation `tp`; convert only lossless cases (int -> float, list -> tuple)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except UserError as e:
                errors.append(e)
        raise UserError(f"config key '{key}' must be {' or '.join(_type_name(a) for a in args)}, got {value!r}")
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise UserError(f"config key '{key}' must be one of {list(typing.get_args(tp))}, got {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{key}' must be a list, got {value!r}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise UserError(f"config key '{key}' must have {len(args)} items, got {value!r}")
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        inner = args[0] if args else Any
        items = [_coerce(v, inner, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config key '{key}' must be a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise UserError(f"config section '{key}' must be a mapping, got {value!r}")
        return merge(tp(), value, prefix=key)
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "2e-5" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise UserError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config key '{key}' must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise UserError(f"config key '{key}' must be a string, got {value!r}")
        return value
    return value


def _unknown_key(key: str, known: list[str], prefix: str) -> UserError:
    full = f"{prefix}.{key}" if prefix else key
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else f"; valid keys: {', '.join(sorted(known))}"
    return UserError(f"unknown config key '{full}'{hint}")


def merge(config: Any, updates: dict, prefix: str = "") -> Any:
    """A copy of dataclass `config` with `updates` applied, type-checked field by field."""
    if not isinstance(updates, dict):
        raise UserError(f"config section '{prefix or 'root'}' must be a mapping, got {updates!r}")
    hints = typing.get_type_hints(type(config))
    fields = {f.name: f for f in dataclasses.fields(config) if f.init}
    changes = {}
    for key, value in updates.items():
        if key not in fields:
            raise _unknown_key(str(key), list(fields), prefix)
        full = f"{prefix}.{key}" if prefix else key
        current = getattr(config, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            changes[key] = merge(current, value, full)
        else:
            changes[key] = _coerce(value, hints[key], full)
    return dataclasses.replace(config, **changes)


def to_dict(config: Any) -> Any:
    """Plain YAML-friendly data (tuples become lists)."""
    if dataclasses.is_dataclass(config):
        return {f.name: to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, (list, tuple)):
        return [to_dict(v) for v in config]
    if isinstance(config, dict):
        return {k: to_dict(v) for k, v in config.items()}
    return config


def parse_override(text: str) -> tuple[list[str], Any]:
    """'guidance.guidance_scale=20' -> (['guidance', 'guidance_scale'], 20) with YAML typing."""
    if "=" not in text:
        raise UserError(f"override '{text}' must look like key=value (e.g. guidance.guidance_scale=20)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise UserError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def nested_update(data: dict, path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserError(f"override key '{'.'.join(path)}': '{part}' is not a section")
    node[path[-1]] = value


def load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise UserError(f"cannot read config '{path}': {e.strerror}") from None
    except yaml.YAMLError as e:
        raise UserError(f"config '{path}' is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config '{path}' must be a YAML mapping at the top level")
    return data


def resolve_preset(name_or_path: str) -> Path:
    """A preset name from configs/ ('default', 'dreamfusion-sd') or a path to a YAML file."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if candidate.exists():
        return candidate
    presets = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise UserError(f"config '{name_or_path}' not found: give a YAML path or one of the presets {', '.join(presets)}")


def list_presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
