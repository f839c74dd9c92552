"""The form's choices and how its values become a validated `RunConfig` (and YAML, and back).

Choices are read at run time from `dreamer.registry` and the presets in `configs/`, so a new
guidance rule, prior, representation or preset appears in the page without a UI change. The
order of precedence is: preset ← the server's `key=value` overrides ← the form's fields; the form
starts from the first two, so it shows what a job will really use. The YAML panel is checked by
the project's own config loader and its one-line `UserError`.

When the page shows a job, `config_differences` says where the form's config and the job's differ,
and `form_for_job` finds the preset and field values that reproduce the job (None when the job has
settings the fields cannot hold: the page then uses the job's YAML instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dreamer.api import (COMPONENT_KINDS, EXPORT_FORMATS, RunConfig, UserError, build_run_config, component_summaries,
                         list_presets, load_run_config, parse_override)

COMPONENTS: tuple[str, ...] = COMPONENT_KINDS  # guidance, representation, prior
EXTRA_FORMATS: tuple[str, ...] = tuple(f for f in EXPORT_FORMATS if f != "glb")  # glb is always written


@dataclass
class FormValues:
    """The form's fields; None leaves the preset's (and the server's) value."""

    prompt: str = ""
    negative_prompt: str = ""
    preset: str = "default"
    guidance: str | None = None
    representation: str | None = None
    prior: str | None = None
    steps: int | None = None
    seed: int | None = None
    resolution: int | None = None
    formats: list[str] = field(default_factory=list)  # extra export formats beside glb


def preset_choices() -> list[str]:
    return list_presets()


def component_choices(kind: str) -> list[tuple[str, str]]:
    """(label, name) pairs for a dropdown, from the registry table of `kind`."""
    return [(f"{name} — {summary}" if summary else name, name) for name, summary in component_summaries(kind).items()]


def check_overrides(overrides: list[str]) -> list[str]:
    """The server's `key=value` overrides, checked once against the default preset (one-line error)."""
    load_run_config("default", None, overrides)
    return list(overrides)


def defaults_for(preset: str, overrides: list[str]) -> FormValues:
    """The form's starting values for `preset` with the server's overrides applied."""
    cfg = load_run_config(preset, None, overrides)
    return FormValues(prompt=cfg.prompt, negative_prompt=cfg.negative_prompt, preset=preset,
                      guidance=cfg.guidance.name, representation=cfg.representation.name, prior=cfg.prior.name,
                      steps=cfg.steps, seed=cfg.seed, resolution=cfg.resolution,
                      formats=[f for f in cfg.export.formats if f in EXTRA_FORMATS])


def _whole(value: Any, name: str) -> int | None:
    """A number field's value as an int (Gradio gives floats); None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or float(value) != int(value):
        raise UserError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def resolve_form(values: FormValues, overrides: list[str]) -> RunConfig:
    """preset ← server overrides ← form fields, as a RunConfig (not yet validated: the prompt may be empty)."""
    pairs: dict[str, Any] = {}
    for text in overrides:
        path, value = parse_override(text)
        pairs[".".join(path)] = value
    preset = values.preset or "default"
    base = load_run_config(preset, None, overrides)
    fields: dict[str, Any] = {"prompt": values.prompt.strip(), "negative_prompt": values.negative_prompt.strip()}
    for kind in COMPONENTS:
        name = getattr(values, kind)
        if name and name != getattr(base, kind).name:
            # another component: the server's options for the one it replaces no longer apply
            pairs = {k: v for k, v in pairs.items() if k != kind and not k.startswith(f"{kind}.")}
            fields[kind] = name
    for key in ("steps", "seed", "resolution"):
        number = _whole(getattr(values, key), key)
        if number is not None:
            fields[key] = number
    fields["export.formats"] = ["glb", *(f for f in EXTRA_FORMATS if f in (values.formats or []))]
    for key, value in fields.items():  # the form wins: its keys go last, after the server's
        pairs.pop(key, None)
        pairs[key] = value
    return load_run_config(preset, pairs)


def config_to_yaml(config: RunConfig) -> str:
    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def config_from_yaml(text: str) -> RunConfig:
    """A validated RunConfig from YAML text (the advanced panel, an uploaded file); UserError otherwise."""
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UserError(f"the config is not valid YAML{where}: {getattr(e, 'problem', None) or 'syntax error'}") from None
    if not isinstance(data, dict):
        raise UserError("the config must be a YAML mapping of keys to values (e.g. `prompt: a red cube`)")
    return build_run_config(data).validate()


def yaml_problem(text: str) -> str | None:
    """None when the YAML is a valid run config, else the one-line reason."""
    try:
        config_from_yaml(text)
    except UserError as e:
        return str(e)
    return None


# The settings the form's own fields set, in the order the page names differences.
FORM_KEYS: tuple[str, ...] = ("prompt", "negative_prompt", "guidance.name", "representation.name", "prior.name",
                              "steps", "seed", "resolution", "export.formats")


def read_job_config(run_dir: Path) -> RunConfig:
    """The config a job ran (or will run) with: its run folder's config.yaml."""
    path = Path(run_dir) / "config.yaml"
    try:
        return config_from_yaml(path.read_text())
    except OSError:
        raise UserError(f"{path.parent.name} has no readable config.yaml") from None


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"guidance": {"name": "sds"}} -> {"guidance.name": "sds"}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


# How a run reports, not what it makes: the server turns the progress bar off in every job's config.
NOT_COMPARED: frozenset[str] = frozenset({"trainer.progress"})


def config_differences(form_config: RunConfig, job_config: RunConfig) -> list[tuple[str, Any, Any]]:
    """(key, the job's value, the form's value) for every setting that differs (NOT_COMPARED aside):
    the form's own fields first, then the others in alphabetical order."""
    ours, theirs = flatten(form_config.to_dict()), flatten(job_config.to_dict())
    keys = [k for k in sorted(ours.keys() | theirs.keys()) if ours.get(k) != theirs.get(k) and k not in NOT_COMPARED]
    keys.sort(key=lambda k: (FORM_KEYS.index(k) if k in FORM_KEYS else len(FORM_KEYS), k))
    return [(k, theirs.get(k), ours.get(k)) for k in keys]


def values_of(config: RunConfig, preset: str) -> FormValues:
    """The form's fields as `config` sets them, on top of `preset`."""
    return FormValues(prompt=config.prompt, negative_prompt=config.negative_prompt, preset=preset,
                      guidance=config.guidance.name, representation=config.representation.name,
                      prior=config.prior.name, steps=config.steps, seed=config.seed, resolution=config.resolution,
                      formats=[f for f in config.export.formats if f in EXTRA_FORMATS])


def form_for_job(job_config: RunConfig, overrides: list[str]) -> FormValues | None:
    """The form values (preset and fields) whose resolved config is exactly the job's, else None."""
    for preset in preset_choices():
        values = values_of(job_config, preset)
        try:
            if not config_differences(resolve_form(values, overrides), job_config):
                return values
        except UserError:  # e.g. a server override that this preset's components do not have
            continue
    return None
