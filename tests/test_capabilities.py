"""Capabilities are declared on the components, not probed: representations say whether they
have a colour field or splats (protocols in representations.base) and how they restore from a
checkpoint; guidance configs say whether they use view-dependent prompts, train parameters of
their own (and at what learning rate) and how many particles they optimise."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch

from dreamer import registry
from dreamer.cameras import from_spherical
from dreamer.guidance.base import GuidanceConfig
from dreamer.representations.base import Animated, ColourField, Representation, SplatSource
from dreamer.representations.mesh import MeshConfig, MeshRepresentation

REPRESENTATIONS = sorted(registry.REPRESENTATIONS)
RULES = sorted(registry.GUIDANCES)
SMALL = {"grid_resolution": 8, "num_samples": 8, "occupancy_resolution": 8, "num_gaussians": 64,
         "colour_grid_resolution": 8, "max_gaussians": 256}


def _small(name: str) -> Representation:
    config = registry.default_config("representation", name)
    fields = {f.name for f in dataclasses.fields(config)}
    config = dataclasses.replace(config, **{k: v for k, v in SMALL.items() if k in fields})
    torch.manual_seed(0)
    return registry.component_class("representation", name)(config)


@pytest.mark.parametrize("name", REPRESENTATIONS)
def test_representations_declare_colour_and_splats(name):
    cls = registry.component_class("representation", name)
    assert issubclass(cls, Representation)
    assert ColourField in cls.__mro__, "every registered representation has a colour field (exports bake it)"
    assert (SplatSource in cls.__mro__) == (name in ("gaussians", "gaussians4d"))
    assert (Animated in cls.__mro__) == cls.is_dynamic == (name == "gaussians4d")


@pytest.mark.parametrize("name", REPRESENTATIONS)
def test_regularization_returns_exactly_the_declared_names(name):
    rep = _small(name)
    out = rep.render(from_spherical(torch.tensor([0.0]), 15.0, 2.8, 40.0, 8), torch.ones(3))
    names = {f.name for f in dataclasses.fields(rep.regularizer_weights)}
    assert set(rep.regularization(out)) == names


def test_the_mesh_restores_without_refitting_its_start_mesh():
    start = MeshConfig(init="mesh", init_mesh="gone.ply")
    assert MeshRepresentation.restore_config(start).init == "sphere"
    for name in REPRESENTATIONS:
        config = registry.default_config("representation", name)
        assert registry.component_class("representation", name).restore_config(config) == config


@pytest.mark.parametrize("name", RULES)
def test_guidance_configs_declare_what_the_trainer_reads(name):
    config = registry.default_config("guidance", name)
    assert isinstance(config, GuidanceConfig)
    assert config.view_dependent_prompt is True  # every rule here uses the view-dependent prompts by default
    trains = name in ("vsd", "esd")
    assert (config.trainable_lr is not None) == trains
    if trains:
        assert config.trainable_lr == config.lora_lr
        assert dataclasses.replace(config, particles=3).particle_count == 3
    else:
        assert config.particle_count == 1


def test_the_base_guidance_config_declares_nothing_optional():
    base = GuidanceConfig()
    assert (base.view_dependent_prompt, base.trainable_lr, base.particle_count) == (False, None, 1)
    assert (base.takes_images, base.takes_clips, base.uses_depth) == (True, True, False)


PROBED = {"lora_lr", "view_dependent_prompt", "particles", "colour_at", "splat_arrays", "init"}


@pytest.mark.parametrize("path", ["dreamer/trainer", "dreamer/export"])
def test_no_capability_is_probed_with_getattr_or_hasattr(path):
    root = Path(__file__).resolve().parent.parent
    found = []
    for file in sorted((root / path).rglob("*.py")):
        for node in ast.walk(ast.parse(file.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
                    and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in PROBED):
                found.append(f"{file.relative_to(root)}:{node.lineno} {node.func.id}(…, {node.args[1].value!r})")
    assert not found, found
