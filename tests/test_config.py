from dataclasses import dataclass, field

import pytest

from dreamer.config import merge, parse_override
from dreamer.errors import UserError
from dreamer.run_config import build_run_config, load_run_config


@dataclass
class Inner:
    rate: float = 0.1
    sizes: tuple[int, int] = (1, 2)


@dataclass
class Outer:
    name: str = "x"
    steps: int = 3
    flag: bool = False
    maybe: float | None = None
    inner: Inner = field(default_factory=Inner)


def test_merge_types_and_nested():
    cfg = merge(Outer(), {"steps": 5, "inner": {"rate": 1, "sizes": [3, 4]}, "maybe": 2})
    assert cfg.steps == 5 and cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.inner.sizes == (3, 4) and cfg.maybe == 2.0


def test_exponent_without_a_dot_is_a_number():
    # PyYAML (YAML 1.1) reads `2e-5` as a string; a float key takes it as the number it means
    _, value = parse_override("inner.rate=2e-5")
    assert merge(Outer(), {"inner": {"rate": value}}).inner.rate == pytest.approx(2e-5)


@pytest.mark.parametrize(
    "update, message",
    [
        ({"stepz": 1}, "unknown config key 'stepz' (did you mean 'steps'?)"),
        ({"steps": "many"}, "config key 'steps' must be an integer, got 'many'"),
        ({"flag": 1}, "config key 'flag' must be true or false"),
        ({"inner": {"rate": "fast"}}, "config key 'inner.rate' must be a number"),
        ({"inner": {"sizes": [1]}}, "config key 'inner.sizes' must have 2 items"),
    ],
)
def test_merge_errors_name_the_key(update, message):
    with pytest.raises(UserError) as e:
        merge(Outer(), update)
    assert message in str(e.value)


def test_parse_override_uses_yaml_types():
    assert parse_override("guidance.guidance_scale=20") == (["guidance", "guidance_scale"], 20)
    assert parse_override("prompt=a red cube") == (["prompt"], "a red cube")
    assert parse_override("trainer.progress=false") == (["trainer", "progress"], False)
    with pytest.raises(UserError, match="key=value"):
        parse_override("steps")


def test_run_config_sections_resolve_component_configs():
    cfg = build_run_config({"prompt": "a red cube", "guidance": {"name": "sds", "guidance_scale": 7.5}})
    assert cfg.guidance.name == "sds" and cfg.guidance.config.guidance_scale == 7.5
    data = cfg.to_dict()
    assert data["guidance"]["name"] == "sds" and data["guidance"]["guidance_scale"] == 7.5
    again = build_run_config(data)
    assert again.to_dict() == data  # YAML round trip


def test_unknown_component_names_and_keys():
    with pytest.raises(UserError, match="unknown guidance 'sdx': choose one of"):
        build_run_config({"guidance": "sdx"})
    with pytest.raises(UserError, match="unknown prior 'nope'"):
        build_run_config({"prior": {"name": "nope"}})
    with pytest.raises(UserError, match="unknown config key 'guidance.guidance_scal'"):
        build_run_config({"guidance": {"name": "sds", "guidance_scal": 3}})


def test_presets_and_overrides_compose():
    cfg = load_run_config("default", {"prompt": "a blue sphere", "steps": 7}, ["seed=5", "guidance.guidance_scale=3"])
    assert cfg.prompt == "a blue sphere" and cfg.steps == 7 and cfg.seed == 5
    assert cfg.guidance.config.guidance_scale == 3.0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"prompt": "   "}, "the prompt is empty"),
        ({"prompt": "a red cube", "steps": 0}, "steps must be a positive integer"),
        ({"prompt": "a red cube", "resolution": -1}, "resolution must be a positive integer"),
    ],
)
def test_validation(changes, message):
    cfg = build_run_config(changes)
    with pytest.raises(UserError, match=message):
        cfg.validate()


def test_unknown_preset():
    with pytest.raises(UserError, match="config 'nonexistent' not found"):
        load_run_config("nonexistent")


def test_the_4d_image_prior_and_rule_are_typed_like_the_runs_own_components(tmp_path):
    """motion.image_prior / motion.image_guidance are Components: their options are the named class's dataclass,
    a bad option is a one-line error naming where it sits, choosing another prior drops the old one's options,
    and a saved config.yaml loads back the same."""
    from dreamer.priors.reference import ReferencePriorConfig
    from dreamer.priors.tiny.prior import TinyPriorConfig
    from dreamer.run_config import load_run_config, save_run_config

    oracle = load_run_config("4d-oracle", dotted=["motion.image_prior.image_size=16"])
    assert isinstance(oracle.motion.image_prior.config, ReferencePriorConfig)
    assert (oracle.motion.image_prior.config.image_size, oracle.motion.image_prior.config.camera_temperature) == (16, 8.0)
    swapped = load_run_config("4d-oracle", dotted=["motion.image_prior.name=tiny"])
    assert swapped.motion.image_prior.name == "tiny" and isinstance(swapped.motion.image_prior.config, TinyPriorConfig)
    with pytest.raises(UserError, match=r"motion\.image_prior") as bad:
        load_run_config("4d-oracle", dotted=["motion.image_prior.imag_size=16"])
    assert "\n" not in str(bad.value)
    save_run_config(oracle, tmp_path / "config.yaml")
    again = load_run_config(str(tmp_path / "config.yaml"))
    assert again.motion.image_prior == oracle.motion.image_prior and again.motion.image_guidance == oracle.motion.image_guidance
